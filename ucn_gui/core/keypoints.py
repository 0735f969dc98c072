"""Query-point sources for image 0. All return N x 2 float32 (x, y) in the pixels
of the image they are given (the network-resolution copy when called by matching)."""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .nn import check_cancel
from .settings import MatchOptions

KEYPOINT_MODES = ("sift", "grid", "all")  # TEXTURE_GATED_MODES (settings) are those that skip flat pixels

# Texture is measured over this many pixels square (the structure tensor's window): about the
# size of what the network's first layers see around a pixel.
TEXTURE_WINDOW = 5

# Above this many pixels SIFT runs tile by tile (one detection call on a 2,048 x 1,462
# image took 0.9 s here, too long to wait for a Cancel); a tile's core is SIFT_TILE
# pixels square, and it is detected with SIFT_MARGIN pixels of context on each side.
SIFT_TILE_ABOVE = 1_500_000
SIFT_TILE = 768
SIFT_MARGIN = 64


def sift_points(
    gray: np.ndarray,
    max_points: int = MatchOptions.max_keypoints,
    contrast_threshold: float = 0.01,
    cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """SIFT detections, strongest first, one per pixel.

    gray: H x W float in [-0.5, 0.5] or uint8. A low contrast threshold gives many
    points, as the seed does: the descriptors, not the detector, decide the match.
    Images above SIFT_TILE_ABOVE pixels are detected in overlapping tiles, with
    ``cancel`` checked between tiles; a point is kept by the tile whose core holds it,
    so points near tile borders can differ slightly from one whole-image detection.
    """
    if gray.dtype != np.uint8:
        gray = np.clip((gray + 0.5) * 255.0, 0, 255).astype(np.uint8)
    sift = cv2.SIFT_create(nfeatures=max_points * 2, contrastThreshold=contrast_threshold)
    check_cancel(cancel, "query points")
    if gray.size <= SIFT_TILE_ABOVE:
        xy, response = _detect(sift, gray)
    else:
        xy, response = _detect_tiled(sift, gray, cancel)
    if not len(xy):
        return np.zeros((0, 2), np.float32)
    xy = xy[np.argsort(-response, kind="stable")]
    return unique_pixels(xy)[:max_points]


def _detect(sift: cv2.SIFT, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N x 2 float32 positions, N responses)."""
    kps = sift.detect(gray, None)
    if not kps:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.float32)
    # KeyPoint_convert avoids a Python loop over thousands of points (it held the
    # GIL long enough to stall the GUI thread).
    xy = cv2.KeyPoint_convert(kps).astype(np.float32)
    return xy, np.fromiter((kp.response for kp in kps), np.float32, len(kps))


def _detect_tiled(sift: cv2.SIFT, gray: np.ndarray, cancel: Callable[[], bool] | None) -> tuple[np.ndarray, np.ndarray]:
    h, w = gray.shape
    xys, responses = [], []
    for y0 in range(0, h, SIFT_TILE):
        for x0 in range(0, w, SIFT_TILE):
            check_cancel(cancel, "query points")
            ya, xa = max(0, y0 - SIFT_MARGIN), max(0, x0 - SIFT_MARGIN)
            tile = gray[ya : min(h, y0 + SIFT_TILE + SIFT_MARGIN), xa : min(w, x0 + SIFT_TILE + SIFT_MARGIN)]
            xy, response = _detect(sift, tile)
            xy += (xa, ya)
            core = (xy[:, 0] >= x0) & (xy[:, 0] < x0 + SIFT_TILE) & (xy[:, 1] >= y0) & (xy[:, 1] < y0 + SIFT_TILE)
            xys.append(xy[core])
            responses.append(response[core])
    return np.concatenate(xys), np.concatenate(responses)


def grid_points(width: int, height: int, stride: int = MatchOptions.grid_stride) -> np.ndarray:
    """A regular grid, offset by half a stride so it is centred in the image."""
    if stride < 1:
        raise ValueError(f"grid stride must be >= 1, got {stride}")
    xs = np.arange(stride // 2, width, stride, dtype=np.float32)
    ys = np.arange(stride // 2, height, stride, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def all_points(width: int, height: int) -> np.ndarray:
    """Every pixel, row-major."""
    return grid_points(width, height, stride=1) if width and height else np.zeros((0, 2), np.float32)


def texture_map(gray: np.ndarray) -> np.ndarray:
    """H x W float32: the smaller eigenvalue of the structure tensor over a TEXTURE_WINDOW square.

    gray: H x W, float in [-0.5, 0.5] or [0, 1], or uint8 (OpenCV scales uint8 by 1/255, so all
    three give the same numbers). Large where intensity varies in two directions (corners,
    texture), small along a single edge, about 0 in flat sky or a blank wall.
    """
    if gray.dtype != np.uint8:
        gray = np.ascontiguousarray(gray, dtype=np.float32)
    return cv2.cornerMinEigenVal(gray, TEXTURE_WINDOW, 3)


def textured_points(points: np.ndarray, gray: np.ndarray, min_texture: float) -> np.ndarray:
    """The points (N x 2 float32, pixels of ``gray``) whose :func:`texture_map` value is at least ``min_texture``.

    Flat pixels have no distinctive descriptor, so their nearest neighbour is close to a
    guess and a few of those guesses still pass the cycle tests: on the accuracy benchmark's
    real pairs a 4-px grid with the alignment pass kept matches at 0.81 precision (2 px), and
    at 0.88 with the flat pixels (half the grid at 1e-4) left out. ``min_texture`` <= 0 keeps
    every point.
    """
    if min_texture <= 0 or not len(points):
        return points
    tex = texture_map(gray)
    xy = to_pixel(points, tex.shape[1], tex.shape[0])
    return points[tex[xy[:, 1], xy[:, 0]] >= min_texture]


def to_pixel(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Round to the nearest pixel and clip to the image: N x 2 int64."""
    out = np.round(np.asarray(xy, dtype=np.float64)).astype(np.int64).reshape(-1, 2)
    out[:, 0] = np.clip(out[:, 0], 0, width - 1)
    out[:, 1] = np.clip(out[:, 1], 0, height - 1)
    return out


def unique_pixels(xy: np.ndarray) -> np.ndarray:
    """Drop points that round to an already-seen pixel; keeps first occurrences, in order."""
    rounded = np.round(xy).astype(np.int64)
    _, first = np.unique(rounded[:, 1] * (1 << 32) + rounded[:, 0], return_index=True)
    return xy[np.sort(first)]


def read_points_file(path: str) -> np.ndarray:
    """'x y' per line (commas allowed, '#' comments) -> N x 2 float32."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].replace(",", " ").strip()
            if not line:
                continue
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError
                rows.append((float(parts[0]), float(parts[1])))
            except ValueError:
                raise ValueError(f"{path}:{lineno}: expected 'x y', got {line!r}") from None
    return np.array(rows, dtype=np.float32).reshape(-1, 2)


class QueryPointsError(ValueError):
    """Query points that cannot be matched: outside the image, NaN or infinite."""


def points_inside(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boolean N: finite points within the image's area, x in [-0.5, width - 0.5], y likewise.

    That area is the pixels' own extent (pixel centres at integer coordinates), so a kept
    point is never moved by more than half a pixel to land on one; others would be clamped
    to the border and matched there as if the user had asked for the border.
    """
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(xy).all(axis=1)
            & (xy[:, 0] >= -0.5) & (xy[:, 0] <= width - 0.5)
            & (xy[:, 1] >= -0.5) & (xy[:, 1] <= height - 0.5)
        )


def check_query_points(points: np.ndarray, width: int, height: int, drop: bool = False) -> tuple[np.ndarray, str | None]:
    """(points to match, notice or None) for N x 2 (x, y) query points of a width x height image.

    Points outside the image, NaN or infinite are never clamped: with ``drop`` they are
    removed and the notice counts them ("3 of 300 query points outside the image were
    dropped"); without it, or when none would be left, QueryPointsError says the same.
    """
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    ok = points_inside(xy, width, height)
    bad = int((~ok).sum())
    if bad == 0:
        return xy.astype(np.float32), None
    first = xy[np.flatnonzero(~ok)[0]]
    what = f"{bad} of {len(xy)} query points outside the {width}x{height} image (or not finite)"
    example = f"first: x={first[0]:g}, y={first[1]:g}; valid: x and y from -0.5 to {width - 0.5:g} and {height - 0.5:g}"
    if not drop:
        raise QueryPointsError(f"{what}: refused, nothing was matched ({example})")
    if bad == len(xy):
        raise QueryPointsError(f"{what}: no query point is left to match ({example})")
    return xy[ok].astype(np.float32), f"{what} were dropped ({example})"
