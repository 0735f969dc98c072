"""A small histogram of one cycle error with its threshold marked, for the filter panel.

    hist = ErrorHistogram("reciprocity error")
    hist.set_errors(matches.reciprocity_error)      # once per MatchSet (None clears)
    hist.set_threshold(4.0)                         # None: the test is off
    hist.set_unit("px at 640")
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

HIST_MAX_PX = 20.0  # errors above this land in the last bin


class ErrorHistogram(pg.PlotWidget):
    def __init__(self, name: str) -> None:
        super().__init__(background=None)
        self.name = name
        self.setMinimumHeight(90)
        self.setMaximumHeight(120)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.getPlotItem().getAxis("left").setWidth(30)
        self.curve = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(90, 140, 220, 160), pen=pg.mkPen((90, 140, 220)))
        self.addItem(self.curve)
        self.line = pg.InfiniteLine(pos=0.0, angle=90, pen=pg.mkPen("#ff5050", width=2))
        self.addItem(self.line)
        self.setXRange(0, HIST_MAX_PX, padding=0.02)
        self.set_unit("px")

    def set_unit(self, unit: str) -> None:
        self.setLabel("bottom", f"{self.name} ({unit})")

    def set_errors(self, errors: np.ndarray | None) -> None:
        """Histogram of one MatchSet's errors (NaN ones, a sparse matcher's, are left out)."""
        values = None if errors is None else errors[np.isfinite(errors)]
        if values is None or len(values) == 0:
            self.curve.setData([], [])
            return
        counts, edges = np.histogram(np.minimum(values, HIST_MAX_PX), bins=80, range=(0.0, HIST_MAX_PX))
        self.curve.setData(edges, counts)
        self.setYRange(0, max(int(counts.max()), 1), padding=0.05)

    def set_threshold(self, value: float | None) -> None:
        self.line.setVisible(value is not None)
        if value is not None:
            self.line.setValue(min(value, HIST_MAX_PX))
