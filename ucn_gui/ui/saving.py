"""Export matches and Save picture: where to write, and writing it.

    saver = Saver(window, state, prefs, messages, settings_now, render)
    saver.export_matches()                # asks for a path; NPZ / CSV / JSON by suffix
    saver.save_picture("pic.png")         # given a path, no dialog

A name typed without a suffix gets the one of the chosen file type, and a folder that
does not exist is created only when the user says so. Failures become a message
naming the file; nothing here raises.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtGui, QtWidgets

from ucn_gui.core.settings import ComputeSettings, FilterSettings

from .menus import MATCH_FILTER, PICTURE_FILTER
from .picture import write_png
from .preferences import Preferences
from .state import ViewerState
from .status import Messages

_PATTERN_SUFFIX = re.compile(r"\*(\.\w+)")


def ask_save_path(parent: QtWidgets.QWidget, title: str, suggested: Path, file_filter: str) -> str:
    """A modal save dialog; '' when cancelled. A name without a suffix gets the chosen type's."""
    path, chosen = QtWidgets.QFileDialog.getSaveFileName(parent, title, str(suggested), file_filter)
    return with_suffix(path, chosen or file_filter) if path else ""


def with_suffix(path: str | Path, file_filter: str) -> str:
    """``path`` unchanged when it has a suffix, else with the first one ``file_filter`` names."""
    found = _PATTERN_SUFFIX.search(file_filter)
    if Path(path).suffix or found is None:
        return str(path)
    return f"{path}{found.group(1)}"


def folder_ready(parent: QtWidgets.QWidget, path: Path) -> bool:
    """True when ``path``'s folder exists, or the user agreed to create it (and it was)."""
    folder = path.parent
    if folder.is_dir():
        return True
    answer = QtWidgets.QMessageBox.question(
        parent, "Create folder?", f"The folder {folder} does not exist. Create it and save {path.name} there?",
        QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
        QtWidgets.QMessageBox.StandardButton.No)
    if answer != QtWidgets.QMessageBox.StandardButton.Yes:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return True


class Saver:
    def __init__(self, parent: QtWidgets.QWidget, state: ViewerState, prefs: Preferences, messages: Messages,
                 settings_now: Callable[[], tuple[ComputeSettings, FilterSettings]],
                 render: Callable[[], QtGui.QImage]) -> None:
        self.parent, self.state, self.prefs, self.messages = parent, state, prefs, messages
        self.settings_now, self.render = settings_now, render

    def _pair_name(self, name: str) -> str:
        """``name`` prefixed with the pair's file stems (DSC_0410-DSC_0411-matches.npz), so that the
        suggested file of one pair does not overwrite another's."""
        stems = [img.path.stem for img in self.state.images if img is not None and img.path is not None]
        return "-".join([*stems, name]) if len(stems) == 2 else name

    def _target(self, path: str | Path | None, title: str, name: str, file_filter: str) -> Path | None:
        """The path to write (asked for when None); None when the user backed out."""
        path = path or ask_save_path(self.parent, title, Path(self.prefs.last_dir()) / name, file_filter)
        if not path:
            return None
        target = Path(with_suffix(path, file_filter))
        try:
            ready = folder_ready(self.parent, target)
        except OSError as exc:
            self.messages.show(f"Could not create the folder {target.parent}: {exc}", "error", "export")
            return None
        if not ready:
            self.messages.show(f"Not saved: the folder {target.parent} does not exist.", "warning", "export")
            return None
        return target

    def export_matches(self, path: str | Path | None = None) -> Path | None:
        """NPZ / CSV / JSON (by suffix, .npz when none) with ucn-match's columns and the settings used."""
        if self.state.result is None:
            self.messages.show("Nothing to export yet: match a pair first.", "warning", "export")
            return None
        out = self._write(path, "Export matches", "matches.npz", MATCH_FILTER, "Could not export the matches",
                          lambda target: self.state.save_matches(target, *self.settings_now()))
        if out is not None:
            mask = self.state.mask
            self.messages.show(f"Saved {int(mask.sum()):,} of {len(mask):,} matches (mask column) to {out}.", "info", "export")
        return out

    def save_picture(self, path: str | Path | None = None) -> Path | None:
        """PNG of the current picture at full image resolution."""
        if not any(self.state.images):
            self.messages.show("Nothing to save yet: open two images first.", "warning", "export")
            return None
        out = self._write(path, "Save picture", "matches.png", PICTURE_FILTER, "Could not save the picture",
                          lambda target: write_png(self.render(), target))
        if out is not None:
            self.messages.show(f"Saved the picture to {out}.", "info", "export")
        return out

    def _write(self, path: str | Path | None, title: str, name: str, file_filter: str, failure: str,
               write: Callable[[Path], Path]) -> Path | None:
        """Ask for (or take) the target, named after the pair, write it, and remember its folder;
        None when the user backed out or the write failed (then said so, with ``failure``)."""
        target = self._target(path, title, self._pair_name(name), file_filter)
        if target is None:
            return None
        try:
            out = write(target)
        except (OSError, ValueError) as exc:
            self.messages.show(f"{failure}: {exc}", "error", "export")
            return None
        self.prefs.remember_dir(out)
        return out
