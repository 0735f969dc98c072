"""Live filter controls: thresholds that only re-mask the existing MatchSet.

    panel = FilterPanel()
    panel.changed.connect(redraw)
    settings = panel.settings()     # ucn_gui.core.filters.FilterSettings
    panel.max_drawn()               # cap on the matches drawn

Each threshold is a labelled float slider (the label is an exact-entry box) with a
checkbox that switches the test off. Histograms of the reciprocity and stability
errors show where each cut falls. The controls start from ``FilterSettings()``'s defaults.
"""
from __future__ import annotations

import numpy as np
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtWidgets
from superqt import QLabeledDoubleSlider
from superqt.utils import signals_blocked

from ucn_gui.core.settings import ComputeSettings, FilterSettings

from .histograms import ErrorHistogram

MAX_DRAWN = 5000  # default cap on the matches drawn (a fixed random sample of the survivors)
# Where a slider rests while its test is off by default (FilterSettings has None there).
RESTING = {"max_distance": 1.0, "max_ratio": 0.9}


def shown_value(slider: QLabeledDoubleSlider) -> float:
    """The slider's value as its label shows it: a drag lands on 9.985, the label says (and the
    settings store) 10.0."""
    return round(float(slider.value()), slider.decimals())


class SliderKeys(QtCore.QObject):
    """Arrow, Page Up/Down, Home and End keys for a superqt float slider, and a click on its
    handle that leaves the value alone.

    superqt's float slider draws a QSlider but ignores the keyboard (superqt 0.9: key presses and
    triggerAction leave its value alone), so a focused threshold could not be nudged. Arrows
    move one single step (the label's last decimal), Page keys ten, Home / End to the ends.
    It also moves the value to the pixel under a press on the handle, so a plain click nudged
    a threshold (1.00 -> 0.98, dropping matches whose error sits on a whole pixel); a press and
    release on the handle without a drag now restores the value it had.
    """

    def __init__(self, slider: QLabeledDoubleSlider) -> None:
        super().__init__(slider)
        self.slider = slider
        self.inner = inner = slider.findChild(QtWidgets.QAbstractSlider)
        inner.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        inner.installEventFilter(self)
        self._before_press: float | None = None  # the value when the handle was pressed, until it is dragged

    def _on_handle(self, pos: QtCore.QPointF) -> bool:
        opt = QtWidgets.QStyleOptionSlider()
        self.inner.initStyleOption(opt)
        handle = self.inner.style().subControlRect(
            QtWidgets.QStyle.ComplexControl.CC_Slider, opt, QtWidgets.QStyle.SubControl.SC_SliderHandle, self.inner)
        return handle.contains(pos.toPoint())

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt's name)
        kind = event.type()
        if kind == QtCore.QEvent.Type.MouseButtonPress:
            on_handle = event.button() == QtCore.Qt.MouseButton.LeftButton and self._on_handle(event.position())
            self._before_press = shown_value(self.slider) if on_handle else None
            return False
        if kind == QtCore.QEvent.Type.MouseMove:
            self._before_press = None  # a drag: the value follows the mouse
            return False
        if kind == QtCore.QEvent.Type.MouseButtonRelease:
            if self._before_press is not None:
                QtCore.QTimer.singleShot(0, lambda v=self._before_press: self.slider.setValue(v))  # after superqt's release
            self._before_press = None
            return False
        if kind != QtCore.QEvent.Type.KeyPress:
            return False
        s, key, keys = self.slider, event.key(), QtCore.Qt.Key
        step = s.singleStep()
        moves = {keys.Key_Right: step, keys.Key_Up: step, keys.Key_Left: -step, keys.Key_Down: -step,
                 keys.Key_PageUp: 10 * step, keys.Key_PageDown: -10 * step}
        if key in moves:
            s.setValue(min(s.maximum(), max(s.minimum(), round(shown_value(s) + moves[key], s.decimals()))))
        elif key in (keys.Key_Home, keys.Key_End):
            s.setValue(s.minimum() if key == keys.Key_Home else s.maximum())
        else:
            return False
        return True


