"""The main window: menus, actions, panels, messages and settings persistence.

It owns the state (two images, a model, the latest MatchResult and its mask) and
wires the pieces together: PairView draws, FilterPanel re-masks, ComputePanel and
new images start a background run through MatchRunner. Nothing here blocks on
tensor work or on decoding: photos open on ImageLoader's thread (``set_pair`` and
``set_image`` return at once; ``load_finished`` says when the pair changed or why
not). Errors become a message in the bar above the images (non-modal, so tests and
users can read it without dismissing a dialog).
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtGui, QtWidgets

from ucn_gui.core import resources, zoo
from ucn_gui.core.checkpoint import CheckpointError, LoadedModel, load_model
from ucn_gui.core.match_files import save_matches
from ucn_gui.core.filters import FilterSettings, apply_filters, default_filters, filter_mask
from ucn_gui.core.image import Photo
from ucn_gui.core.settings import ComputeSettings
from ucn_gui.core.matching import MatchOptions, similarity_map

from .compute_panel import ComputePanel
from .download import ModelDownloader
from .picture import write_png
from .filter_panel import FilterPanel
from .loader import ImageLoader, OpenedImage
from .pair_view import PairView
from .worker import MatchRequest, MatchResult, MatchRunner

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp *.pgm *.ppm);;All files (*)"
MODEL_FILTER = "Model weights (*.safetensors *.pth *.pt *.ckpt *.tar);;All files (*)"
MAX_RECENT = 8


class MessageBar(QtWidgets.QFrame):
    """A one-line, non-modal message above the images; closes with its × button."""

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


class MainWindow(QtWidgets.QMainWindow):
    result_shown = QtCore.Signal()  # a MatchResult was drawn (tests and the benchmark wait on it)
    load_finished = QtCore.Signal(bool)  # a set_pair / set_image load ended: True when the pair changed

    def __init__(self, settings: QtCore.QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("UCN Viewer")
        self.setAcceptDrops(False)  # drops belong to the pair view, which knows the side
        self.settings = settings if settings is not None else QtCore.QSettings("ucn-viewer", "UCN Viewer")

        self.images: list[Photo | None] = [None, None]
        self._displays: list[object] = [None, None]  # what the view shows of each photo (at most 4096 px)
        self._load_notices: dict[int, str] = {}  # load id -> message to show once it succeeded
        self.model: LoadedModel | None = None
        self.result: MatchResult | None = None
        self.mask = np.zeros(0, bool)  # current filter result over result.matches
        self._draw_order = np.zeros(0, np.int64)  # fixed random order: which survivors are drawn under the cap
        self.drawn_indices = np.zeros(0, np.int64)

        self.runner = MatchRunner(self)
        # RANSAC costs ~100 ms per run: while a slider is dragged it runs once the drag pauses.
        self._ransac_timer = QtCore.QTimer(self, singleShot=True, interval=150)
        self._ransac_timer.timeout.connect(self.refilter)
        self._exact_mask: tuple[object, np.ndarray] | None = None  # (MatchSet, last mask with RANSAC)
        self.downloader = ModelDownloader(self)
        self.downloader.progress.connect(self._on_download_progress)
        self.downloader.finished.connect(self._on_download_finished)
        self.downloader.failed.connect(lambda name, msg: self.show_message(f"Download of {name} failed: {msg}", "error"))
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_result)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.notice.connect(lambda text: self.show_message(text, "warning"))
        self.runner.busy_changed.connect(self._on_busy)
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._on_images_loaded)
        self.loader.failed.connect(self._on_load_failed)

        self._build_widgets()
        self._build_actions()
        self._restore_settings()

    # ------------------------------------------------------------------ layout

    def _build_widgets(self) -> None:
        self.message_bar = MessageBar()
        self.pair_view = PairView()
        self.pair_view.files_dropped.connect(self.on_files_dropped)
        self.pair_view.hovered.connect(self._on_hover)
        self.pair_view.match_clicked.connect(self._on_hover)
        self.pair_view.query_requested.connect(self.query)
        self.info = QtWidgets.QLabel("Drop two images here, or use File ▸ Open.")
        self.info.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

        center = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(center)
        v.setContentsMargins(4, 4, 4, 2)
        v.setSpacing(4)
        v.addWidget(self.message_bar)
        v.addWidget(self.pair_view, 1)
        v.addWidget(self.info)
        self.setCentralWidget(center)

        self.compute_panel = ComputePanel()
        self.compute_panel.changed.connect(self.request_match)
        self.compute_panel.open_model_requested.connect(self.open_model_dialog)
        self.filter_panel = FilterPanel()
        self.filter_panel.changed.connect(self.refilter)
        side = QtWidgets.QWidget()
        sv = QtWidgets.QVBoxLayout(side)
        sv.addWidget(self.compute_panel)
        sv.addWidget(self.filter_panel)
        sv.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        self.side_dock = QtWidgets.QDockWidget("Settings")
        self.side_dock.setObjectName("settings_dock")
        self.side_dock.setWidget(scroll)
        self.side_dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, self.side_dock)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(320)
        self.progress.setTextVisible(True)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()

    def _action(self, text: str, slot, shortcut: str | QtGui.QKeySequence | None = None, checkable: bool = False) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    def _build_actions(self) -> None:
        key = QtGui.QKeySequence.StandardKey
        self.act_open0 = self._action("Open &left image…", lambda: self.open_image_dialog(0), key.Open)
        self.act_open1 = self._action("Open &right image…", lambda: self.open_image_dialog(1), "Ctrl+Shift+O")
        self.act_open_model = self._action("Open &model…", self.open_model_dialog, "Ctrl+M")
        self.act_swap = self._action("S&wap images", self.swap, "Ctrl+Shift+X")
        self.act_rerun = self._action("&Rerun matching", self.request_match, "Ctrl+R")
        self.act_cancel = self._action("&Cancel run", self.cancel, "Esc")
        self.act_export = self._action("&Export matches…", lambda: self.export_matches(), key.Save)
        self.act_picture = self._action("Save &picture (PNG)…", lambda: self.save_picture(), "Ctrl+Shift+S")
        self.act_quit = self._action("&Quit", self.close, key.Quit)
        self.act_lines = self._action("Show &lines", self.pair_view.set_lines_visible, "Ctrl+L", checkable=True)
        self.act_stacked = self._action("&Stacked layout", self.pair_view.set_stacked, "Ctrl+T", checkable=True)
        self.act_gray = self._action("&Grey images", self.pair_view.set_grayscale, "Ctrl+G", checkable=True)
        self.act_clear_query = self._action("Clear &query", self.clear_query, "Ctrl+E")
        self.act_reset_zoom = self._action("Reset &zoom", self.pair_view.reset_zoom, "Ctrl+0")

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for a in (self.act_open0, self.act_open1):
            file_menu.addAction(a)
        self.recent_menu = file_menu.addMenu("Recent &pairs")
        file_menu.addSeparator()
        file_menu.addAction(self.act_open_model)
        file_menu.addSeparator()
        file_menu.addAction(self.act_export)
        file_menu.addAction(self.act_picture)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        match_menu = bar.addMenu("&Match")
        for a in (self.act_swap, self.act_rerun, self.act_cancel):
            match_menu.addAction(a)
        self.model_menu = bar.addMenu("M&odel")
        self._fill_model_menu()
        view_menu = bar.addMenu("&View")
        for a in (self.act_lines, self.act_stacked, self.act_gray, self.act_clear_query, self.act_reset_zoom):
            view_menu.addAction(a)
        view_menu.addAction(self.side_dock.toggleViewAction())

        tools = self.addToolBar("Main")
        tools.setObjectName("main_toolbar")
        tools.setMovable(False)
        for a in (self.act_open0, self.act_open1, self.act_swap, self.act_rerun):
            tools.addAction(a)
        tools.addSeparator()
        for a in (self.act_lines, self.act_stacked, self.act_gray):
            tools.addAction(a)
        tools.addSeparator()
        tools.addAction(self.act_export)
        tools.addAction(self.act_picture)

    def _fill_model_menu(self) -> None:
        self.model_menu.clear()
        entries = zoo.list_models()
        for entry in entries:
            if entry.available:
                act = self.model_menu.addAction(f"{entry.name} — {entry.description}")
                act.triggered.connect(lambda _=False, p=entry.path: self.load_model_file(p))
            else:  # downloadable, not in the cache yet: only on the user's request
                act = self.model_menu.addAction(f"{entry.name} — {entry.description} (download…)")
                act.triggered.connect(lambda _=False, e=entry: self.download_model(e))
        if not entries:
            none = self.model_menu.addAction("No bundled models")
            none.setEnabled(False)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self.act_open_model)

    # ------------------------------------------------------------------ messages

    def show_message(self, text: str, level: str = "info") -> None:
        self.message_bar.show_message(text, level)
        self.statusBar().showMessage(text, 10000)

    def message_text(self) -> str:
        return self.message_bar.label.text() if not self.message_bar.isHidden() else ""

    def clear_message(self) -> None:
        self.message_bar.hide()

    # ------------------------------------------------------------------ images

    def _load(self, paths: dict[int, str | Path], notice: str | None = None) -> int:
        """Open photos on the loader's thread (decoded reduced when huge: the window keeps at
        least 4096 px, or the network's size if larger); they replace their sides when done."""
        load_id = self.loader.load(paths, self.compute_panel.max_image_side())
        if notice:
            self._load_notices[load_id] = notice
        names = " and ".join(Path(p).name for p in paths.values())
        self.statusBar().showMessage(f"Opening {names}…")
        return load_id

    def set_image(self, side: int, path: str | Path) -> int:
        """Open one side in the background; returns the load's id. On failure the pair stays
        as it was and a message says why (``load_finished`` tells either way)."""
        return self._load({side: path})

    def set_pair(self, path0: str | Path, path1: str | Path, notice: str | None = None) -> int:
        """Open both sides in the background; if either fails, neither changes."""
        return self._load({0: path0, 1: path1}, notice)

    def _on_images_loaded(self, load_id: int, opened: dict[int, OpenedImage]) -> None:
        self.statusBar().clearMessage()
        self._commit_images(opened)
        notice = self._load_notices.pop(load_id, None)
        if notice:
            self.show_message(notice, "warning")
        self.load_finished.emit(True)

    def _on_load_failed(self, load_id: int, message: str) -> None:
        self._load_notices.pop(load_id, None)
        self.statusBar().clearMessage()
        self.show_message(f"Could not open the image: {message}", "error")
        self.load_finished.emit(False)

    def _commit_images(self, opened: dict[int, OpenedImage]) -> None:
        for side, item in opened.items():
            img = item.image
            self.images[side] = img
            self._displays[side] = item.display
            self.pair_view.set_image(side, item.display, img.original_size)
            self._remember_dir(img.path)
        self.clear_message()
        self._clear_result()
        self._update_title()
        if all(self.images):
            self._add_recent(self.images[0].path, self.images[1].path)
        self.request_match()

    def on_files_dropped(self, paths: list[Path], side: int) -> None:
        if len(paths) >= 2:
            many = f"{len(paths)} files dropped: using the first two." if len(paths) > 2 else None
            self.set_pair(paths[0], paths[1], many)
        elif paths:
            self.set_image(side, paths[0])

    def swap(self) -> None:
        if self.images[0] is None and self.images[1] is None:
            return
        self.images = self.images[::-1]
        self._displays = self._displays[::-1]
        for side, img in enumerate(self.images):
            self.pair_view.set_image(side, self._displays[side], None if img is None else img.original_size)
        self._clear_result()
        self._update_title()
        self.request_match()

    def _ask_open_path(self, title: str, file_filter: str) -> str:
        """A modal file dialog; tests patch this."""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, title, self._last_dir(), file_filter)
        return path

    def _ask_save_path(self, title: str, suggested: str, file_filter: str) -> str:
        """A modal save dialog; tests patch this."""
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, title, str(Path(self._last_dir()) / suggested), file_filter)
        return path

    def open_image_dialog(self, side: int) -> None:
        path = self._ask_open_path(f"Open {'left' if side == 0 else 'right'} image", IMAGE_FILTER)
        if path:
            self.set_image(side, path)

    def _update_title(self) -> None:
        names = [img.path.name if img is not None else "—" for img in self.images]
        self.setWindowTitle(f"UCN Viewer — {names[0]} ↔ {names[1]}")

    # ------------------------------------------------------------------ model

    def load_model_file(self, path: str | Path) -> bool:
        """Load weights (any supported format). On failure the current model stays."""
        try:
            # CPU first: the worker moves it to the run's device.
            model = load_model(path, "cpu")
        except CheckpointError as exc:
            self.show_message(f"Could not load the model: {exc}", "error")
            return False
        except (OSError, ValueError, RuntimeError) as exc:  # anything the loader did not classify
            self.show_message(f"Could not load the model {path}: {exc}", "error")
            return False
        self.model = model
        self.compute_panel.set_model_name(f"{model.name} ({model.arch}, {model.n_out}-d)")
        resolved = str(Path(path).resolve())
        # Thresholds belong to a model (its card names those chosen on its validation pairs):
        # a different model than the saved thresholds were tuned for starts from its own.
        if self.settings.value("filters_model", "", type=str) != resolved:
            self.filter_panel.set_settings(self._with_card_thresholds(model.card))
            # Saved together, now: a session that ends without a clean close must not
            # leave "thresholds applied" recorded beside thresholds that never were.
            self.settings.setValue("filters", json.dumps(self.filter_panel.settings().to_dict()))
            self.settings.setValue("filters_model", resolved)
        self.settings.setValue("model_path", resolved)
        if self.message_bar.level != "error" or "model" in self.message_text():
            self.clear_message()  # the "choose a weights file" notice or an earlier model failure
        self._clear_result()
        self.request_match()
        return True

    def _with_card_thresholds(self, card: dict) -> FilterSettings:
        """The panel's current settings with the threshold tests replaced by the card's defaults."""
        chosen = default_filters(card)
        current = self.filter_panel.settings()
        return replace(current, reciprocity=chosen.reciprocity, stability=chosen.stability,
                       max_distance=chosen.max_distance, max_ratio=chosen.max_ratio)

    def load_model_by_name(self, name_or_path: str | Path) -> None:
        """A weights file or a zoo name (a zoo model not yet cached is downloaded first)."""
        entry = None if Path(name_or_path).is_file() else zoo.find(str(name_or_path))
        if entry is not None and not entry.available and entry.downloadable:
            self.download_model(entry)
            return
        try:
            path = zoo.resolve(name_or_path)
        except zoo.ModelNotFound as exc:
            self.show_message(f"Could not load the model: {exc}", "error")
            return
        self.load_model_file(path)

    def download_model(self, entry: zoo.ModelEntry) -> None:
        """Fetch a zoo model in the background; it loads when verified."""
        if not self.downloader.start(entry):
            self.show_message("A model download is already running.", "info")
            return
        self.show_message(f"Downloading {entry.name} from {entry.url} …", "info")

    def _on_download_progress(self, name: str, done: int, total: int) -> None:
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total > 0 else f"{done / 1e6:.1f} MB"
        self.statusBar().showMessage(f"Downloading {name}: {size}")

    def _on_download_finished(self, name: str, path: Path) -> None:
        self.statusBar().showMessage(f"Downloaded {name} to {path}", 10000)
        self._fill_model_menu()
        self.load_model_file(path)

    def open_model_dialog(self) -> None:
        path = self._ask_open_path("Open model weights", MODEL_FILTER)
        if path:
            self.load_model_file(path)

    # ------------------------------------------------------------------ running

    def request_match(self) -> int | None:
        """Start a background run with the current pair, model and compute settings."""
        if not all(self.images):
            return None
        if self.model is None:
            self.show_message(
                "No model loaded yet: choose a weights file with File ▸ Open model… (Ctrl+M). "
                "open-ucn checkpoints and .safetensors files both work.",
                "warning",
            )
            return None
        self.clear_query()
        compute = ComputeSettings(self.compute_panel.device_name(), self.compute_panel.max_image_side(),
                                  self.compute_panel.precision_name(), self.compute_panel.options())
        request = MatchRequest(self.model, self.images[0], self.images[1], compute)
        return self.runner.submit(request)

    def cancel(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
        else:
            self.clear_query()

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)
            self.progress.setFormat("starting…")

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{stage} — {fraction * 100:.0f}%")

    def _on_failed(self, message: str) -> None:
        self.show_message(f"Matching failed: {message}", "error")

    def _on_cancelled(self) -> None:
        self.statusBar().showMessage("Run cancelled.", 5000)

    def _on_result(self, result: MatchResult) -> None:
        self.result = result
        n = len(result.matches)
        # A fixed random order per MatchSet: under the drawing cap the same survivors
        # stay drawn as thresholds move, and the sample is spread over the image.
        self._draw_order = np.random.default_rng(0).permutation(n).astype(np.int64)
        self.filter_panel.set_errors(result.matches.reciprocity_error)
        how = "features reused" if result.reused_features else f"on {result.device}, {result.precision}"
        self.statusBar().showMessage(f"Matched {n:,} candidates in {result.seconds:.2f} s ({how}).", 10000)
        self.refilter()
        self.result_shown.emit()

    def _clear_result(self) -> None:
        self.result = None
        self.mask = np.zeros(0, bool)
        self._draw_order = np.zeros(0, np.int64)
        self.drawn_indices = np.zeros(0, np.int64)
        self.pair_view.set_matches(np.zeros((0, 2)), np.zeros((0, 2)), self.drawn_indices)
        self.pair_view.select(-1)
        self.filter_panel.set_errors(None)
        self.filter_panel.counter.setText("no matches yet")
        self.clear_query()

    # ------------------------------------------------------------------ filtering (instant)

    def refilter(self) -> None:
        """Re-mask the existing MatchSet with the panel's thresholds and redraw. No recomputation."""
        if self.result is None:
            return
        matches = self.result.matches
        settings = self.filter_panel.settings()
        dragging = bool(QtWidgets.QApplication.mouseButtons() & QtCore.Qt.MouseButton.LeftButton)
        last = self._exact_mask[1] if self._exact_mask is not None and self._exact_mask[0] is matches else None
        if settings.ransac and dragging and last is not None:
            # Preview: the last RANSAC inliers that still pass the thresholds; exact on pause.
            self.mask = filter_mask(matches, settings) & last
            self._ransac_timer.start()
        else:
            self.mask = apply_filters(matches, settings)
            self._exact_mask = (matches, self.mask)
        order = self._draw_order
        self.drawn_indices = order[self.mask[order]][: self.filter_panel.max_drawn()]
        idx = self.drawn_indices
        self.pair_view.set_matches(matches.keypoints0[idx], matches.keypoints1[idx], idx)
        self.filter_panel.set_counts(int(self.mask.sum()), len(matches), len(idx))

    # ------------------------------------------------------------------ hover and query

    def _on_hover(self, index: int) -> None:
        if self.result is None or index < 0:
            return
        m = self.result.matches
        x0, y0 = m.keypoints0[index]
        x1, y1 = m.keypoints1[index]
        self.info.setText(
            f"Match {index}: ({x0:.0f}, {y0:.0f}) → ({x1:.0f}, {y1:.0f}) · reciprocity error "
            f"{m.reciprocity_error[index]:.2f} px · stability error {m.stability_error[index]:.2f} px · "
            f"descriptor distance {m.descriptor_distance[index]:.3f} · ratio {m.ratio[index]:.3f}"
        )

    def query(self, x: float, y: float) -> None:
        """Click-to-query: similarity of pixel (x, y) of image 0 over image 1, from cached features."""
        if self.result is None:
            self.statusBar().showMessage("Match the pair first; the query uses its features.", 5000)
            return
        sim, best = similarity_map(self.result.pair, x, y)
        self.pair_view.show_query(x, y, sim, best)
        self.info.setText(
            f"Query ({x:.0f}, {y:.0f}) in image 0 → nearest neighbour ({best[0]:.0f}, {best[1]:.0f}) in image 1, "
            f"similarity {float(sim.max()):.3f} (heat map: descriptor similarity over image 1)"
        )

    def clear_query(self) -> None:
        self.pair_view.clear_query()

    # ------------------------------------------------------------------ export

    def export_matches(self, path: str | Path | None = None) -> Path | None:
        """NPZ / CSV / JSON (by suffix) with the same columns as ucn-match; mask = current filters."""
        if self.result is None:
            self.show_message("Nothing to export yet: match a pair first.", "warning")
            return None
        if path is None:
            path = self._ask_save_path("Export matches", "matches.npz", "NumPy (*.npz);;CSV (*.csv);;JSON (*.json)")
            if not path:
                return None
        meta = {
            "image0": str(self.images[0].path),
            "image1": str(self.images[1].path),
            "model": str(self.model.path) if self.model else None,
            "max_side": self.compute_panel.max_image_side(),
            "device": self.result.device,
            "precision": self.result.precision,
            "options": asdict(self.compute_panel.options()),
            "filters": self.filter_panel.settings().to_dict(),
        }
        try:
            out = save_matches(path, self.result.matches, self.mask, meta)
        except (OSError, ValueError) as exc:
            self.show_message(f"Could not export the matches: {exc}", "error")
            return None
        self._remember_dir(Path(path))
        self.show_message(f"Saved {int(self.mask.sum()):,} of {len(self.mask):,} matches (mask column) to {out}.")
        return Path(out)

    def save_picture(self, path: str | Path | None = None) -> Path | None:
        """PNG of the current picture at full image resolution."""
        if not any(self.images):
            self.show_message("Nothing to save yet: open two images first.", "warning")
            return None
        if path is None:
            path = self._ask_save_path("Save picture", "matches.png", "PNG (*.png)")
            if not path:
                return None
        try:
            write_png(self.pair_view.render_picture(), str(path))
        except (OSError, ValueError) as exc:
            self.show_message(f"Could not save the picture: {exc}", "error")
            return None
        self._remember_dir(Path(path))
        self.show_message(f"Saved the picture to {path}.")
        return Path(path)

    # ------------------------------------------------------------------ start-up

    def start(self, paths: list[str] | None = None, weights: str | None = None) -> None:
        """What launching does: open the given pair (or the sample pair) and a model, then match."""
        # Images first: without a model they show the "choose a weights file" notice, and a
        # model that then fails to load leaves its error message visible.
        samples = resources.sample_pair()
        if paths:
            self.set_pair(paths[0], paths[1])
        elif all(p.is_file() for p in samples):
            self.set_pair(*samples)
        if weights:
            self.load_model_by_name(weights)
        else:
            self._load_default_model()

    def _load_default_model(self) -> None:
        remembered = self.settings.value("model_path", "", type=str)
        if remembered and Path(remembered).is_file():
            if self.load_model_file(remembered):
                return
        default = zoo.default_model_path()
        if default is not None:
            self.load_model_file(default)

    # ------------------------------------------------------------------ settings

    def _last_dir(self) -> str:
        return self.settings.value("last_dir", str(Path.home()), type=str)

    def _remember_dir(self, path: Path) -> None:
        self.settings.setValue("last_dir", str(Path(path).resolve().parent))

    def _recent(self) -> list[list[str]]:
        try:
            pairs = json.loads(self.settings.value("recent_pairs", "[]", type=str))
        except (TypeError, ValueError):
            return []
        return [p for p in pairs if isinstance(p, list) and len(p) == 2]

    def _add_recent(self, p0: Path, p1: Path) -> None:
        pair = [str(Path(p0).resolve()), str(Path(p1).resolve())]
        pairs = [pair] + [p for p in self._recent() if p != pair]
        self.settings.setValue("recent_pairs", json.dumps(pairs[:MAX_RECENT]))
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p0, p1 in self._recent():
            act = self.recent_menu.addAction(f"{Path(p0).name} ↔ {Path(p1).name}")
            act.setToolTip(f"{p0}\n{p1}")
            act.triggered.connect(lambda _=False, a=p0, b=p1: self.set_pair(a, b))
        self.recent_menu.setEnabled(bool(self._recent()))

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("geometry")
        if isinstance(geometry, (QtCore.QByteArray, bytes)) and not self.restoreGeometry(geometry):
            geometry = None
        if geometry is None:
            self.resize(1500, 900)
        state = s.value("window_state")
        if isinstance(state, (QtCore.QByteArray, bytes)):
            self.restoreState(state)
        try:
            filters = FilterSettings(**json.loads(s.value("filters", "{}", type=str)))
        except (TypeError, ValueError):
            filters = FilterSettings()
        self.filter_panel.set_settings(filters)
        self.filter_panel.max_drawn_box.setValue(s.value("max_drawn", 5000, type=int))
        try:
            options = MatchOptions(**json.loads(s.value("match_options", "{}", type=str)))
        except (TypeError, ValueError):
            options = MatchOptions()
        self.compute_panel.restore(s.value("device", "auto", type=str), s.value("max_side", 640, type=int), options,
                                   s.value("precision", "auto", type=str))
        self.act_lines.setChecked(s.value("show_lines", False, type=bool))
        self.act_stacked.setChecked(s.value("stacked", False, type=bool))
        self.act_gray.setChecked(s.value("grayscale", True, type=bool))
        self._fill_recent_menu()

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("filters", json.dumps(self.filter_panel.settings().to_dict()))
        s.setValue("max_drawn", self.filter_panel.max_drawn())
        s.setValue("match_options", json.dumps(asdict(self.compute_panel.options())))
        s.setValue("device", self.compute_panel.device_name())
        s.setValue("precision", self.compute_panel.precision_name())
        s.setValue("max_side", self.compute_panel.max_image_side())
        s.setValue("show_lines", self.act_lines.isChecked())
        s.setValue("stacked", self.act_stacked.isChecked())
        s.setValue("grayscale", self.act_gray.isChecked())
        s.sync()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.save_settings()
        self.runner.shutdown()
        self.loader.shutdown()
        self.downloader.shutdown()
        super().closeEvent(event)
