"""Downloading a zoo model off the GUI thread.

    downloader = ModelDownloader()
    downloader.finished.connect(on_path)       # Path of the verified file
    downloader.start(entry)                    # a zoo.ModelEntry with a url
    downloader.shutdown()                      # on close: stop at once (the .part stays for resuming)

One download at a time, on superqt's thread pool (``create_worker``); the signals
arrive on the GUI thread. Stopping shuts the connection down (``zoo.download``'s
``cancel``), so even a server that sends nothing does not hold the window's close.
"""
from __future__ import annotations

import threading
from pathlib import Path

from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore
from superqt.utils import FunctionWorker, create_worker

from ucn_gui.core import zoo


class ModelDownloader(QtCore.QObject):
    progress = QtCore.Signal(str, int, int)  # model name, bytes done, total (-1 unknown)
    finished = QtCore.Signal(str, object)  # model name, Path
    failed = QtCore.Signal(str, str)  # model name, message

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: FunctionWorker | None = None
        self._stop = threading.Event()

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def start(self, entry: zoo.ModelEntry) -> bool:
        """False when a download is running already."""
        if self.busy:
            return False
        self._stop = stop = threading.Event()
        name = entry.name

        def report(done: int, total: int | None) -> None:  # on the pool's thread
            if stop.is_set():
                raise zoo.DownloadCancelled
            self.progress.emit(name, done, -1 if total is None else total)

        def failed(exc: Exception) -> None:
            if not isinstance(exc, zoo.DownloadCancelled):
                message = str(exc) if isinstance(exc, zoo.DownloadError) else f"{type(exc).__name__}: {exc}"
                self.failed.emit(name, message)

        self._worker = create_worker(zoo.download, entry, report, cancel=stop, _start_thread=False,
                                     _connect={"returned": lambda path: self.finished.emit(name, Path(path)),
                                               "errored": failed, "finished": self._done})
        self._worker.start()
        return True

    def _done(self) -> None:
        self._worker = None

    def shutdown(self, timeout_ms: int = 300) -> bool:
        """Stop now (the connection is shut down); the partial file is kept for a later resume.
        True when the download's thread ended within ``timeout_ms``."""
        self._stop.set()
        if self._worker is None:
            return True
        return QtCore.QThreadPool.globalInstance().waitForDone(timeout_ms)