class ThresholdRow(QtWidgets.QWidget):
    """[x] name  ----o---- [value]"""

    changed = QtCore.Signal()

    def __init__(self, name: str, hi: float, decimals: int, value: float | None, resting: float, tip: str) -> None:
        super().__init__()
        self.resting = resting  # the slider's position when set_value(None) switches the test off
        self.name, self.tip, self.decimals = name, tip, decimals
        self.notes = {"unit": "", "matcher": ""}  # lines added to the tooltip
        self.applies = True  # False while the matcher shown gives no such score
        self.check = QtWidgets.QCheckBox(name)
        self.check.setToolTip(tip)
        self.slider = QLabeledDoubleSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setDecimals(decimals)
        self.slider.setRange(0.0, hi)
        self.slider.setSingleStep(10 ** -decimals)
        self.slider.setToolTip(tip)
        SliderKeys(self.slider)
        self._show(value)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setSpacing(0)
        layout.addWidget(self.check)
        layout.addWidget(self.slider)
        self.check.toggled.connect(self._on_toggled)
        self.slider.valueChanged.connect(lambda _v: self.changed.emit())

    def _on_toggled(self, on: bool) -> None:
        self.slider.setEnabled(on and self.applies)
        self.changed.emit()

    def _show(self, value: float | None) -> None:
        self.check.setChecked(value is not None)
        self.slider.setEnabled(value is not None and self.applies)
        self.slider.setValue(self.resting if value is None else value)

    def set_unit(self, unit: str, note: str = "") -> None:
        """Name the unit in the label ("Reciprocity error ≤ (px at 640)"); ``note`` extends the tooltip."""
        self.check.setText(f"{self.name} ({unit})" if unit else self.name)
        self._set_note("unit", note)

    def set_applicable(self, applies: bool, note: str = "") -> None:
        """Disable the row (keeping its value) while the matcher has no such score; ``note`` says why."""
        self.applies = applies
        self.check.setEnabled(applies)
        self.slider.setEnabled(applies and self.check.isChecked())
        self._set_note("matcher", note)

    def _set_note(self, key: str, note: str) -> None:
        self.notes[key] = note
        tip = "\n".join([self.tip, *(n for n in self.notes.values() if n)])
        self.check.setToolTip(tip)
        self.slider.setToolTip(tip)

    def value(self) -> float | None:
        """The threshold, or None when the test is off."""
        return shown_value(self.slider) if self.check.isChecked() else None

    def set_value(self, value: float | None) -> None:
        with signals_blocked(self.check, self.slider):
            self._show(value)
        self.changed.emit()


