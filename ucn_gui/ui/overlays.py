"""Small overlays of the pair view: the highlighted match, the click-to-query heat map and
an epipolar line.

Each holds a few pyqtgraph items (added to the view box by the view) and takes view
coordinates from the view's ``to_view``; none knows where the photos are placed.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from .picture import QUERY_COLOR

EPIPOLAR_COLOR = "#ffd400"

ToView = Callable[[int, tuple[float, float]], np.ndarray]  # PairView.to_view


class Highlight:
    """The hovered or selected match: a white ring in each image and a line between them."""

    def __init__(self) -> None:
        self.line = pg.PlotDataItem(pen=pg.mkPen("w", width=2))
        self.dots = pg.ScatterPlotItem(size=16, pen=pg.mkPen("w", width=2.5), brush=None, pxMode=True)
        self.line.setZValue(30)
        self.dots.setZValue(31)
        self.items = (self.line, self.dots)

    def show(self, ends: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Mark two view points (None: nothing)."""
        xs, ys = ([], []) if ends is None else ([ends[0][0], ends[1][0]], [ends[0][1], ends[1][1]])
        self.dots.setData(xs, ys)
        self.line.setData(xs, ys)


class QueryOverlay:
    """Descriptor similarity of one pixel of one image as a heat map over the other image, with
    "+" marks at that pixel and at its best match."""

    def __init__(self) -> None:
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        # Inferno with an alpha ramp: dissimilar pixels stay see-through, so the photo
        # shows where the descriptor is NOT similar and the heat where it is.
        lut = pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=True)
        lut[:, 3] = (np.linspace(0.0, 1.0, 256) ** 1.5 * 235).astype(np.uint8)
        self.heat_item.setLookupTable(lut)
        self.heat_item.setZValue(5)
        self.heat_item.hide()
        self.marks = pg.ScatterPlotItem(size=20, symbol="+", pen=pg.mkPen(QUERY_COLOR, width=2.5), brush=None)
        self.marks.setZValue(32)
        self.items = (self.heat_item, self.marks)
        self.side = 0  # the image the query pixel is in; the heat map covers the other one
        self.points: tuple[tuple[float, float], tuple[float, float]] | None = None  # query, best (original pixels)

    def show(self, query: tuple[float, float], similarity: np.ndarray, best: tuple[float, float], side: int = 0) -> None:
        """similarity: the other image at the network resolution (stretched over it by ``place``)."""
        self.side, self.points = side, (query, best)
        # From the median up: half of the image is see-through whatever the model's range is.
        lo, hi = float(np.median(similarity)), float(similarity.max())
        self.heat_item.setImage(similarity, autoLevels=False, levels=(lo, max(hi, lo + 1e-6)))
        self.heat_item.show()

    def clear(self) -> None:
        self.points = None
        self.heat_item.hide()

    def marks_in_view(self, to_view: ToView) -> list[tuple[float, float]]:
        if self.points is None:
            return []
        return [tuple(to_view(self.side, self.points[0])), tuple(to_view(1 - self.side, self.points[1]))]

    def place(self, rects: Callable[[int], QtCore.QRectF | None], to_view: ToView) -> None:
        """Stretch the heat map over the other image's area and put the marks where the points are."""
        target = rects(1 - self.side)
        if target is not None:
            self.heat_item.setRect(target)
        marks = self.marks_in_view(to_view)
        self.marks.setData([m[0] for m in marks], [m[1] for m in marks])

    def copy_for_export(self) -> pg.ImageItem | None:
        """The heat map as a new item at the same place (None when hidden)."""
        heat = self.heat_item
        if not heat.isVisible() or heat.image is None:
            return None
        copy = pg.ImageItem(heat.image, axisOrder="row-major", levels=heat.levels)
        copy.setLookupTable(heat.lut)
        copy.setOpacity(heat.opacity())
        copy.setRect(heat.mapRectToParent(heat.boundingRect()))
        return copy


class EpipolarOverlay:
    """The epipolar line of a clicked pixel in the other image (dashed), ends in view coordinates."""

    def __init__(self) -> None:
        self.line = pg.PlotDataItem(pen=pg.mkPen(EPIPOLAR_COLOR, width=2, style=QtCore.Qt.PenStyle.DashLine))
        self.line.setZValue(33)
        self.items = (self.line,)
        self.side = 1  # the image the line is drawn in
        self.ends: tuple[np.ndarray, np.ndarray] | None = None  # in that image's original pixels

    def show(self, side: int, ends: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.side, self.ends = side, ends

    def place(self, to_view: ToView) -> None:
        if self.ends is None:
            self.line.setData([], [])
            return
        a, b = (to_view(self.side, e) for e in self.ends)
        self.line.setData([a[0], b[0]], [a[1], b[1]])
