"""Matching photo pairs with one model, keeping the features of the last pair.

    matcher = Matcher(loaded.model)
    run = matcher.match(photo0, photo1, max_side=640, options=MatchOptions(), device="cpu")
    run.matches, run.reused          # reused: the same pair again, no forward pass

The window's worker owns one per model: a run that only changes the query points
(MatchOptions) costs a search, not a forward pass. Photos become network copies
here, so callers keep only what they show (``Photo``: RGB and path).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .image import Photo
from .matching import MatchSet, PairFeatures, ProgressFn, match
from .settings import MatchOptions


@dataclass
class MatchRun:
    pair: PairFeatures  # descriptors of both photos (kept for click-to-query)
    matches: MatchSet
    reused: bool  # features came from the cache


class Matcher:
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._key: tuple | None = None
        self._pair: PairFeatures | None = None

    def match(
        self,
        photo0: Photo,
        photo1: Photo,
        max_side: int | None,
        options: MatchOptions,
        device: str,
        precision: str = "auto",
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> MatchRun:
        """Features (from the cache when the photos, size, device and precision are the same), then :func:`match`."""
        # Photos by identity, not equality: a newly opened photo always means new features.
        key = (photo0, photo1, max_side, str(device), precision)
        reused = self._pair is not None and _same_key(key, self._key)
        if not reused:
            self.forget()
            img0, img1 = photo0.for_network(max_side), photo1.for_network(max_side)
            self._pair = PairFeatures.compute(self.model, img0, img1, device, progress, cancel, precision)
            self._key = key
        return MatchRun(self._pair, match(self._pair, options, None, progress, cancel), reused)

    def forget(self) -> None:
        """Drop the cached features (e.g. to free GPU memory)."""
        self._key, self._pair = None, None


def _same_key(a: tuple, b: tuple | None) -> bool:
    """Objects compared by identity (photos), plain values by equality."""
    if b is None or len(a) != len(b):
        return False
    return all(x is y or (isinstance(x, (int, str)) and x == y) for x, y in zip(a, b))
