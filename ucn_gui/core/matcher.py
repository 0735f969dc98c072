"""Matching photo pairs with one model, keeping the features of the last pair.

    matcher = Matcher(loaded.model)
    run = matcher.match(photo0, photo1, max_side=640, options=MatchOptions(), device="cpu")
    run.matches, run.reused          # reused: the same pair again, no forward pass
    run = matcher.match(photo0, photo1, 640, MatchOptions(), "cpu", align=trust)   # + the alignment pass
    run.alignment.summary()

The window's worker owns one per model: a run that only changes the query points
(MatchOptions) costs a search, not a forward pass. Photos become network copies
here, so callers keep only what they show (``Photo``: RGB and path).

    matches = reference_matches("SIFT", photo0, photo1, max_side=640)   # a MatchSet to compare with

A reference matcher (``core.reference_matchers``: SIFT, ORB, AKAZE, XFeat) gives a
MatchSet in the same original pixels, without the dense scores (those columns are NaN).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .alignment import FIRST_PASS_SHARE, Alignment, match_aligned, progress_range
from .filters import FilterSettings
from .image import Photo, scale_pixels
from .matching import MatchSet, PairFeatures, ProgressFn, match, match_images
from .reference_matchers import match_reference
from .settings import MatchOptions


@dataclass
class MatchRun:
    pair: PairFeatures  # descriptors of both photos (kept for click-to-query; image 1 warped when aligned)
    matches: MatchSet
    reused: bool  # features came from the cache
    alignment: Alignment | None = None  # what the alignment pass found (None: not asked for)


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
        align: FilterSettings | None = None,
        on_first_pass: Callable[[MatchRun], None] | None = None,
    ) -> MatchRun:
        """Features (from the cache when the photos, size, device and precision are the same), then :func:`match`.

        align: match again with image 1 warped into image 0's frame (core.alignment), fitting the
        warp to the matches these thresholds keep; None: one pass. The cache holds the first
        pass's features, so changing the options costs the aligned forward pass again.
        on_first_pass: called with the first pass's run when a second pass is about to start.
        """
        # Photos by identity, not equality: a newly opened photo always means new features.
        key = (photo0, photo1, max_side, str(device), precision)
        reused = self._pair is not None and _same_key(key, self._key)
        first_progress = progress if align is None else progress_range(progress, 0.0, FIRST_PASS_SHARE)
        if reused:
            first = self._pair, match(self._pair, options, None, first_progress, cancel)
        else:
            self.forget()
            img0, img1 = photo0.for_network(max_side), photo1.for_network(max_side)
            first = match_images(self.model, img0, img1, options, device, None, first_progress, cancel, precision)
            self._pair, self._key = first[0], key
        if align is None:
            return MatchRun(*first, reused)
        before_second = None if on_first_pass is None else (lambda: on_first_pass(MatchRun(*first, reused)))
        pair, matches, alignment = match_aligned(self.model, first[0].image0, first[0].image1, options, align, device,
                                                 progress, cancel, precision, first=first, before_second=before_second)
        return MatchRun(pair, matches, reused, alignment)

    def forget(self) -> None:
        """Drop the cached features (e.g. to free GPU memory)."""
        self._key, self._pair = None, None


def _same_key(a: tuple, b: tuple | None) -> bool:
    """Objects compared by identity (photos), plain values by equality."""
    if b is None or len(a) != len(b):
        return False
    return all(x is y or (isinstance(x, (int, str)) and x == y) for x, y in zip(a, b))


def reference_matches(method: str, photo0: Photo, photo1: Photo, max_side: int | None) -> MatchSet:
    """``method``'s matches (see core.reference_matchers) of two photos as a MatchSet in original
    pixels. Its pixel unit for RANSAC is the detection copy's (at most ``max_side``), like UCN's
    network copy; reciprocity, stability, distance and ratio are not measured (NaN)."""
    p0, p1 = match_reference(method, photo0.rgb, photo1.rgb, max_side)  # in the photos' (maybe reduced) arrays
    k0, k1 = _array_to_original(p0, photo0), _array_to_original(p1, photo1)
    side = max(photo0.rgb.shape[:2])
    detected = min(side, max_side) if max_side else side
    missing = np.full(len(k0), np.nan, np.float32)
    return MatchSet(k0, k1, missing, missing.copy(), missing.copy(), missing.copy(), network_side=detected,
                    error_scale=max(photo0.original_size) / detected, method=method)


def _array_to_original(xy: np.ndarray, photo: Photo) -> np.ndarray:
    sx, sy = (o / a for o, a in zip(photo.original_size, (photo.rgb.shape[1], photo.rgb.shape[0])))
    return scale_pixels(xy, sx, sy)
