"""Two-view geometry for the YFCC labels: calibration records, essential matrices, epipolar distances.

Conventions (those of the YFCC100M dump open-ucn uses): a camera maps world points
by x_cam = R X + T; K is the intrinsic matrix, and when its principal point is zero
(as in that dump) pixel coordinates are first centred on imsize / 2 = (w / 2, h / 2).
A serialised calibration is the seed's 32-float record: K (9), R (9), T (3),
imsize (2), inverse K (9), so files made by open-ucn's gen_yfcc load unchanged.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def serialize_calibration(calib: Mapping[str, np.ndarray]) -> np.ndarray:
    """dict with K 3x3, R 3x3, T 3 (any shape), imsize 2 -> 32 float64."""
    K = np.asarray(calib["K"], dtype=np.float64).reshape(3, 3)
    parts = [
        K.ravel(),
        np.asarray(calib["R"], dtype=np.float64).reshape(9),
        np.asarray(calib["T"], dtype=np.float64).reshape(3),
        np.asarray(calib["imsize"], dtype=np.float64).reshape(2),
        np.linalg.inv(K).ravel(),
    ]
    return np.concatenate(parts)


def parse_calibration(record: np.ndarray) -> dict[str, np.ndarray]:
    """32 floats -> dict K, R, T (3,), imsize (2,) as (w, h)."""
    r = np.asarray(record, dtype=np.float64).ravel()
    if r.size < 23:
        raise ValueError(f"calibration record has {r.size} values, expected 32")
    return {"K": r[:9].reshape(3, 3), "R": r[9:18].reshape(3, 3), "T": r[18:21].copy(), "imsize": r[21:23].copy()}


def normalize_keypoints(xy: np.ndarray, K: np.ndarray, imsize: np.ndarray) -> np.ndarray:
    """N x 2 pixels -> N x 3 homogeneous normalised camera coordinates."""
    xy = np.asarray(xy, dtype=np.float64)
    if abs(K[0, 2]) < 1e-9 and abs(K[1, 2]) < 1e-9:
        xy = xy - np.asarray(imsize, dtype=np.float64).reshape(1, 2) * 0.5  # principal point not in K
    h = np.concatenate([xy, np.ones((len(xy), 1))], 1)
    return h @ np.linalg.inv(K).T


def relative_pose(R0: np.ndarray, T0: np.ndarray, R1: np.ndarray, T1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) taking camera-0 coordinates to camera-1 coordinates."""
    R = R1 @ R0.T
    t = np.asarray(T1, dtype=np.float64).reshape(3) - R @ np.asarray(T0, dtype=np.float64).reshape(3)
    return R, t


def skew(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64).reshape(3)
    return np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])


def essential_matrix(calib0: Mapping[str, np.ndarray], calib1: Mapping[str, np.ndarray]) -> np.ndarray:
    """E with x1^T E x0 = 0 for normalised homogeneous points x0 (camera 0) and x1 (camera 1)."""
    R, t = relative_pose(calib0["R"], calib0["T"], calib1["R"], calib1["T"])
    return skew(t) @ R


def symmetric_epipolar_distance(E: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """N: |x1^T E x0| times the sum of inverse line norms, i.e. the distance of x1 to
    the epipolar line of x0 plus that of x0 to the line of x1 (normalised coordinates).

    x0, x1: N x 3 homogeneous normalised points.
    """
    l1 = x0 @ E.T  # epipolar lines in image 1
    l0 = x1 @ E  # epipolar lines in image 0
    r = np.abs(np.sum(l1 * x1, 1))
    return r * (1.0 / np.sqrt(l1[:, 0] ** 2 + l1[:, 1] ** 2 + 1e-12) + 1.0 / np.sqrt(l0[:, 0] ** 2 + l0[:, 1] ** 2 + 1e-12))
