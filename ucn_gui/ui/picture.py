"""Rendering the pair view's picture off screen, for "Save picture (PNG)".

    image = pair_view.render_picture()       # the view collects its items (copies)
    write_png(image, "matches.png")

The copies are painted in a private QGraphicsScene at 1 view unit = 1 photo pixel,
so the on-screen zoom, pan and clipping do not matter; at most EXPORT_MAX_SIDE
pixels on the long side (two 12,000-px photos side by side would otherwise need
a 3 GB image). Matches themselves are written by ``ucn_gui.core.match_files``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

EXPORT_MAX_SIDE = 16384
BACKGROUND = "#202124"
QUERY_COLOR = "#00ff88"


def rgb_to_qimage(rgb: np.ndarray) -> QtGui.QImage:
    """H x W x 3 uint8 -> an owned QImage (copied, so the array may go away)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


def dot_radius(bounds: QtCore.QRectF) -> float:
    """Dots scale with the picture so they stay visible on big photos."""
    return max(2.5, max(bounds.width(), bounds.height()) / 500.0)


def render(bounds: QtCore.QRectF, items: Sequence[QtWidgets.QGraphicsItem],
           marks: Sequence[tuple[float, float]] = (), radius: float = 2.5) -> QtGui.QImage:
    """Paint ``items`` (view coordinates, each used once) and "+" marks at view points ``marks``."""
    if bounds.isEmpty():
        raise ValueError("there is no image to save")
    fit = min(1.0, EXPORT_MAX_SIDE / max(bounds.width(), bounds.height()))
    width, height = int(np.ceil(bounds.width() * fit)), int(np.ceil(bounds.height() * fit))
    scene = QtWidgets.QGraphicsScene()
    for item in items:
        scene.addItem(item)
    image = QtGui.QImage(width, height, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QtGui.QColor(BACKGROUND))
    painter = QtGui.QPainter(image)
    try:
        scene.render(painter, QtCore.QRectF(0, 0, width, height), bounds)
        if marks:
            painter.scale(fit, fit)
            _draw_marks(painter, marks, bounds, radius)
    finally:
        painter.end()
    scene.clear()
    return image


def _draw_marks(painter: QtGui.QPainter, marks: Sequence[tuple[float, float]], bounds: QtCore.QRectF, radius: float) -> None:
    pen = QtGui.QPen(QtGui.QColor(QUERY_COLOR))
    pen.setWidthF(max(2.0, radius * 0.8))
    painter.setPen(pen)
    arm = radius * 4
    for x, y in marks:
        cx, cy = x - bounds.left(), y - bounds.top()
        painter.drawLine(QtCore.QPointF(cx - arm, cy), QtCore.QPointF(cx + arm, cy))
        painter.drawLine(QtCore.QPointF(cx, cy - arm), QtCore.QPointF(cx, cy + arm))


def write_png(image: QtGui.QImage, path: str | Path) -> Path:
    """OSError when the file cannot be written."""
    if not image.save(str(path), "PNG"):
        raise OSError(f"{path}: could not write the PNG (folder missing or not writable?)")
    return Path(path)
