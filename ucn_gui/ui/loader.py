"""Opening photos off the GUI thread.

    loader = ImageLoader()
    loader.loaded.connect(on_images)        # (load id, {side: OpenedImage})
    loader.failed.connect(on_error)         # (load id, message naming the file)
    load_id = loader.load({0: path0, 1: path1}, max_side=640)   # max_side: the network's size
    loader.shutdown()                       # on close

Decoding a photo (and, for the window, shrinking it for display) takes from a few ms
to over a second for a 100-megapixel JPEG; here it runs on its own QThread, one load
after another in the order asked, so the window stays responsive and a later drop on
the same side always wins. A load with several files succeeds or fails as a whole.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore

from ucn_gui.core.image import DISPLAY_SIDE, ImageLoadError, Photo, open_photo, shrink_to_max_side

from . import background


@dataclass
class OpenedImage:
    image: Photo  # the photo (possibly decoded reduced), coordinates in its own pixels
    display: np.ndarray  # H x W x 3 uint8, at most DISPLAY_SIDE on its long side (drawn over the photo's pixels)


def open_image(path: Path, max_side: int | None) -> OpenedImage:
    """Decode (reduced when huge, keeping at least DISPLAY_SIDE or the network's ``max_side``)
    and prepare the display copy; ImageLoadError naming the file."""
    keep = max(DISPLAY_SIDE, max_side or 0)
    try:
        photo = open_photo(path, keep)
    except MemoryError:
        raise ImageLoadError(f"{path}: not enough memory to decode this image") from None
    return OpenedImage(photo, shrink_to_max_side(photo.rgb, DISPLAY_SIDE))


class _LoadJob(QtCore.QObject):
    loaded = QtCore.Signal(int, object)  # load id, {side: OpenedImage}
    failed = QtCore.Signal(int, str)

    @QtCore.Slot(int, object, object)
    def run(self, load_id: int, paths: dict, max_side: object) -> None:
        try:
            opened = {side: open_image(Path(p), max_side) for side, p in paths.items()}
        except ImageLoadError as exc:
            self.failed.emit(load_id, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - never let a bad file take the thread down
            self.failed.emit(load_id, f"{type(exc).__name__}: {exc}")
            return
        self.loaded.emit(load_id, opened)


class ImageLoader(QtCore.QObject):
    """GUI-thread side: numbers the loads; signals arrive on the GUI thread."""

    loaded = QtCore.Signal(int, object)  # load id, {side: OpenedImage}
    failed = QtCore.Signal(int, str)  # load id, message
    busy_changed = QtCore.Signal(bool)

    _start = QtCore.Signal(int, object, object)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QtCore.QThread()
        self._thread.setObjectName("ucn-image-loader")
        self._job = _LoadJob()
        self._job.moveToThread(self._thread)
        self._start.connect(self._job.run, QtCore.Qt.ConnectionType.QueuedConnection)
        self._job.loaded.connect(self._on_loaded)
        self._job.failed.connect(self._on_failed)
        self._thread.start()
        self._next_id = 0
        self._pending: set[int] = set()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def load(self, paths: dict[int, str | Path], max_side: int | None = None) -> int:
        """Queue a load of one or both sides; returns its id (carried by loaded / failed).
        max_side: the network's size, kept in any case when a huge photo is decoded reduced."""
        self._next_id += 1
        was_busy = self.busy
        self._pending.add(self._next_id)
        if not was_busy:
            self.busy_changed.emit(True)
        self._start.emit(self._next_id, {int(k): Path(v) for k, v in paths.items()}, max_side)
        return self._next_id

    def _done(self, load_id: int) -> None:
        self._pending.discard(load_id)
        if not self._pending:
            self.busy_changed.emit(False)

    def _on_loaded(self, load_id: int, opened: dict) -> None:
        self._done(load_id)
        self.loaded.emit(load_id, opened)

    def _on_failed(self, load_id: int, message: str) -> None:
        self._done(load_id)
        self.failed.emit(load_id, message)

    def shutdown(self, timeout_ms: int = 300) -> bool:
        """Stop; a decode in progress cannot be interrupted and ends in the background (it writes nothing)."""
        self._pending.clear()
        self._thread.quit()
        done = self._thread.wait(timeout_ms)
        if not done:
            background.adopt(self._thread, self._job)
        return done
