"""Looking at an estimated two-view geometry: epipolar lines and a homography's alignment.

    line = epipolar_line(F, (x, y), side=0)          # in image 1, for a pixel of image 0
    d = line_distance(line, (x1, y1))                # pixels
    ends = clip_line(line, (w1, h1))                 # the segment inside image 1, or None
    warped = warp_onto(rgb1, H, rgb0.shape)          # image 1 seen from image 0 (x1 ~ H x0)
    picture = composite(rgb0, warped, "checkerboard", tile=64)

Matrices are those ``filters.fit_geometry`` returns: in original pixels, with x1^T F x0 = 0
and x1 ~ H x0. Pure numpy / OpenCV, so the window, scripts and tests share one definition.
"""
from __future__ import annotations

import cv2
import numpy as np

COMPOSITE_MODES = ("blend", "checkerboard", "difference")


def epipolar_line(F: np.ndarray, xy: tuple[float, float], side: int) -> np.ndarray:
    """(a, b, c) with a x + b y + c = 0 and a^2 + b^2 = 1: the line in the OTHER image on which
    the match of pixel ``xy`` of image ``side`` must lie."""
    p = np.array([xy[0], xy[1], 1.0])
    line = (F @ p) if side == 0 else (F.T @ p)
    norm = float(np.hypot(line[0], line[1]))
    return line / norm if norm > 0 else line


def line_distance(line: np.ndarray, xy: tuple[float, float]) -> float:
    """Distance in pixels from point ``xy`` to a normalised line."""
    return float(abs(line[0] * xy[0] + line[1] * xy[1] + line[2]))


def clip_line(line: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """The two ends of the line's segment inside an image of (width, height) pixels (pixel centres
    span [-0.5, size - 0.5]); None when the line misses the image."""
    a, b, c = line
    x0, y0, x1, y1 = -0.5, -0.5, size[0] - 0.5, size[1] - 0.5
    points = []
    if abs(b) > 1e-12:  # crossings with the left and right edges
        points += [(x, -(a * x + c) / b) for x in (x0, x1)]
    if abs(a) > 1e-12:  # with the top and bottom edges
        points += [(-(b * y + c) / a, y) for y in (y0, y1)]
    inside = [p for p in points if x0 - 1e-6 <= p[0] <= x1 + 1e-6 and y0 - 1e-6 <= p[1] <= y1 + 1e-6]
    if len(inside) < 2:
        return None
    pts = np.array(inside)
    # The two crossings farthest apart (a line through a corner gives duplicates).
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    return (pts[i], pts[j]) if d[i, j] > 0 else None


def warp_onto(rgb1: np.ndarray, H: np.ndarray, shape0: tuple[int, ...],
              scale0: tuple[float, float] = (1.0, 1.0), scale1: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Image 1 resampled on image 0's grid (black where it does not reach).

    H maps original pixels of image 0 to those of image 1; ``rgb0``'s and ``rgb1``'s arrays may be
    reduced copies (original = array pixel * scale, e.g. the window's display copies)."""
    S0 = np.diag([scale0[0], scale0[1], 1.0])
    S1_inv = np.diag([1.0 / scale1[0], 1.0 / scale1[1], 1.0])
    M = S1_inv @ H @ S0  # array pixels of image 0 -> array pixels of image 1
    h0, w0 = shape0[:2]
    return cv2.warpPerspective(rgb1, M, (w0, h0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def composite(rgb0: np.ndarray, warped1: np.ndarray, mode: str, alpha: float = 0.5, tile: int = 64) -> np.ndarray:
    """How well image 1 (warped onto image 0) lines up with image 0, as one H x W x 3 uint8 picture.

    blend: (1 - alpha) image 0 + alpha image 1; checkerboard: tiles of each in turn (edges
    that continue across tiles mean a good alignment); difference: |image 0 - image 1|
    (dark where they agree)."""
    if mode == "blend":
        return cv2.addWeighted(rgb0, 1.0 - alpha, warped1, alpha, 0.0)
    if mode == "checkerboard":
        h, w = rgb0.shape[:2]
        yy, xx = np.ogrid[:h, :w]
        odd = ((yy // tile + xx // tile) % 2).astype(bool)
        return np.where(odd[..., None], warped1, rgb0)
    if mode == "difference":
        return cv2.absdiff(rgb0, warped1)
    raise ValueError(f"unknown composite mode {mode!r} ({', '.join(COMPOSITE_MODES)})")
