"""What the window remembers between launches, in QSettings (one key each, as before).

    prefs = Preferences(QtCore.QSettings("ucn-viewer", "UCN Viewer"))
    prefs.restore(window, filter_panel, compute_panel, toggles)   # at start-up
    prefs.save(window, filter_panel, compute_panel, toggles)      # on close
    prefs.add_recent(path0, path1); prefs.recent_pairs()

Unreadable values (an old version's, a hand edit) fall back to the dataclass defaults.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from ucn_gui.core.settings import ComputeSettings, FilterSettings, MatchOptions

from .compute_panel import ComputePanel
from .filter_panel import FilterPanel

MAX_RECENT = 8
VIEW_TOGGLES = {"show_lines": False, "stacked": False, "grayscale": True, "reopen_last_pair": True,
                "linked_zoom": True}  # key -> default
# A network side above this takes minutes per run on a CPU: it is kept for the next launch
# only when the user says so (a run of several minutes at every launch is a trap).
EXTREME_MAX_SIDE = 2048
DEFAULT_SIZE = (1500, 900)
DOCK_WIDTH = 340  # the settings dock's width at a first launch


class Preferences:
    def __init__(self, settings: QtCore.QSettings) -> None:
        self.settings = settings

    def _json(self, key: str, cls: type):
        """A dataclass stored as JSON; its defaults when missing or unreadable."""
        try:
            return cls(**json.loads(self.settings.value(key, "{}", type=str)))
        except (TypeError, ValueError):
            return cls()

    # ------------------------------------------------------------------ folders and recent pairs

    def last_dir(self) -> str:
        return self.settings.value("last_dir", str(Path.home()), type=str)

    def remember_dir(self, path: str | Path) -> None:
        """The folder of ``path`` becomes where the next file dialog opens."""
        self.settings.setValue("last_dir", str(Path(path).resolve().parent))

    def recent_pairs(self) -> list[list[str]]:
        try:
            pairs = json.loads(self.settings.value("recent_pairs", "[]", type=str))
        except (TypeError, ValueError):
            return []
        return [p for p in pairs if isinstance(p, list) and len(p) == 2]

    def add_recent(self, p0: str | Path, p1: str | Path) -> None:
        pair = [str(Path(p0).resolve()), str(Path(p1).resolve())]
        pairs = [pair] + [p for p in self.recent_pairs() if p != pair]
        self.settings.setValue("recent_pairs", json.dumps(pairs[:MAX_RECENT]))

    # ------------------------------------------------------------------ model and its thresholds

    def model_path(self) -> str:
        return self.settings.value("model_path", "", type=str)

    def set_model_path(self, path: str) -> None:
        self.settings.setValue("model_path", path)

    def filters_model(self) -> str:
        """The model the saved thresholds were chosen for (its card's, then the user's)."""
        return self.settings.value("filters_model", "", type=str)

    def save_filters(self, filters: FilterSettings, model: str) -> None:
        # Together, at once: a session that ends without a clean close must not leave
        # "thresholds applied" recorded beside thresholds that never were.
        self.settings.setValue("filters", json.dumps(filters.to_dict()))
        self.settings.setValue("filters_model", model)

    # ------------------------------------------------------------------ the whole window

    def restore(self, window: QtWidgets.QMainWindow, filters: FilterPanel, compute: ComputePanel,
                toggles: Mapping[str, QtGui.QAction]) -> None:
        s = self.settings
        geometry = s.value("geometry")
        if not (isinstance(geometry, (QtCore.QByteArray, bytes)) and window.restoreGeometry(geometry)):
            window.resize(*DEFAULT_SIZE)
        state = s.value("window_state")
        if not (isinstance(state, (QtCore.QByteArray, bytes)) and window.restoreState(state)):
            # A first launch: the settings take a third of the window at most, the photos the rest.
            dock = window.findChild(QtWidgets.QDockWidget)
            width = max(DOCK_WIDTH, window.width() // 4)
            QtCore.QTimer.singleShot(0, lambda: window.resizeDocks([dock], [width], QtCore.Qt.Orientation.Horizontal))
        filters.set_settings(self._json("filters", FilterSettings))
        filters.max_drawn_box.setValue(s.value("max_drawn", filters.max_drawn(), type=int))
        default = ComputeSettings()
        compute.set_settings(ComputeSettings(s.value("device", default.device, type=str),
                                             s.value("max_side", default.max_side, type=int),
                                             s.value("precision", default.precision, type=str),
                                             self._json("match_options", MatchOptions),
                                             s.value("matcher", default.matcher, type=str),
                                             s.value("compare", "", type=str) or None,
                                             align=s.value("align", default.align, type=bool)))
        for key, action in toggles.items():
            action.setChecked(s.value(key, VIEW_TOGGLES[key], type=bool))

    def last_pair(self) -> list[str] | None:
        """The most recent pair when both files still exist (for reopening at launch)."""
        pairs = self.recent_pairs()
        return pairs[0] if pairs and all(Path(p).is_file() for p in pairs[0]) else None

    def save(self, window: QtWidgets.QMainWindow, filters: FilterPanel, compute: ComputePanel,
             toggles: Mapping[str, QtGui.QAction], keep_max_side: bool = True) -> None:
        """Everything shown; an extreme max side only with ``keep_max_side`` (the user confirmed it)."""
        s = self.settings
        s.setValue("geometry", window.saveGeometry())
        s.setValue("window_state", window.saveState())
        s.setValue("filters", json.dumps(filters.settings().to_dict()))
        s.setValue("max_drawn", filters.max_drawn())
        chosen = compute.settings()
        s.setValue("match_options", json.dumps(asdict(chosen.options)))
        s.setValue("device", chosen.device)
        s.setValue("precision", chosen.precision)
        s.setValue("matcher", chosen.matcher)
        s.setValue("compare", chosen.compare or "")
        s.setValue("align", chosen.align)
        if keep_max_side or (chosen.max_side or 0) <= EXTREME_MAX_SIDE:
            s.setValue("max_side", chosen.max_side)
        for key, action in toggles.items():
            s.setValue(key, action.isChecked())
        s.sync()
