"""What the window says about itself: a message bar above the images, a run's progress below.

    bar = MessageBar(); bar.show_message("Could not open ...", "error", topic="images"); bar.text()
    bar.clear("images", "run")      # the state the message was about is over
    run = RunStatus(window.statusBar()); runner.busy_changed.connect(run.set_busy)

The message bar is non-modal on purpose: tests and users can read an error without
dismissing a dialog. Each message belongs to a topic (the state it is about: "images",
"model", "run", "export", ...) and leaves when the window clears that topic, so no
message outlives what it says.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtWidgets


class MessageBar(QtWidgets.QFrame):
    """A one-line message with an optional action button; closes with its × button."""

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
        self.action_button = QtWidgets.QPushButton()
        self.action_button.hide()
        self.action_button.clicked.connect(self._on_action)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(close)
        self.level = "info"
        self.topic = ""
        self._action: Callable[[], object] | None = None
        self.hide()

    def show_message(self, text: str, level: str = "info", topic: str = "general",
                     action: tuple[str, Callable[[], object]] | None = None) -> None:
        """Show ``text``; ``action``: (button label, what it does; the message then leaves)."""
        bg, fg = self.COLORS.get(level, self.COLORS["info"])
        self.setStyleSheet(f"MessageBar {{ background: {bg}; border-radius: 4px; }} QLabel, QToolButton {{ color: {fg}; }}")
        self.level, self.topic = level, topic
        self.label.setText(text)
        self._action = action[1] if action else None
        self.action_button.setText(action[0] if action else "")
        self.action_button.setVisible(action is not None)
        self.show()

    def clear(self, *topics: str) -> None:
        """Hide the message if it is about one of ``topics`` (all topics when none given)."""
        if not topics or self.topic in topics:
            self.hide()

    def _on_action(self) -> None:
        action, self._action = self._action, None
        self.hide()
        if action is not None:
            action()

    def text(self) -> str:
        """The message shown, '' when hidden."""
        return self.label.text() if not self.isHidden() else ""


class RunStatus(QtCore.QObject):
    """A progress bar and a Cancel button in the status bar, shown while a run is busy, and the
    match counts, always shown (the settings panel's counter can be scrolled out of sight)."""

    def __init__(self, bar: QtWidgets.QStatusBar) -> None:
        super().__init__(bar)
        self.counts = QtWidgets.QLabel()
        bar.addPermanentWidget(self.counts)
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


class Messages:
    """Where the window's messages go: the bar above the images (by topic) and the status bar.

    messages.show("Could not open a.jpg: ...", "error", "open0"); messages.clear("open0")
    messages.status("Opening a.jpg…")        # the status bar only ('' clears it)
    """

    def __init__(self, bar: MessageBar, status_bar: QtWidgets.QStatusBar) -> None:
        self.bar, self.status_bar = bar, status_bar

    def show(self, text: str, level: str = "info", topic: str = "general",
             action: tuple[str, Callable[[], object]] | None = None) -> None:
        self.bar.show_message(text, level, topic, action)
        self.status_bar.showMessage(text, 10000)

    def clear(self, *topics: str) -> None:
        self.bar.clear(*topics)

    def status(self, text: str, timeout_ms: int = 0) -> None:
        if text:
            self.status_bar.showMessage(text, timeout_ms)
        else:
            self.status_bar.clearMessage()
