"""Thresholds -> boolean masks over a MatchSet. Pure and instant: nothing is recomputed.

    keep = filter_mask(matches, FilterSettings(reciprocity=4, stability=4))
    keep &= ransac_mask(matches, keep, "homography", 3.0)
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .matching import MatchSet

RANSAC_MODELS = ("homography", "fundamental")


@dataclass
class FilterSettings:
    """A threshold of None switches that test off. Defaults follow the seed (4 px each)."""

    reciprocity: float | None = 4.0  # max cycle error, px
    stability: float | None = 4.0  # max cycle error after a 1-px shift, px
    max_distance: float | None = None  # max descriptor distance in [0, 2]
    max_ratio: float | None = None  # max nearest / second-nearest distance ratio
    ransac: str | None = None  # None | homography | fundamental
    ransac_threshold: float = 3.0  # px

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the setting when a threshold is NaN (a NaN cut would silently
        keep or drop everything) or RANSAC is set up wrongly."""
        for name in ("reciprocity", "stability", "max_distance", "max_ratio"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value)):
                raise ValueError(f"{name} threshold must be a number or None (off), got {value!r}")
        if self.ransac and self.ransac not in RANSAC_MODELS:
            raise ValueError(f"unknown RANSAC model {self.ransac!r} ({' or '.join(RANSAC_MODELS)})")
        t = self.ransac_threshold
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"ransac_threshold must be a positive number of pixels, got {t!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def filter_mask(matches: MatchSet, settings: FilterSettings) -> np.ndarray:
    """Boolean N: candidates passing every enabled threshold test (no RANSAC)."""
    keep = np.ones(len(matches), dtype=bool)
    if settings.reciprocity is not None:
        keep &= matches.reciprocity_error <= settings.reciprocity
    if settings.stability is not None:
        keep &= matches.stability_error <= settings.stability
    if settings.max_distance is not None:
        keep &= matches.descriptor_distance <= settings.max_distance
    if settings.max_ratio is not None:
        keep &= matches.ratio <= settings.max_ratio
    return keep


def ransac_mask(
    matches: MatchSet, keep: np.ndarray, model: str = "homography", threshold: float = 3.0, seed: int = 0
) -> np.ndarray:
    """Boolean N: the RANSAC inliers among ``keep`` (all False when too few to fit)."""
    if model not in RANSAC_MODELS:
        raise ValueError(f"unknown RANSAC model {model!r} ({' or '.join(RANSAC_MODELS)})")
    out = np.zeros(len(matches), dtype=bool)
    sel = np.flatnonzero(keep)
    need = 4 if model == "homography" else 8
    if len(sel) < need:
        return out
    p0 = matches.keypoints0[sel].astype(np.float64)
    p1 = matches.keypoints1[sel].astype(np.float64)
    cv2.setRNGSeed(seed)  # so the same thresholds give the same picture
    if model == "homography":
        _, inl = cv2.findHomography(p0, p1, cv2.USAC_MAGSAC, threshold, maxIters=10000, confidence=0.9999)
    else:
        _, inl = cv2.findFundamentalMat(p0, p1, cv2.USAC_MAGSAC, threshold, 0.9999, 10000)
    if inl is not None:
        out[sel] = inl.ravel().astype(bool)
    return out


def apply_filters(matches: MatchSet, settings: FilterSettings) -> np.ndarray:
    """Thresholds, then RANSAC on the survivors when settings.ransac is set."""
    keep = filter_mask(matches, settings)
    if settings.ransac:
        keep &= ransac_mask(matches, keep, settings.ransac, settings.ransac_threshold)
    return keep


def default_filters(card: dict | None = None) -> FilterSettings:
    """The thresholds a model's card recommends (``"default_filters"``: reciprocity, stability,
    max_distance, max_ratio; a null switches a test off), else FilterSettings' own defaults.

    A model's descriptors decide where its cycle errors fall, so the thresholds chosen on its
    validation benchmark travel with it rather than being hard-coded in the app.
    """
    settings = FilterSettings()
    chosen = (card or {}).get("default_filters") or {}
    for name in ("reciprocity", "stability", "max_distance", "max_ratio"):
        if name in chosen:
            value = chosen[name]
            setattr(settings, name, None if value is None else float(value))
    settings.validate()
    return settings
