"""The window's actions, menu bar and tool bar, and the file dialogs they open.

    menus = Menus(window, settings_dock)      # actions exist; the window connects them
    menus.lines.toggled.connect(view.set_lines_visible)
    menus.fill_models(zoo.list_models(), models.load_file, models.download)
    menus.fill_recent(prefs.recent_pairs(), set_pair)

Nothing here knows what an action does; ``MainWindow`` wires them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6 import QtGui, QtWidgets

from ucn_gui.core.zoo import ModelEntry

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp *.pgm *.ppm);;All files (*)"
MODEL_FILTER = "Model weights (*.safetensors *.pth *.pt *.ckpt *.tar);;All files (*)"
MATCH_FILTER = "NumPy (*.npz);;CSV (*.csv);;JSON (*.json)"
PICTURE_FILTER = "PNG (*.png)"


def ask_open_path(parent: QtWidgets.QWidget, title: str, folder: str, file_filter: str) -> str:
    """A modal open dialog; '' when cancelled."""
    return QtWidgets.QFileDialog.getOpenFileName(parent, title, folder, file_filter)[0]


class Menus:
    def __init__(self, window: QtWidgets.QMainWindow, dock: QtWidgets.QDockWidget) -> None:
        self.window = window
        key = QtGui.QKeySequence.StandardKey
        self.open_left = self._action("Open &left image…", key.Open)
        self.open_right = self._action("Open &right image…", "Ctrl+Shift+O")
        self.open_model = self._action("Open &model…", "Ctrl+M")
        self.swap = self._action("S&wap images", "Ctrl+Shift+X")
        self.rerun = self._action("&Rerun matching", "Ctrl+R")
        self.cancel = self._action("&Cancel run", "Esc")
        self.export = self._action("&Export matches…", key.Save)
        self.picture = self._action("Save &picture (PNG)…", "Ctrl+Shift+S")
        self.quit = self._action("&Quit", key.Quit)
        self.reopen_last = self._action("Reopen the last pair at launch", "", checkable=True)
        self.lines = self._action("Show &lines", "Ctrl+L", checkable=True)
        self.stacked = self._action("&Stacked layout", "Ctrl+T", checkable=True)
        self.gray = self._action("&Grey images", "Ctrl+G", checkable=True)
        self.clear_query = self._action("Clear &query", "Ctrl+E")
        self.reset_zoom = self._action("Reset &zoom", "Ctrl+0")
        self.alignment = self._action("&Alignment view (homography)", "Ctrl+H", checkable=True)
        self.alignment.setEnabled(False)  # until RANSAC estimated a homography, or a second pass warped image 1
        self.linked_zoom = self._action("Lin&k the panes' zoom", "Ctrl+K", checkable=True)
        self.settings_panel = dock.toggleViewAction()  # hide the settings for more room (a small screen)
        self.settings_panel.setText("Settings &panel")
        self.settings_panel.setShortcut(QtGui.QKeySequence("Ctrl+D"))
        window.addAction(self.settings_panel)
        # Saved between launches under these keys (see Preferences).
        self.toggles = {"show_lines": self.lines, "stacked": self.stacked, "grayscale": self.gray,
                        "reopen_last_pair": self.reopen_last, "linked_zoom": self.linked_zoom}

        bar = window.menuBar()
        file_menu = bar.addMenu("&File")
        self._fill(file_menu, [self.open_left, self.open_right])
        self.recent_menu = file_menu.addMenu("Recent &pairs")
        self._fill(file_menu, [self.reopen_last, None, self.open_model, None, self.export, self.picture, None, self.quit])
        self._fill(bar.addMenu("&Match"), [self.swap, self.rerun, self.cancel])
        self.model_menu = bar.addMenu("M&odel")
        self._fill(bar.addMenu("&View"), [self.lines, self.stacked, self.gray, self.clear_query, self.reset_zoom,
                                          self.alignment, self.linked_zoom, None, self.settings_panel])
        tools = window.addToolBar("Main")
        tools.setObjectName("main_toolbar")
        tools.setMovable(False)
        self._fill(tools, [self.open_left, self.open_right, self.swap, self.rerun, None, self.lines, self.stacked,
                           self.gray, None, self.export, self.picture])

    def _action(self, text: str, shortcut: str | QtGui.QKeySequence.StandardKey, checkable: bool = False) -> QtGui.QAction:
        action = QtGui.QAction(text, self.window)
        action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setCheckable(checkable)
        self.window.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    @staticmethod
    def _fill(menu: QtWidgets.QMenu | QtWidgets.QToolBar, actions: Sequence[QtGui.QAction | None]) -> None:
        """Add actions in order; None adds a separator."""
        for action in actions:
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)

    def fill_models(self, entries: Sequence[ModelEntry], load: Callable[[Path], object],
                    download: Callable[[ModelEntry], object]) -> None:
        """The Model menu: zoo models (downloadable ones say so), then Open model…"""
        menu = self.model_menu
        menu.clear()
        for entry in entries:
            if entry.available:
                act = menu.addAction(f"{entry.name} — {entry.description}")
                act.triggered.connect(lambda _=False, p=entry.path: load(p))
            else:  # downloadable, not in the cache yet: only on the user's request
                act = menu.addAction(f"{entry.name} — {entry.description} (download…)")
                act.triggered.connect(lambda _=False, e=entry: download(e))
        if not entries:
            menu.addAction("No bundled models").setEnabled(False)
        menu.addSeparator()
        menu.addAction(self.open_model)

    def fill_recent(self, pairs: Sequence[Sequence[str]], open_pair: Callable[[str, str], object]) -> None:
        self.recent_menu.clear()
        for p0, p1 in pairs:
            act = self.recent_menu.addAction(f"{Path(p0).name} ↔ {Path(p1).name}")
            act.setToolTip(f"{p0}\n{p1}")
            act.triggered.connect(lambda _=False, a=p0, b=p1: open_pair(a, b))
        self.recent_menu.setEnabled(bool(pairs))
