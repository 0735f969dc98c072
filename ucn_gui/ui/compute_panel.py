"""Settings that need a new background run: model, device, precision, image size, query points.

Edits are debounced (a spin box being typed into fires once) and then
``changed`` asks the window to start a run.
"""
from __future__ import annotations

from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtWidgets

from ucn_gui.core.matching import MatchOptions

DEBOUNCE_MS = 400


class ComputePanel(QtWidgets.QGroupBox):
    changed = QtCore.Signal()  # a compute setting changed (debounced)
    open_model_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Matching (runs in the background)", parent)
        self.model_label = QtWidgets.QLabel("no model")
        self.model_label.setWordWrap(True)
        self.model_button = QtWidgets.QPushButton("Choose model…")
        self.model_button.clicked.connect(self.open_model_requested)
        self.device = QtWidgets.QComboBox()
        self.device.addItem("Auto (CUDA if available)", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.addItem("CUDA", "cuda")
        self.precision = QtWidgets.QComboBox()
        self.precision.addItem("Auto (bf16 where native)", "auto")
        self.precision.addItem("fp32", "fp32")
        self.precision.addItem("bf16", "bf16")
        self.precision.addItem("fp16 (CUDA)", "fp16")
        self.precision.setToolTip(
            "Precision of the network. Auto: bf16 on CPUs with avx512_bf16/AMX and on CUDA, fp32 elsewhere. "
            "The nearest-neighbour search is exact in every case."
        )
        self.max_side = QtWidgets.QSpinBox()
        self.max_side.setRange(64, 8192)
        self.max_side.setSingleStep(64)
        self.max_side.setValue(640)
        self.max_side.setSuffix(" px")
        self.max_side.setToolTip("The network sees a copy resized to this longest side; points are reported in original pixels.")
        self.keypoints = QtWidgets.QComboBox()
        self.keypoints.addItem("SIFT keypoints", "sift")
        self.keypoints.addItem("Regular grid", "grid")
        self.keypoints.addItem("Every pixel", "all")
        self.max_keypoints = QtWidgets.QSpinBox()
        self.max_keypoints.setRange(10, 1_000_000)
        self.max_keypoints.setSingleStep(500)
        self.max_keypoints.setValue(2000)
        self.grid_stride = QtWidgets.QSpinBox()
        self.grid_stride.setRange(1, 256)
        self.grid_stride.setValue(8)
        self.grid_stride.setSuffix(" px")

        form = QtWidgets.QFormLayout(self)
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

        self._debounce = QtCore.QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.changed)
        for w in (self.device, self.precision, self.keypoints):
            w.currentIndexChanged.connect(self._on_edit)
        for w in (self.max_side, self.max_keypoints, self.grid_stride):
            w.valueChanged.connect(self._on_edit)
        self._update_enabled()

    def _on_edit(self, *_args) -> None:
        self._update_enabled()
        self._debounce.start()

    def _update_enabled(self) -> None:
        mode = self.keypoints.currentData()
        self.max_keypoints.setEnabled(mode == "sift")
        self.grid_stride.setEnabled(mode == "grid")

    def flush(self) -> None:
        """Apply a pending debounced change now."""
        if self._debounce.isActive():
            self._debounce.stop()
            self.changed.emit()

    def options(self) -> MatchOptions:
        return MatchOptions(
            keypoints=self.keypoints.currentData(),
            max_keypoints=int(self.max_keypoints.value()),
            grid_stride=int(self.grid_stride.value()),
        )

    def device_name(self) -> str:
        return str(self.device.currentData())

    def precision_name(self) -> str:
        return str(self.precision.currentData())

    def max_image_side(self) -> int:
        return int(self.max_side.value())

    def set_model_name(self, text: str) -> None:
        self.model_label.setText(text)

    def restore(self, device: str, max_side: int, options: MatchOptions, precision: str | None = None) -> None:
        """Set values without starting a run (precision None: unchanged; unknown: auto)."""
        widgets = (self.device, self.precision, self.max_side, self.keypoints, self.max_keypoints, self.grid_stride)
        blockers = [QtCore.QSignalBlocker(w) for w in widgets]
        if self.device.findData(device) < 0 and device.startswith("cuda:"):  # a given CUDA device: offer it
            self.device.addItem(device.upper(), device)
        # Anything unknown (an old or edited setting) means auto; an unavailable CUDA
        # device is tried by the worker, which falls back to the CPU with a notice.
        self.device.setCurrentIndex(max(self.device.findData(device), 0))
        if precision is not None:
            self.precision.setCurrentIndex(max(self.precision.findData(precision), 0))
        self.max_side.setValue(max_side)
        self.keypoints.setCurrentIndex(max(self.keypoints.findData(options.keypoints), 0))
        self.max_keypoints.setValue(options.max_keypoints)
        self.grid_stride.setValue(options.grid_stride)
        for b in blockers:
            b.unblock()
        self._update_enabled()
