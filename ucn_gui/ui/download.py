"""Downloading a zoo model off the GUI thread.

    downloader = ModelDownloader()
    downloader.finished.connect(on_path)       # Path of the verified file
    downloader.start(entry)                    # a zoo.ModelEntry with a url
    downloader.shutdown()                      # on close: stop (the .part stays for resuming)
"""
from __future__ import annotations

import threading
from pathlib import Path

from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore

from ucn_gui.core import zoo


class _DownloadJob(QtCore.QObject):
    progress = QtCore.Signal(int, int)  # bytes done, total (-1 when unknown)
    finished = QtCore.Signal(object)  # Path
    failed = QtCore.Signal(str)

    def __init__(self, entry: zoo.ModelEntry, stop: threading.Event) -> None:
        super().__init__()
        self.entry = entry
        self.stop = stop

    @QtCore.Slot()
    def run(self) -> None:
        def report(done: int, total: int | None) -> None:
            if self.stop.is_set():
                raise zoo.DownloadCancelled
            self.progress.emit(done, -1 if total is None else total)

        try:
            path = zoo.download(self.entry, report)
        except zoo.DownloadCancelled:
            return
        except zoo.DownloadError as exc:
            self.failed.emit(str(exc))
            return
        self.finished.emit(path)


class ModelDownloader(QtCore.QObject):
    """One download at a time, on its own QThread; signals arrive on the GUI thread."""

    progress = QtCore.Signal(str, int, int)  # model name, bytes done, total (-1 unknown)
    finished = QtCore.Signal(str, object)  # model name, Path
    failed = QtCore.Signal(str, str)  # model name, message

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QtCore.QThread | None = None
        self._job: _DownloadJob | None = None
        self._stop = threading.Event()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def start(self, entry: zoo.ModelEntry) -> bool:
        if self.busy:
            return False
        self._stop = threading.Event()
        self._thread = QtCore.QThread()
        self._job = _DownloadJob(entry, self._stop)
        self._job.moveToThread(self._thread)
        name = entry.name
        self._job.progress.connect(lambda done, total: self.progress.emit(name, done, total))
        self._job.finished.connect(lambda path: self.finished.emit(name, Path(path)))
        self._job.failed.connect(lambda msg: self.failed.emit(name, msg))
        for sig in (self._job.finished, self._job.failed):
            sig.connect(self._thread.quit)
        self._thread.started.connect(self._job.run)
        self._thread.start()
        return True

    def shutdown(self, timeout_ms: int = 2000) -> None:
        """Stop at the next received chunk; the partial file is kept for a later resume."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.quit()
        self._thread.wait(timeout_ms)