class FilterPanel(QtWidgets.QGroupBox):
    changed = QtCore.Signal()
    counts_changed = QtCore.Signal(str)  # the counter's text, also shown in the status bar

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Filters (instant, no recomputation)", parent)
        defaults = FilterSettings()

        def row(name: str, label: str, hi: float, decimals: int, tip: str) -> ThresholdRow:
            value = getattr(defaults, name)
            return ThresholdRow(label, hi, decimals, value, RESTING.get(name, value), tip)

        self.reciprocity = row("reciprocity", "Reciprocity error ≤", 20.0, 2,
                               "Match image 1 back to image 0: how far the cycle lands from where it started.")
        self.stability = row("stability", "Stability error ≤", 20.0, 2,
                             "Shift the match by one pixel and match back: a stable match lands close again.")
        self.distance = row("max_distance", "Descriptor distance ≤", 2.0, 3, "L2 distance between the two unit descriptors (0 to 2).")
        self.ratio = row("max_ratio", "Ratio ≤ (nearest / second)", 1.0, 3, "Lowe's ratio of the nearest to the second-nearest distance.")
        self.rows = {"reciprocity": self.reciprocity, "stability": self.stability,
                     "max_distance": self.distance, "max_ratio": self.ratio}  # FilterSettings field -> row
        self.ransac = QtWidgets.QComboBox()
        self.ransac.addItem("No RANSAC", None)
        self.ransac.addItem("RANSAC: homography", "homography")
        self.ransac.addItem("RANSAC: fundamental", "fundamental")
        self.ransac_threshold = QLabeledDoubleSlider(QtCore.Qt.Orientation.Horizontal)
        self.ransac_threshold.setDecimals(1)
        self.ransac_threshold.setRange(0.5, 20.0)
        self.ransac_threshold.setSingleStep(0.1)
        self.ransac_threshold.setValue(defaults.ransac_threshold)
        self.ransac_threshold.setEnabled(False)
        SliderKeys(self.ransac_threshold)
        self.ransac_label = QtWidgets.QLabel("RANSAC inlier threshold (px)")
        self.ransac_label.setEnabled(False)
        for w in (self.ransac_label, self.ransac_threshold):
            w.setToolTip("How far a match may lie from the estimated H (or F's epipolar line) and still count as an "
                         "inlier, in the same unit as the cycle thresholds")
        self.max_drawn_box = QtWidgets.QSpinBox()
        self.max_drawn_box.setRange(0, 1_000_000)
        self.max_drawn_box.setSingleStep(500)
        self.max_drawn_box.setValue(MAX_DRAWN)
        self.max_drawn_box.setToolTip("At most this many of the surviving matches are drawn (a fixed random sample).")
        self.counter = QtWidgets.QLabel("no matches yet")
        self.counter.setObjectName("counter")
        self.counter.setWordWrap(True)

        self.histograms = {"reciprocity": ErrorHistogram("reciprocity error"), "stability": ErrorHistogram("stability error")}

        layout = QtWidgets.QVBoxLayout(self)
        for threshold in self.rows.values():
            layout.addWidget(threshold)
            threshold.changed.connect(self._on_changed)
        layout.addWidget(self.ransac)
        layout.addWidget(self.ransac_label)
        layout.addWidget(self.ransac_threshold)
        form = QtWidgets.QFormLayout()
        form.addRow("Max. matches drawn", self.max_drawn_box)
        layout.addLayout(form)
        for hist in self.histograms.values():
            layout.addWidget(hist)
        layout.addWidget(self.counter)
        self.set_unit(ComputeSettings().max_side)
        self.ransac.currentIndexChanged.connect(self._on_ransac)
        self.ransac_threshold.valueChanged.connect(lambda _v: self._on_changed())
        self.max_drawn_box.valueChanged.connect(lambda _v: self._on_changed())

    def _on_ransac(self, _index: int) -> None:
        self.ransac_threshold.setEnabled(self.ransac.currentData() is not None)
        self.ransac_label.setEnabled(self.ransac.currentData() is not None)
        self._on_changed()

    def _on_changed(self) -> None:
        for name, hist in self.histograms.items():
            hist.set_threshold(self.rows[name].value())
        self.changed.emit()

    # ------------------------------------------------------------------ state

    def settings(self) -> FilterSettings:
        return FilterSettings(**{name: threshold.value() for name, threshold in self.rows.items()},
                              ransac=self.ransac.currentData(), ransac_threshold=shown_value(self.ransac_threshold))

    def set_settings(self, s: FilterSettings) -> None:
        for name, threshold in self.rows.items():
            threshold.set_value(getattr(s, name))
        self.ransac_threshold.setValue(s.ransac_threshold)
        index = self.ransac.findData(s.ransac)
        self.ransac.setCurrentIndex(max(index, 0))
        self._on_changed()

    def set_unit(self, network_side: int | None, scale: float | None = None) -> None:
        """Pixel thresholds are pixels at the network's resolution: say which ("px at 640") and,
        once a photo was matched, what one of them is in the photo's own pixels."""
        unit = f"px at {network_side}" if network_side else "px"
        note = ("Pixels of image 0 at the network's resolution, so a threshold means the same on every photo size"
                + (f"; for this photo 1 px at {network_side} = {scale:.2f} original px." if scale else "."))
        for name, hist in self.histograms.items():
            self.rows[name].set_unit(unit, note)
            hist.set_unit(unit)
        self.ransac_label.setText(f"RANSAC inlier threshold ({unit})")

    def set_matchers(self, a: str, b: str | None = None) -> None:
        """The score filters apply to UCN only: disabled, saying why, while pane A shows a sparse
        matcher; a note says so while pane B does."""
        for name, row in self.rows.items():
            what = row.name.split(" ≤")[0].lower()
            if a != "UCN":
                row.set_applicable(False, f"Not for {a}: it gives no {what}, only UCN's dense matching measures it. "
                                          "RANSAC and the drawing cap still apply.")
            else:
                row.set_applicable(True, f"Pane B's {b} gives no {what}: its matches pass this test." if b and b != "UCN" else "")

    def max_drawn(self) -> int:
        return int(self.max_drawn_box.value())

    def set_errors(self, reciprocity: np.ndarray | None, stability: np.ndarray | None = None) -> None:
        """Histograms of the current MatchSet's two cycle errors (once per MatchSet; None clears)."""
        self.histograms["reciprocity"].set_errors(reciprocity)
        self.histograms["stability"].set_errors(stability)

    def set_counts(self, text: str) -> None:
        self.counter.setText(text)
        self.counts_changed.emit(text)
