"""Saving what the window shows: the picture as PNG at full image resolution
(at most EXPORT_MAX_SIDE pixels on its long side: two 12,000-px photos side by side
would otherwise need a 3 GB image).

Matches themselves are written by ``ucn_gui.core.match_files.save_matches`` (same
columns as ``ucn-match``); this module only renders the current picture, in a
private QGraphicsScene so the on-screen zoom, pan and clipping do not matter.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .items import DotsItem, LinesItem

if TYPE_CHECKING:
    from .pair_view import PairView

EXPORT_MAX_SIDE = 16384


def rgb_to_qimage(rgb: np.ndarray) -> QtGui.QImage:
    """H x W x 3 uint8 -> an owned QImage (copied, so the array may go away)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


def render_scene(view: PairView) -> QtGui.QImage:
    """Render images, heat map, lines, dots and query markers of ``view`` at 1 view unit = 1 pixel
    (photo pixels; scaled down to EXPORT_MAX_SIDE when the picture is larger)."""
    bounds = view.scene_bounds()
    if bounds.isEmpty():
        raise ValueError("there is no image to save")
    fit = min(1.0, EXPORT_MAX_SIDE / max(bounds.width(), bounds.height()))
    width, height = int(np.ceil(bounds.width() * fit)), int(np.ceil(bounds.height() * fit))
    scene = QtWidgets.QGraphicsScene()
    keep = []  # Python references for items the scene does not own from Python's view
    for side, shown in enumerate(view._shown):
        if shown is None:
            continue
        item = QtWidgets.QGraphicsPixmapItem(QtGui.QPixmap.fromImage(rgb_to_qimage(shown)))
        item.setTransformationMode(QtCore.Qt.TransformationMode.SmoothTransformation)
        w, h = view.image_size(side)  # a reduced display copy is stretched over the photo's pixels
        item.setTransform(QtGui.QTransform.fromScale(w / shown.shape[1], h / shown.shape[0]))
        if side == 1:
            item.setPos(*view.offset1)
        scene.addItem(item)
        keep.append(item)
    if view.heat_item.isVisible() and view.heat_item.image is not None:
        heat = pg.ImageItem(view.heat_item.image, axisOrder="row-major", levels=view.heat_item.levels)
        heat.setLookupTable(view.heat_item.lut)
        heat.setOpacity(view.heat_item.opacity())
        heat.setRect(view.heat_item.mapRectToParent(view.heat_item.boundingRect()))
        scene.addItem(heat)
        keep.append(heat)
    # Dots scale with the picture so they stay visible on big photos.
    radius = max(2.5, max(bounds.width(), bounds.height()) / 500.0)
    lines = LinesItem(width=max(1.0, radius / 2.5))
    dots = DotsItem(radius=radius)
    for item in (lines, dots):
        item.set_bounds(bounds)
        scene.addItem(item)
        keep.append(item)
    lines._paths = view.lines_item._paths  # same segments, already batched
    dots.set_points(view.dots_item._xy, view.dots_item._cidx)

    image = QtGui.QImage(width, height, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QtGui.QColor("#202124"))
    painter = QtGui.QPainter(image)
    try:
        scene.render(painter, QtCore.QRectF(0, 0, width, height), bounds)
        if view._query is not None:
            painter.scale(fit, fit)
            _draw_query_marks(painter, view, bounds, radius)
    finally:
        painter.end()
    scene.clear()
    return image


def _draw_query_marks(painter: QtGui.QPainter, view: PairView, bounds: QtCore.QRectF, radius: float) -> None:
    x0, y0, _, (x1, y1) = view._query
    pen = QtGui.QPen(QtGui.QColor("#00ff88"))
    pen.setWidthF(max(2.0, radius * 0.8))
    painter.setPen(pen)
    arm = radius * 4
    for x, y in ((x0 + 0.5, y0 + 0.5), (x1 + 0.5 + view.offset1[0], y1 + 0.5 + view.offset1[1])):
        cx, cy = x - bounds.left(), y - bounds.top()
        painter.drawLine(QtCore.QPointF(cx - arm, cy), QtCore.QPointF(cx + arm, cy))
        painter.drawLine(QtCore.QPointF(cx, cy - arm), QtCore.QPointF(cx, cy + arm))


def save_picture(view: PairView, path: str) -> None:
    """PNG of the current picture at full image resolution; OSError when it cannot be written."""
    image = render_scene(view)
    if not image.save(str(path), "PNG"):
        raise OSError(f"{path}: could not write the PNG (folder missing or not writable?)")
