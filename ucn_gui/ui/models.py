"""Which model the window uses: weights files, zoo names, downloads, the remembered one.

    models = ModelChooser()
    models.chosen.connect(use)            # (LoadedModel, resolved path) once it loaded
    models.message.connect(show)          # (text, level): failures and download notices
    models.load_file("weights.pth")       # False, with a message, when it cannot be used

Loading a model file takes a fraction of a second and stays on the GUI thread;
downloads run on ``ModelDownloader``'s worker.
"""
from __future__ import annotations

from pathlib import Path

from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore

from ucn_gui.core import zoo
from ucn_gui.core.checkpoint import CheckpointError, load_model

from .download import ModelDownloader


class ModelChooser(QtCore.QObject):
    chosen = QtCore.Signal(object, str)  # LoadedModel (on the CPU), its resolved path
    message = QtCore.Signal(str, str)  # text, level (info | warning | error)
    status = QtCore.Signal(str, int)  # status-bar text, how long it shows (ms; 0: until replaced)
    downloaded = QtCore.Signal()  # a zoo model arrived: the list of models changed

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.downloader = ModelDownloader(self)
        self.downloader.progress.connect(self._on_download_progress)
        self.downloader.finished.connect(self._on_download_finished)
        self.downloader.failed.connect(lambda name, msg: self.message.emit(f"Download of {name} failed: {msg}", "error"))

    @property
    def busy(self) -> bool:
        """A model is on its way (a download runs)."""
        return self.downloader.busy

    def load_file(self, path: str | Path) -> bool:
        """Load weights (any supported format); on failure nothing changes and a message says why."""
        try:
            model = load_model(path, "cpu")  # CPU first: the worker moves it to the run's device
        except CheckpointError as exc:
            self.message.emit(f"Could not load the model: {exc}", "error")
            return False
        except (OSError, ValueError, RuntimeError) as exc:  # anything the loader did not classify
            self.message.emit(f"Could not load the model {path}: {exc}", "error")
            return False
        self.chosen.emit(model, str(Path(path).resolve()))
        return True

    def load_by_name(self, name_or_path: str | Path) -> None:
        """A weights file or a zoo name (a zoo model not yet cached is downloaded first)."""
        entry = None if Path(name_or_path).is_file() else zoo.find(str(name_or_path))
        if entry is not None and not entry.available and entry.downloadable:
            self.download(entry)
            return
        try:
            path = zoo.resolve(name_or_path)
        except zoo.ModelNotFound as exc:
            self.message.emit(f"Could not load the model: {exc}", "error")
            return
        self.load_file(path)

    def load_default(self, remembered: str) -> None:
        """The model used last time if it still loads, else the bundled default (if any)."""
        if remembered and Path(remembered).is_file() and self.load_file(remembered):
            return
        default = zoo.default_model_path()
        if default is not None:
            self.load_file(default)

    def download(self, entry: zoo.ModelEntry) -> None:
        """Fetch a zoo model in the background; it loads when verified."""
        if not self.downloader.start(entry):
            self.message.emit("A model download is already running.", "info")
            return
        self.message.emit(f"Downloading {entry.name} from {entry.url} …", "info")

    def _on_download_progress(self, name: str, done: int, total: int) -> None:
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total > 0 else f"{done / 1e6:.1f} MB"
        self.status.emit(f"Downloading {name}: {size}", 0)

    def _on_download_finished(self, name: str, path: Path) -> None:
        self.status.emit(f"Downloaded {name} to {path}", 10000)
        self.downloaded.emit()
        self.load_file(path)

    def shutdown(self) -> None:
        self.downloader.shutdown()
