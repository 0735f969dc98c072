"""What RANSAC found: inliers against outliers, the estimated matrix (copyable), the alignment view.

    panel = GeometryPanel(alignment_action)
    panel.outliers.toggled.connect(refilter)       # draw outliers too, in red (inliers green)
    panel.show_geometry(geometry, slot.counts())   # after each refilter
"""
from __future__ import annotations

import numpy as np
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtGui, QtWidgets

from ucn_gui.core.filters import Geometry

NAMES = {"homography": "Homography H (x1 ~ H x0)", "fundamental": "Fundamental matrix F (x1ᵀ F x0 = 0)"}


def matrix_text(matrix: np.ndarray) -> str:
    """Three rows of a 3 x 3 matrix, as numpy would read them back (``np.array(...)``)."""
    rows = ",\n ".join("[" + ", ".join(f"{v: .8e}" for v in row) + "]" for row in matrix)
    return f"[{rows}]"


class GeometryPanel(QtWidgets.QGroupBox):
    def __init__(self, alignment: QtGui.QAction, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Geometry (RANSAC)", parent)
        self.outliers = QtWidgets.QCheckBox("Draw outliers too: inliers green, outliers red")
        self.outliers.setChecked(True)
        self.outliers.setToolTip("With RANSAC on, also draw the matches that pass the thresholds but not RANSAC")
        self.counts = QtWidgets.QLabel("Choose RANSAC (homography or fundamental) in the filters.")
        self.counts.setWordWrap(True)
        self.name = QtWidgets.QLabel("")
        self.matrix = QtWidgets.QPlainTextEdit()
        self.matrix.setReadOnly(True)
        self.matrix.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.matrix.setMaximumHeight(70)
        self.matrix.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.matrix.setToolTip("In original pixels of the two photos; select to copy, or use Copy")
        self.copy = QtWidgets.QPushButton("Copy")
        self.copy.clicked.connect(self.copy_matrix)
        self.alignment = QtWidgets.QToolButton()
        self.alignment.setDefaultAction(alignment)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.outliers)
        layout.addWidget(self.counts)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.name, 1)
        row.addWidget(self.copy)
        layout.addLayout(row)
        layout.addWidget(self.matrix)
        layout.addWidget(self.alignment, 0, QtCore.Qt.AlignmentFlag.AlignLeft)
        self.show_geometry(None, "")

    def show_geometry(self, geometry: Geometry | None, counts: str) -> None:
        has_matrix = geometry is not None and geometry.matrix is not None
        if geometry is None:
            self.counts.setText("Choose RANSAC (homography or fundamental) in the filters to estimate the geometry.")
        else:
            self.counts.setText(counts if has_matrix else f"{counts}: too few matches to estimate a {geometry.model}.")
        self.name.setText(NAMES[geometry.model] if has_matrix else "")
        self.matrix.setPlainText(matrix_text(geometry.matrix) if has_matrix else "")
        self.matrix.setVisible(has_matrix)
        self.copy.setEnabled(has_matrix)

    def copy_matrix(self) -> None:
        QtWidgets.QApplication.clipboard().setText(self.matrix.toPlainText())
