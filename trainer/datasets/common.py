"""What every training data set shares: sample keys, skipping, batching.

A sample is addressed by a key ``(stream, i)``: ``stream`` is the epoch (>= 1) for
training and 0 for validation, ``i`` counts samples within it. Everything random
about a sample derives from ``(seed, stream, i)``, so a run repeats, a resumed run
sees the same data as an uninterrupted one, and each DDP rank draws its own share.

``__getitem__`` returns a dict::

    img0, img1: h x w float32 in [-0.5, 0.5]
    pairs:      P x 4 float32 (x0, y0, x1, y1) correspondences in pixels

or a :class:`Skipped` saying why the sample cannot be used; :func:`collate_pairs`
drops and counts those, so a bad file never stops a run.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Key = tuple[int, int]
VALIDATION_STREAM = 0


@dataclass(frozen=True)
class Skipped:
    """A sample that cannot be used, and why (unreadable file, too few correspondences...)."""

    key: Key
    reason: str


def sample_rng(seed: int, key: Key, salt: int = 0) -> np.random.Generator:
    """The generator for everything random about one sample."""
    stream, i = key
    return np.random.default_rng([int(seed), int(stream), int(i), int(salt)])


class KeyedOrder:
    """Maps a key to an item index: a fresh seeded permutation of the items per pass."""

    def __init__(self, n_items: int, seed: int) -> None:
        self.n = n_items
        self.seed = seed
        self._cache: tuple[tuple[int, int], np.ndarray] | None = None

    def __call__(self, key: Key) -> int:
        stream, i = key
        block = i // self.n
        if self._cache is None or self._cache[0] != (stream, block):
            perm = np.random.default_rng([self.seed, stream, block, 99]).permutation(self.n)
            self._cache = ((stream, block), perm)
        return int(self._cache[1][i % self.n])


class KeySampler(torch.utils.data.Sampler):
    """Endless keys ``(stream, rank), (stream, rank + world), ...``: one shard per process."""

    def __init__(self, stream: int, rank: int = 0, world_size: int = 1, limit: int | None = None) -> None:
        self.stream, self.rank, self.world_size, self.limit = stream, rank, world_size, limit

    def __iter__(self) -> Iterator[Key]:
        i = self.rank
        while self.limit is None or i < self.limit:
            yield (self.stream, i)
            i += self.world_size

    def __len__(self) -> int:  # only meaningful with a limit
        if self.limit is None:
            return 2**31 - 1
        return max(0, (self.limit - self.rank + self.world_size - 1) // self.world_size)


def collate_pairs(samples: list[dict[str, Any] | Skipped]) -> dict[str, Any]:
    """Batch the usable samples; count the skipped ones.

    Returns img0, img1: B x 1 x H x W (both padded to one common size, so the model
    runs once on 2B images), pairs: B tensors P_b x 4, sizes0 / sizes1: B (h, w) of
    the unpadded images, skipped: list of reasons. B may be 0.
    """
    good = [s for s in samples if not isinstance(s, Skipped)]
    skipped = [s.reason for s in samples if isinstance(s, Skipped)]
    if not good:
        return {"img0": None, "img1": None, "pairs": [], "sizes0": [], "sizes1": [], "skipped": skipped}
    H = max(max(s["img0"].shape[0], s["img1"].shape[0]) for s in good)
    W = max(max(s["img0"].shape[1], s["img1"].shape[1]) for s in good)
    B = len(good)
    # Pad with -0.5 (black), as the seed's zero-padding before normalisation did.
    img0 = torch.full((B, 1, H, W), -0.5, dtype=torch.float32)
    img1 = torch.full((B, 1, H, W), -0.5, dtype=torch.float32)
    for b, s in enumerate(good):
        h0, w0 = s["img0"].shape
        h1, w1 = s["img1"].shape
        img0[b, 0, :h0, :w0] = torch.from_numpy(np.ascontiguousarray(s["img0"]))
        img1[b, 0, :h1, :w1] = torch.from_numpy(np.ascontiguousarray(s["img1"]))
    return {
        "img0": img0,
        "img1": img1,
        "pairs": [torch.from_numpy(np.asarray(s["pairs"], dtype=np.float32)) for s in good],
        "sizes0": [tuple(s["img0"].shape) for s in good],
        "sizes1": [tuple(s["img1"].shape) for s in good],
        "skipped": skipped,
    }


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
