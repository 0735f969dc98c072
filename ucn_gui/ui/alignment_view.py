"""Alignment view: image 1 warped onto image 0 by the estimated homography, to judge it at a glance.

    view = AlignmentView()
    view.set_pair(display0, display1, size0, size1, H)   # display copies, photo sizes, H (original pixels)
    view.mode.setCurrentIndex(...)                        # blend (with its slider), checkerboard, difference

A good homography makes the blend look like one sharp photo, edges run on across the
checkerboard's tiles, and the difference is dark. The warp is made once per H on a copy of
at most WORK_SIDE pixels (``core.two_view``); moving the slider only re-blends.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtWidgets
from superqt import QLabeledSlider

from ucn_gui.core.image import shrink_to_max_side
from ucn_gui.core.two_view import composite, warp_onto

from . import picture

WORK_SIDE = 1600  # long side of the copies warped and blended (a few ms per slider move)
TILE = 48  # checkerboard tile, pixels of the work copy


class AlignmentView(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = QtWidgets.QComboBox()
        for text, data in (("Blend", "blend"), ("Checkerboard", "checkerboard"), ("Difference", "difference")):
            self.mode.addItem(text, data)
        self.mode.setToolTip("How image 1, warped onto image 0 by the homography, is shown over image 0")
        self.amount = QLabeledSlider(QtCore.Qt.Orientation.Horizontal)
        self.amount.setRange(0, 100)
        self.amount.setValue(50)
        self.amount.setToolTip("Blend: 0 = image 0 only, 100 = warped image 1 only")
        self.caption = QtWidgets.QLabel("Estimate a homography (RANSAC: homography) to see the alignment.")
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground(picture.BACKGROUND)
        self.vb = self.canvas.addViewBox()
        self.vb.setAspectLocked(True)
        self.vb.invertY(True)
        self.vb.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image_item)
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Alignment (image 1 warped onto image 0):"))
        bar.addWidget(self.mode)
        bar.addWidget(QtWidgets.QLabel("image 1 share"))
        bar.addWidget(self.amount, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)
        self._base: np.ndarray | None = None  # image 0, work copy
        self._warped: np.ndarray | None = None  # image 1 on image 0's grid
        self.mode.currentIndexChanged.connect(self._render)
        self.amount.valueChanged.connect(self._render)

    def set_pair(self, display0: np.ndarray | None, display1: np.ndarray | None, size0: tuple[int, int] | None,
                 size1: tuple[int, int] | None, H: np.ndarray | None) -> None:
        """Warp anew (H maps original pixels of image 0 to image 1); None anywhere clears the view."""
        if display0 is None or display1 is None or size0 is None or size1 is None or H is None:
            self._base = self._warped = None
            self.image_item.clear()
            self.caption.setText("Estimate a homography (RANSAC: homography) to see the alignment.")
            return
        base, other = shrink_to_max_side(display0, WORK_SIDE), shrink_to_max_side(display1, WORK_SIDE)
        scale0 = (size0[0] / base.shape[1], size0[1] / base.shape[0])
        scale1 = (size1[0] / other.shape[1], size1[1] / other.shape[0])
        self._base, self._warped = base, warp_onto(other, H, base.shape, scale0, scale1)
        self.caption.setText("Blend: one sharp photo means a good homography · Checkerboard: edges run on across "
                             "tiles · Difference: dark where the two agree.")
        self._render()
        self.vb.setRange(QtCore.QRectF(0, 0, base.shape[1], base.shape[0]), padding=0.02)

    def picture(self) -> np.ndarray | None:
        """What is shown (H x W x 3 uint8), None when there is no homography."""
        if self._base is None or self._warped is None:
            return None
        return composite(self._base, self._warped, self.mode.currentData(), self.amount.value() / 100.0, TILE)

    def _render(self, *_args) -> None:
        self.amount.setEnabled(self.mode.currentData() == "blend")
        shown = self.picture()
        if shown is not None:
            self.image_item.setImage(shown, levels=(0, 255), autoLevels=False)
