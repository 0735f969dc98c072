"""Opening photos into the window: loads on the loader's thread, and what the window says about them.

    opener = PhotoOpener(state, prefs, messages, max_side=lambda: 640)
    opener.finished.connect(done)              # True when the pair changed, False when a file failed
    opener.open({1: "b.jpg"})                  # one side, or {0: a, 1: b} for both (all or nothing)

A failure's message belongs to the side(s) it was about and leaves only when that side
opens, so a missing left image stays named while the right one opens. What decoding
changed (transparency laid over grey) is said once per session. Complete pairs, and
only those, become recent pairs.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore

from .loader import ImageLoader, OpenedImage
from .preferences import Preferences
from .state import ViewerState
from .status import Messages


class PhotoOpener(QtCore.QObject):
    finished = QtCore.Signal(bool)  # a load ended: True when the pair changed
    recent_changed = QtCore.Signal()  # a complete pair was opened: the recent pairs changed

    def __init__(self, state: ViewerState, prefs: Preferences, messages: Messages, max_side: Callable[[], int | None],
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.state, self.prefs, self.messages, self.max_side = state, prefs, messages, max_side
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_failed)
        self._notices: dict[int, str] = {}  # load id -> message to show once it succeeded
        self._sides: dict[int, list[int]] = {}  # load id -> the sides it opens
        self._told: set[str] = set()  # notes about decoding, each told once per session

    def open(self, paths: Mapping[int, str | Path], notice: str | None = None) -> int:
        """Open one or both sides on the loader's thread; returns the load's id."""
        load_id = self.loader.load(paths, self.max_side())
        self._sides[load_id] = sorted(paths)
        if notice:
            self._notices[load_id] = notice
        self.messages.status(f"Opening {' and '.join(Path(p).name for p in paths.values())}…")
        return load_id

    def on_dropped(self, paths: list[Path], side: int) -> None:
        if len(paths) >= 2:
            many = f"{len(paths)} files dropped: using the first two." if len(paths) > 2 else None
            self.open({0: paths[0], 1: paths[1]}, many)
        elif paths:
            self.open({side: paths[0]})

    def _on_loaded(self, load_id: int, opened: dict[int, OpenedImage]) -> None:
        m, state = self.messages, self.state
        m.status("")
        self._sides.pop(load_id, None)
        m.clear("open", *(f"open{side}" for side in opened), "general", "export")
        for item in opened.values():
            self.prefs.remember_dir(item.image.path)
        state.set_images(opened)
        for item in opened.values():
            for note in item.image.notes:
                if note not in self._told:
                    self._told.add(note)
                    m.show(f"{item.image.path.name}: {note} (said once per session).", "info", "note")
        if state.has_pair():  # opened pairs, not swapped ones, become recent
            self.prefs.add_recent(state.images[0].path, state.images[1].path)
            self.recent_changed.emit()
        notice = self._notices.pop(load_id, None)
        if notice:
            m.show(notice, "warning")
        self.finished.emit(True)

    def _on_failed(self, load_id: int, message: str) -> None:
        self._notices.pop(load_id, None)
        sides = self._sides.pop(load_id, [])
        self.messages.status("")
        # The error stays until that side opens: another side's success does not hide it.
        topic = f"open{sides[0]}" if len(sides) == 1 else "open"
        self.messages.show(f"Could not open the image: {message}", "error", topic)
        self.finished.emit(False)
