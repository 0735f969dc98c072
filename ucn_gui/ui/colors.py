"""Colours of the match dots: the seed's jet look, as a small lookup table.

Colour index of a match = its position in image 0 (the core's
``position_fraction``, the rule the exported PNG uses too), quantised to
``N_COLORS`` entries so drawing groups points by colour instead of carrying one
colour object per point. Two more entries colour RANSAC's verdict when outliers are
shown: ``INLIER`` (green) and ``OUTLIER`` (red).
"""
from __future__ import annotations

import numpy as np

from ucn_gui.core.drawing import jet_lut, position_fraction

N_COLORS = 64

JET_RGB = jet_lut(N_COLORS)  # N_COLORS x 3 uint8
INLIER, OUTLIER = N_COLORS, N_COLORS + 1  # palette entries after the jet colours
PALETTE_RGB = np.concatenate([JET_RGB, np.array([[40, 220, 90], [255, 50, 50]], np.uint8)])
# Opaque ARGB32 words, ready to be written into a QImage buffer.
PALETTE_ARGB32 = (0xFF000000 | (PALETTE_RGB[:, 0].astype(np.uint32) << 16) | (PALETTE_RGB[:, 1].astype(np.uint32) << 8)
                  | PALETTE_RGB[:, 2]).astype(np.uint32)
JET_ARGB32 = PALETTE_ARGB32[:N_COLORS]


def verdict_index(inliers: np.ndarray) -> np.ndarray:
    """N uint8 palette index: INLIER or OUTLIER."""
    return np.where(np.asarray(inliers, bool), INLIER, OUTLIER).astype(np.uint8)


def color_index(xy0: np.ndarray, width: int, height: int) -> np.ndarray:
    """N uint8 LUT index from (x, y) in image 0 (original pixels)."""
    if len(xy0) == 0:
        return np.zeros(0, np.uint8)
    t = position_fraction(xy0, width, height)
    return np.minimum((t * N_COLORS).astype(np.int64), N_COLORS - 1).astype(np.uint8)
