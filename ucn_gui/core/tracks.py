"""Per-image keypoints from pairwise dense matches, so that tracks connect across pairs.

Dense matching gives every pair its own points: image 0's query points, and in image 1
wherever each query landed (between pixels: targets are refined to sub-pixel positions).
Reconstruction tools want one keypoint list per image and matches as indices into those
lists. The rule here: **points are grouped by the cell of the matching-resolution grid they
fall in** (by default one network pixel, the grid the descriptors live on), one keypoint per
occupied cell, **placed at the mean of the points that fell in it**.

Why this rule: a match was decided by the descriptor of one network pixel, so two points
inside that pixel are the same point seen from different pairs; grouping them makes one
keypoint, which is what lets a track run through more than two images. Placing it at the
mean rather than at the cell's centre keeps the sub-pixel positions (SIFT's query points,
the refined targets): snapping to the centre moved points by up to half a network pixel,
several original pixels on a large photo. A larger cell connects more tracks but merges
neighbouring points; after grouping a pair keeps at most one match per keypoint on each
side (the most similar descriptors win), as COLMAP's track building expects.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .batch import PairResult
from .pairs import Pair


@dataclass
class MergedMatches:
    """keypoints: name -> K x 2 float32 (x, y) ORIGINAL pixels, OpenCV convention (pixel centres
    at integers); matches: pair -> (M x 2 int64 indices into the two images' keypoints,
    M float32 scores in [0, 1], the descriptors' cosine similarity)."""

    keypoints: dict[str, np.ndarray] = field(default_factory=dict)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (width, height)
    matches: dict[Pair, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def snap_cells(xy: np.ndarray, scale: tuple[float, float], cell: int = 1) -> np.ndarray:
    """N x 2 int64 cell indices (cx, cy) of original-pixel points on the grid of ``cell``
    network pixels (network pixel = original pixel / scale, pixel centres aligned)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    step = np.asarray(scale, np.float64) * cell
    # A point's network pixel is round((x + 0.5) / s - 0.5) = floor((x + 0.5) / s).
    return np.maximum(np.floor((xy + 0.5) / step), 0).astype(np.int64)


def one_to_one(i0: np.ndarray, i1: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the matches to keep so that no keypoint is used twice on either side:
    greedily, the highest score first. Returned in the matches' original order."""
    order = np.argsort(-score, kind="stable")
    _, first0 = np.unique(i0[order], return_index=True)
    order = order[np.sort(first0)]
    _, first1 = np.unique(i1[order], return_index=True)
    return np.sort(order[np.sort(first1)])


def merge(results: Iterable[PairResult], cell: int = 1) -> MergedMatches:
    """Keypoint tables and index matches from pair results (only their kept matches)."""
    if cell < 1:
        raise ValueError(f"cell must be at least 1 network pixel, got {cell}")
    scales: dict[str, tuple[float, float]] = {}
    out = MergedMatches()
    per_pair: list[tuple[Pair, np.ndarray, np.ndarray, np.ndarray]] = []
    cells: dict[str, list[np.ndarray]] = {}
    points: dict[str, list[np.ndarray]] = {}  # the observed positions, in the order of ``cells``
    for r in results:
        for name, scale, size in ((r.name0, r.scale0, r.size0), (r.name1, r.scale1, r.size1)):
            known = scales.setdefault(name, tuple(map(float, scale)))
            if not np.allclose(known, scale, rtol=1e-6):
                raise ValueError(f"{name}: matched at two different resolutions (scale {known} and {tuple(scale)})")
            out.sizes[name] = (int(size[0]), int(size[1]))
            cells.setdefault(name, [])
            points.setdefault(name, [])
        keep = np.flatnonzero(r.kept)
        c0 = snap_cells(r.keypoints0[keep], r.scale0, cell)
        c1 = snap_cells(r.keypoints1[keep], r.scale1, cell)
        score = np.clip(1.0 - np.square(r.distance[keep].astype(np.float64)) / 2.0, 0.0, 1.0)  # cosine similarity
        ids0, ids1 = _cell_ids(c0), _cell_ids(c1)
        cells[r.name0].append(ids0)
        cells[r.name1].append(ids1)
        points[r.name0].append(r.keypoints0[keep])
        points[r.name1].append(r.keypoints1[keep])
        per_pair.append(((r.name0, r.name1), ids0, ids1, score.astype(np.float32)))
    tables: dict[str, np.ndarray] = {}
    for name, chunks in cells.items():
        if not chunks:
            tables[name], out.keypoints[name] = np.zeros(0, np.int64), np.zeros((0, 2), np.float32)
            continue
        ids, which = np.unique(np.concatenate(chunks), return_inverse=True)
        tables[name] = ids
        out.keypoints[name] = _cell_means(which, np.concatenate(points[name]), len(ids))
    for pair, ids0, ids1, score in per_pair:
        i0 = np.searchsorted(tables[pair[0]], ids0)
        i1 = np.searchsorted(tables[pair[1]], ids1)
        keep = one_to_one(i0, i1, score)
        out.matches[pair] = (np.stack([i0[keep], i1[keep]], axis=1).astype(np.int64).reshape(-1, 2), score[keep])
    return out


def _cell_means(which: np.ndarray, xy: np.ndarray, cells: int) -> np.ndarray:
    """cells x 2 float32: the mean of the points ``xy`` (N x 2) in each cell (which: N cell numbers)."""
    count = np.bincount(which, minlength=cells).astype(np.float64)
    mean = [np.bincount(which, weights=xy[:, k].astype(np.float64), minlength=cells) / count for k in (0, 1)]
    return np.stack(mean, axis=1).astype(np.float32)


# Cells as one sortable int64 (row-major): y in the high half, x in the low half.
def _cell_ids(cells: np.ndarray) -> np.ndarray:
    return (cells[:, 1] << 32) + cells[:, 0]
