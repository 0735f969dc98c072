"""Matching a list of image pairs into a folder, restartably, each image's features computed once.

    runner = BatchRunner(model, image_dir, out_dir, BatchConfig(max_size=640), settings)
    summary = runner.run(pair_list.pairs, events)

Every pair's result is one file, ``OUT/matches/<name0>+<name1>.npz`` (the columns of
``ucn-match``'s NPZ plus the image sizes and scales the exports need), written atomically:
a file that exists is complete, so a run that was stopped continues by skipping the pairs
whose file exists. ``OUT/run.json`` records the settings the files were made with; a
later run with other settings is refused instead of mixing results.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import torch

from .alignment import match_aligned
from .files import atomic_write, remove_stale_temp_files
from .match_files import load_matches, save_matches
from .feature_cache import CacheStats, FeatureCache
from .features import extract_features
from .filters import FilterSettings, apply_filters
from .image import DISPLAY_SIDE, ImageLoadError, LoadedImage, load_image
from .matching import MatchOptions, PairFeatures, match
from .pairs import Pair

RESULTS = "matches"  # OUT/matches/ holds one file per pair
MANIFEST = "run.json"
FORMAT = "ucn-batch/1"
DEFAULT_CACHE_BYTES = 2 << 30
_MAX_STEM = 200  # bytes; longer pair names use a hash (file systems allow 255)


class BatchSettingsError(ValueError):
    """The output folder holds results made with other settings."""


@dataclass
class BatchConfig:
    max_size: int | None = 640
    device: torch.device | str = "cpu"
    precision: str = "auto"  # resolved (fp32, bf16, fp16) by the caller or here
    options: MatchOptions = field(default_factory=MatchOptions)
    filters: FilterSettings = field(default_factory=FilterSettings)
    cache_bytes: int = DEFAULT_CACHE_BYTES
    # The alignment pass (core.alignment) for every pair, trusting the matches these thresholds
    # keep (the model card's, as the two-image --align); None: one pass.
    align: FilterSettings | None = None


@dataclass
class ImageFeatures:
    """One image at the matching resolution: its network copy (the photo's pixels dropped) and
    its C x h x w descriptors."""

    image: LoadedImage
    desc: torch.Tensor

    @property
    def nbytes(self) -> int:
        return self.desc.numel() * self.desc.element_size() + self.image.gray.nbytes


@dataclass
class BatchSummary:
    pairs: int = 0  # in the list
    matched: int = 0  # this run
    already_done: int = 0  # by an earlier run
    skipped: int = 0  # because an image could not be used
    bad_images: dict[str, str] = field(default_factory=dict)  # name -> reason
    kept: int = 0  # matches kept by the filters, pairs matched this run
    seconds: float = 0.0
    cache: CacheStats = field(default_factory=CacheStats)


@dataclass
class Events:
    """Callbacks the command line turns into a progress bar and messages."""

    pair_done: Callable[[Pair, str, int], None] = lambda pair, status, kept: None  # status: matched | skipped
    bad_image: Callable[[str, str], None] = lambda name, reason: None


def result_path(out_dir: str | os.PathLike, name0: str, name1: str) -> Path:
    """Where the pair's result lives: the names URL-quoted (so '/' and '+' cannot collide), or
    a hash when that is too long for a file name."""
    stem = f"{quote(name0, safe='')}+{quote(name1, safe='')}"
    if len(stem.encode()) > _MAX_STEM:
        stem = hashlib.sha256(f"{name0}\n{name1}".encode()).hexdigest()[:40]
    return Path(out_dir) / RESULTS / f"{stem}.npz"


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_manifest(out_dir: str | os.PathLike, settings: Mapping[str, Any]) -> bool:
    """BatchSettingsError when ``out_dir`` holds results made with other settings.

    Returns True when a manifest with these settings exists (a continued run). Writes one
    (atomically) when there is none.
    """
    path = Path(out_dir) / MANIFEST
    settings = json.loads(json.dumps(dict(settings), default=str))  # as it reads back
    if path.exists():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            before = doc["settings"]
            if doc.get("format") != FORMAT or not isinstance(before, dict):
                raise ValueError("unknown format")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BatchSettingsError(f"{path}: not a batch run's settings file ({exc}); use another --output-dir") from None
        differ = [k for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k)]
        if differ:
            k = differ[0]
            there = f"{before[k]!r} there" if k in before else "not recorded there (an older version made them)"
            now = f"{settings[k]!r} now" if k in settings else "not used now"
            raise BatchSettingsError(
                f"--output-dir {out_dir} holds matches made with other settings ({k}: {there}, {now}); "
                "use another --output-dir or the same settings")
        return True
    text = json.dumps({"format": FORMAT, "settings": settings}, indent=1)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return False


def done_pairs(out_dir: str | os.PathLike, pairs: list[Pair]) -> list[Pair]:
    """The pairs whose result file exists (and so is complete: every write is atomic)."""
    return [p for p in pairs if result_path(out_dir, *p).is_file()]


def _without_pixels(img: LoadedImage) -> LoadedImage:
    """The network copy alone: matching reads gray, scale and the original size, never the photo,
    which at full resolution would cost the cache more than the descriptors."""
    return LoadedImage(path=img.path, gray=img.gray, rgb=img.rgb[:1, :1].copy(), scale=img.scale, full_size=img.original_size)


class BatchRunner:
    """Matches pairs of images from ``image_dir`` into ``out_dir``; see the module's docstring.

    ``settings``: what the results depend on (weights, sizes, thresholds...), recorded in
    ``run.json`` and in every result file.
    """

    def __init__(self, model: torch.nn.Module, image_dir: str | os.PathLike, out_dir: str | os.PathLike,
                 config: BatchConfig, settings: Mapping[str, Any]):
        self.model = model
        self.image_dir = Path(image_dir)
        self.out_dir = Path(out_dir)
        self.config = config
        self.settings = dict(settings)

    def decode(self, name: str) -> LoadedImage:
        """``name`` at the matching resolution, decoded as the two-image command does (so a pair
        gives the same matches either way); ImageLoadError and friends for a bad file."""
        c = self.config
        return _without_pixels(load_image(self.image_dir / name, c.max_size, DISPLAY_SIDE if c.max_size else None))

    def features(self, name: str, image: LoadedImage | None = None) -> ImageFeatures:
        """The network's descriptors of ``name`` (decoded here unless ``image`` is given)."""
        img = image if image is not None else self.decode(name)
        return ImageFeatures(img, extract_features(self.model, img, self.config.device, precision=self.config.precision))

    def match_pair(self, f0: ImageFeatures, f1: ImageFeatures, pair: Pair) -> int:
        """Match one pair and write its result file; returns the number of matches kept."""
        c = self.config
        pf = PairFeatures(f0.image, f1.image, f0.desc, f1.desc, precision=c.precision)
        matches = match(pf, c.options)
        info = {
            "image0": pair[0], "image1": pair[1],
            "size0": list(f0.image.original_size), "size1": list(f1.image.original_size),
            "net_size0": list(f0.image.size), "net_size1": list(f1.image.size),
            "scale0": list(f0.image.scale), "scale1": list(f1.image.scale),
        }
        if c.align is not None:
            # Image 1's warped features belong to this pair alone: computed here, never cached. The
            # targets come back in image 1's own pixels, so sizes, scales and exports stay as above.
            _, matches, alignment = match_aligned(self.model, f0.image, f1.image, c.options, c.align, c.device,
                                                  precision=c.precision, first=(pf, matches))
            info.update(alignment.to_settings())
        mask = apply_filters(matches, c.filters)
        save_matches(result_path(self.out_dir, *pair), matches, mask, {**self.settings, **info})
        return int(mask.sum())

    def run(self, pairs: list[Pair], events: Events | None = None) -> BatchSummary:
        """Match every pair of ``pairs`` that has no result yet, in order."""
        events = events or Events()
        t0 = time.perf_counter()
        (self.out_dir / RESULTS).mkdir(parents=True, exist_ok=True)
        for folder in (self.out_dir, self.out_dir / RESULTS):
            remove_stale_temp_files(folder)  # what a killed write left; never read back
        done = set(done_pairs(self.out_dir, pairs))
        todo = [p for p in pairs if p not in done]
        summary = BatchSummary(pairs=len(pairs), already_done=len(done))
        cache: FeatureCache[ImageFeatures] = FeatureCache(self.config.cache_bytes, todo, lambda f: f.nbytes)
        summary.cache = cache.stats
        for pair in todo:
            try:
                # Both images are decoded before either goes through the network, so a pair with
                # a bad image costs no descriptors (a rerun whose every other pair was done
                # computed the good partners' features for nothing).
                decoded: dict[str, LoadedImage] = {}
                for name in pair:
                    if name in summary.bad_images:
                        break
                    if name in cache:
                        continue
                    try:
                        decoded[name] = self.decode(name)
                    except (ImageLoadError, OSError, ValueError, cv2.error) as exc:
                        reason = str(exc) if isinstance(exc, ImageLoadError) else f"{self.image_dir / name}: {exc}"
                        summary.bad_images[name] = reason
                        events.bad_image(name, reason)
                        break
                else:
                    feats = [cache.get(name, lambda n: self.features(n, decoded.get(n))) for name in pair]
                if any(name in summary.bad_images for name in pair):
                    summary.skipped += 1
                    events.pair_done(pair, "skipped", 0)
                    continue
                kept = self.match_pair(feats[0], feats[1], pair)
                summary.matched += 1
                summary.kept += kept
                events.pair_done(pair, "matched", kept)
            finally:
                cache.next_pair()
        summary.seconds = time.perf_counter() - t0
        return summary


# --------------------------------------------------------------------------- reading results back


@dataclass
class PairResult:
    """One pair's stored matches. Coordinates in ORIGINAL pixels (OpenCV: pixel centres at
    integers); ``kept`` marks the matches the run's filters kept."""

    name0: str
    name1: str
    keypoints0: np.ndarray  # N x 2 float32
    keypoints1: np.ndarray  # N x 2 float32
    distance: np.ndarray  # N float32, descriptor distance in [0, 2]
    kept: np.ndarray  # N bool
    size0: tuple[int, int]  # (width, height) of the original images
    size1: tuple[int, int]
    scale0: tuple[float, float]  # original = network * scale (see LoadedImage)
    scale1: tuple[float, float]


def load_result(out_dir: str | os.PathLike, pair: Pair) -> PairResult:
    """The stored result of ``pair``; ValueError naming the file when it is not one."""
    path = result_path(out_dir, *pair)
    try:
        m = load_matches(path)
        s = m["settings"]
        return PairResult(
            pair[0], pair[1], m["keypoints0"], m["keypoints1"], m["descriptor_distance"], m["mask"].astype(bool),
            tuple(s["size0"]), tuple(s["size1"]), tuple(s["scale0"]), tuple(s["scale1"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable pair result ({exc}); delete it and run again to redo the pair") from None
