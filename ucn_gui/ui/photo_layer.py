"""One photo of the pair view, drawn from a pyramid so that no paint resamples a big photo.

    layer = PhotoLayer(); view_box.addItem(layer.item)
    layer.set_photo(rgb, (width, height))     # rgb may be a reduced copy of a larger photo
    layer.choose_level(view_units_per_screen_pixel)

The shown image (grey or colour) is halved again and again (cv2, INTER_AREA); the
ImageItem gets the coarsest level still as fine as the screen, chosen again when the
zoom changes. pyqtgraph's own auto-downsampling (numpy means at every zoom step) took
110-375 ms per paint on the GUI thread for a 2-12 MP photo. Whatever level is shown,
it is stretched over the photo's own pixels, so view coordinates are photo pixels.
"""
from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .picture import rgb_to_qimage

PYRAMID_STOP = 512  # no level is made below this long side


class PhotoLayer:
    def __init__(self) -> None:
        self.item = pg.ImageItem(axisOrder="row-major")
        self.size: tuple[int, int] | None = None  # (width, height) in the photo's own pixels
        self.origin = (0.0, 0.0)  # where the photo's top-left corner sits in view coordinates
        self._rgb: np.ndarray | None = None
        self._levels: list[np.ndarray] = []  # finest (what is shown at full zoom) first
        self._level = -1
        self._grayscale = False

    def set_photo(self, rgb: np.ndarray | None, size: tuple[int, int] | None = None) -> None:
        """H x W x 3 uint8 (None clears); size: the photo's (width, height) when ``rgb`` is reduced."""
        self._rgb = rgb
        self.size = None if rgb is None else tuple(size or (rgb.shape[1], rgb.shape[0]))
        self._rebuild()

    def set_grayscale(self, on: bool) -> None:
        self._grayscale = on
        self._rebuild()

    def _rebuild(self) -> None:
        self._levels, self._level = [], -1
        if self._rgb is None:
            self.item.clear()
            return
        shown = self._rgb
        if self._grayscale:  # the seed's look: grey photos make the coloured dots stand out
            shown = cv2.cvtColor(cv2.cvtColor(shown, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        self._levels = [shown]
        while max(self._levels[-1].shape[:2]) > PYRAMID_STOP:
            h, w = self._levels[-1].shape[:2]
            self._levels.append(cv2.resize(self._levels[-1], ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA))

    def choose_level(self, pixel: float) -> None:
        """Show the coarsest level that still has a pixel per screen pixel.
        pixel: view units (photo pixels) per screen pixel."""
        if not self._levels or self.size is None:
            return
        span = self.size[0] / pixel if pixel > 0 else float("inf")  # screen pixels across the photo
        level = 0
        while level + 1 < len(self._levels) and self._levels[level + 1].shape[1] >= span:
            level += 1
        if level != self._level:
            self._level = level
            self.item.setImage(self._levels[level], levels=(0, 255), autoLevels=False)
            self.place(self.origin)

    def shown_level(self) -> np.ndarray | None:
        """The array the image item draws now."""
        return self._levels[self._level] if self._level >= 0 else None

    def rect(self) -> QtCore.QRectF | None:
        """The photo's area in view coordinates."""
        if self.size is None:
            return None
        return QtCore.QRectF(self.origin[0], self.origin[1], self.size[0], self.size[1])

    def place(self, origin: tuple[float, float]) -> None:
        """Put the photo's top-left corner at ``origin`` (view coordinates)."""
        self.origin = (float(origin[0]), float(origin[1]))
        if self.shown_level() is not None:
            self.item.setRect(self.rect())

    def copy_for_export(self) -> QtWidgets.QGraphicsPixmapItem | None:
        """The finest level as a pixmap item, stretched over the photo at its place."""
        if not self._levels or self.size is None:
            return None
        shown = self._levels[0]
        item = QtWidgets.QGraphicsPixmapItem(QtGui.QPixmap.fromImage(rgb_to_qimage(shown)))
        item.setTransformationMode(QtCore.Qt.TransformationMode.SmoothTransformation)
        item.setTransform(QtGui.QTransform.fromScale(self.size[0] / shown.shape[1], self.size[1] / shown.shape[0]))
        item.setPos(*self.origin)
        return item
