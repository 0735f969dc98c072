"""Small overlays of the pair view: the highlighted match and the click-to-query heat map.

Both hold a few pyqtgraph items (added to the view box by the view) and take view
coordinates from the view's ``to_view``; neither knows where the photos are placed.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from .picture import QUERY_COLOR

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
    """Descriptor similarity of one pixel of image 0 as a heat map over image 1, with "+"
    marks at that pixel and at its best match."""

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
        self.points: tuple[tuple[float, float], tuple[float, float]] | None = None  # query, best (original pixels)

    def show(self, query: tuple[float, float], similarity: np.ndarray, best: tuple[float, float]) -> None:
        """similarity: h1 x w1 at the network resolution (stretched over image 1 by ``place``)."""
        self.points = (query, best)
        # From the median up: half of image 1 is see-through whatever the model's range is.
        lo, hi = float(np.median(similarity)), float(similarity.max())
        self.heat_item.setImage(similarity, autoLevels=False, levels=(lo, max(hi, lo + 1e-6)))
        self.heat_item.show()

    def clear(self) -> None:
        self.points = None
        self.heat_item.hide()

    def marks_in_view(self, to_view: ToView) -> list[tuple[float, float]]:
        if self.points is None:
            return []
        return [tuple(to_view(side, xy)) for side, xy in enumerate(self.points)]

    def place(self, image1: QtCore.QRectF | None, to_view: ToView) -> None:
        """Stretch the heat map over image 1's area and put the marks where the points are."""
        if image1 is not None:
            self.heat_item.setRect(image1)
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
