"""Colours of the match dots: the seed's jet look, as a small lookup table.

Colour index of a match = its position in image 0 ((x/w + y/h) / 2, the same rule
as ``ucn_gui.core.export.jet_colors``), quantised to ``N_COLORS`` entries so drawing
groups points by colour instead of carrying one colour object per point.
"""
from __future__ import annotations

import cv2
import numpy as np

N_COLORS = 64


def _jet_rgb(n: int) -> np.ndarray:
    """n x 3 uint8 RGB sampled from OpenCV's JET map (what the exported PNG uses)."""
    ramp = np.linspace(0, 255, n).round().astype(np.uint8)[:, None]
    return cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[:, 0, ::-1].copy()


JET_RGB = _jet_rgb(N_COLORS)  # N_COLORS x 3 uint8
# Opaque ARGB32 words, ready to be written into a QImage buffer.
JET_ARGB32 = (0xFF000000 | (JET_RGB[:, 0].astype(np.uint32) << 16) | (JET_RGB[:, 1].astype(np.uint32) << 8) | JET_RGB[:, 2]).astype(np.uint32)


def color_index(xy0: np.ndarray, width: int, height: int) -> np.ndarray:
    """N uint8 LUT index from (x, y) in image 0 (original pixels)."""
    if len(xy0) == 0:
        return np.zeros(0, np.uint8)
    t = (xy0[:, 0] / max(width, 1) + xy0[:, 1] / max(height, 1)) * 0.5
    return np.clip((t * N_COLORS).astype(np.int64), 0, N_COLORS - 1).astype(np.uint8)
