"""Thresholds -> boolean masks over a MatchSet. Pure and instant: nothing is recomputed.

    keep = filter_mask(matches, FilterSettings(reciprocity=4, stability=4))
    fit = fit_geometry(matches, keep, "homography", 3.0)   # inliers and the 3 x 3 matrix
    drawn = drawn_indices(keep, draw_order(len(matches)), cap=5000)   # what a picture shows

Every pixel threshold of FilterSettings (reciprocity, stability, RANSAC) is in pixels
of image 0 at the network's resolution, so it means the same on a photo of any size;
``ransac_mask`` itself takes a threshold in the keypoints' (original) pixels.
FilterSettings itself lives in ``settings.py`` with the other defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from .matching import MatchSet
from .settings import RANSAC_MODELS, THRESHOLDS, FilterSettings


def filter_mask(matches: MatchSet, settings: FilterSettings) -> np.ndarray:
    """Boolean N: candidates passing every enabled threshold test (no RANSAC).

    Reciprocity and stability thresholds are in pixels at the network's resolution, like
    the MatchSet's errors. A reference matcher's matches (SIFT, ...) have no such scores:
    the threshold tests do not apply to them (only RANSAC does)."""
    keep = np.ones(len(matches), dtype=bool)
    if not matches.has_scores:
        return keep
    if settings.reciprocity is not None:
        keep &= matches.reciprocity_error <= settings.reciprocity
    if settings.stability is not None:
        keep &= matches.stability_error <= settings.stability
    if settings.max_distance is not None:
        keep &= matches.descriptor_distance <= settings.max_distance
    if settings.max_ratio is not None:
        keep &= matches.ratio <= settings.max_ratio
    return keep


@dataclass
class Geometry:
    """What RANSAC estimated from the surviving matches."""

    model: str  # homography | fundamental
    matrix: np.ndarray | None  # 3 x 3 float64 in original pixels: x1 ~ H x0, or x1^T F x0 = 0; None: too few to fit
    inliers: np.ndarray  # boolean N over the MatchSet


def ransac_mask(
    matches: MatchSet, keep: np.ndarray, model: str = "homography", threshold: float = FilterSettings.ransac_threshold,
    seed: int = 0,
) -> np.ndarray:
    """Boolean N: the RANSAC inliers among ``keep`` (all False when too few to fit);
    ``threshold`` in the keypoints' (original) pixels."""
    return _ransac(matches, keep, model, threshold, seed).inliers


def fit_geometry(matches: MatchSet, keep: np.ndarray, model: str = "homography",
                 threshold: float = FilterSettings.ransac_threshold, seed: int = 0) -> Geometry:
    """RANSAC over ``keep`` with ``threshold`` in pixels at the network's resolution (the unit of
    every FilterSettings threshold), converted to original pixels with the MatchSet's scale."""
    return _ransac(matches, keep, model, threshold * matches.error_scale, seed)


def _ransac(matches: MatchSet, keep: np.ndarray, model: str, threshold: float, seed: int) -> Geometry:
    if model not in RANSAC_MODELS:
        raise ValueError(f"unknown RANSAC model {model!r} ({' or '.join(RANSAC_MODELS)})")
    out = np.zeros(len(matches), dtype=bool)
    sel = np.flatnonzero(keep)
    need = 4 if model == "homography" else 8
    if len(sel) < need:
        return Geometry(model, None, out)
    p0 = matches.keypoints0[sel].astype(np.float64)
    p1 = matches.keypoints1[sel].astype(np.float64)
    cv2.setRNGSeed(seed)  # so the same thresholds give the same picture
    if model == "homography":
        matrix, inl = cv2.findHomography(p0, p1, cv2.USAC_MAGSAC, threshold, maxIters=10000, confidence=0.9999)
    else:
        matrix, inl = cv2.findFundamentalMat(p0, p1, cv2.USAC_MAGSAC, threshold, 0.9999, 10000)
    if inl is not None:
        out[sel] = inl.ravel().astype(bool)
    if matrix is None or matrix.shape != (3, 3) or not out.any():
        return Geometry(model, None, out)
    return Geometry(model, np.asarray(matrix, np.float64), out)


def apply_filters(matches: MatchSet, settings: FilterSettings) -> np.ndarray:
    """Thresholds, then RANSAC on the survivors when settings.ransac is set (all in network pixels)."""
    keep = filter_mask(matches, settings)
    if settings.ransac:
        keep &= fit_geometry(matches, keep, settings.ransac, settings.ransac_threshold).inliers
    return keep


def default_filters(card: dict | None = None, base: FilterSettings | None = None) -> FilterSettings:
    """The thresholds a model's card recommends (``"default_filters"``: reciprocity, stability,
    max_distance, max_ratio; a null switches a test off) over ``base`` (default: FilterSettings()),
    whose other settings (RANSAC) stay as they are.

    A model's descriptors decide where its cycle errors fall, so the thresholds chosen on its
    validation benchmark travel with it rather than being hard-coded in the app.
    """
    defaults = FilterSettings()
    chosen = (card or {}).get("default_filters") or {}
    thresholds = {name: getattr(defaults, name) for name in THRESHOLDS}  # a test the card does not name
    for name in THRESHOLDS:
        if name in chosen:
            thresholds[name] = None if chosen[name] is None else float(chosen[name])
    return replace(base or defaults, **thresholds)  # validated again (a NaN from the card is refused)


def draw_order(n: int, seed: int = 0) -> np.ndarray:
    """A fixed random order of ``n`` candidates (int64), made once per MatchSet.

    Taking survivors in this order under a drawing cap keeps the same ones drawn as
    thresholds move, and spreads the drawn sample over the whole image.
    """
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


def drawn_indices(mask: np.ndarray, order: np.ndarray, cap: int) -> np.ndarray:
    """Indices of at most ``cap`` survivors of ``mask``, the first ones in ``order``."""
    return order[mask[order]][:cap]


__all__ = ["FilterSettings", "Geometry", "RANSAC_MODELS", "apply_filters", "fit_geometry", "default_filters", "draw_order", "drawn_indices",
           "filter_mask", "ransac_mask"]
