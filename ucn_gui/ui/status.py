"""What the window says about itself: a message bar above the images, a run's progress below.

    bar = MessageBar(); bar.show_message("Could not open ...", "error"); bar.text()
    run = RunStatus(window.statusBar()); runner.busy_changed.connect(run.set_busy)

The message bar is non-modal on purpose: tests and users can read an error without
dismissing a dialog.
"""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class MessageBar(QtWidgets.QFrame):
    """A one-line message; closes with its × button."""

    COLORS = {"info": ("#e8f0fe", "#174ea6"), "warning": ("#fef7e0", "#7a4f01"), "error": ("#fce8e6", "#a50e0e")}

    def __init__(self) -> None:
        super().__init__()
        self.label = QtWidgets.QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QtWidgets.QToolButton()
        close.setText("×")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.level = "info"
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        bg, fg = self.COLORS.get(level, self.COLORS["info"])
        self.setStyleSheet(f"MessageBar {{ background: {bg}; border-radius: 4px; }} QLabel, QToolButton {{ color: {fg}; }}")
        self.level = level
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        """The message shown, '' when hidden."""
        return self.label.text() if not self.isHidden() else ""


class RunStatus(QtCore.QObject):
    """A progress bar and a Cancel button in the status bar, shown while a run is busy."""

    def __init__(self, bar: QtWidgets.QStatusBar) -> None:
        super().__init__(bar)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(320)
        self.progress.setTextVisible(True)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        for widget in (self.progress, self.cancel_button):
            bar.addPermanentWidget(widget)
            widget.hide()

    def set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)
            self.progress.setFormat("starting…")

    def set_progress(self, stage: str, fraction: float) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{stage} — {fraction * 100:.0f}%")
