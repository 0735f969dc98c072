"""The main window: layout and wiring. Each job lives in a module of its own:

    state.py        ViewerState: pair, model, result, mask (refilter, query, export)
    worker.py       MatchRunner: background runs on the long-lived match thread
    loader.py       ImageLoader: photos decoded on their own thread
    models.py       ModelChooser: weights files, zoo names, downloads (download.py)
    viewer.py       ViewerWidget: the pair view (pair_view.py) kept in step with the state
    dock.py         compute and filter panels
    menus.py        actions, menus, file dialogs;  preferences.py: QSettings
    status.py       the message bar and the run's progress

Nothing here blocks on tensor work or decoding: ``open_images`` returns at once and
``load_finished`` says when the pair changed or why not. Errors become a message in
the bar above the images, under a topic that says which state it belongs to; the
message leaves when that state ends (a side opens, a model loads, a run succeeds).
docs/architecture.md follows a drop to the drawn matches.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import qdebounced

from ucn_gui.core import resources, zoo
from ucn_gui.core.checkpoint import LoadedModel
from ucn_gui.core.filters import default_filters

from .menus import IMAGE_FILTER, MODEL_FILTER, Menus, ask_open_path
from .dock import SettingsDock
from .models import ModelChooser
from .opening import PhotoOpener
from .preferences import EXTREME_MAX_SIDE, Preferences
from .saving import Saver
from .state import ViewerState
from .status import Messages, RunStatus
from .viewer import ViewerWidget
from .worker import MatchResult, MatchRunner

RANSAC_PAUSE_MS = 150  # RANSAC (~100 ms) runs once a slider drag pauses this long


def _run_summary(result: MatchResult) -> str:
    if result.matcher != "UCN":
        return f"{result.matcher}: {len(result.matches):,} matches in {result.seconds:.2f} s"
    how = "features reused" if result.reused_features else f"on {result.device}, {result.precision}"
    aligned = f" {result.alignment.summary()}." if result.alignment is not None else ""
    if result.preview:
        aligned = " Matching again with image 1 aligned…"
    return f"Matched {len(result.matches):,} candidates in {result.seconds:.2f} s ({how}).{aligned}"


class MainWindow(QtWidgets.QMainWindow):
    result_shown = QtCore.Signal()  # a MatchResult was drawn (tests and the benchmark wait on it)
    load_finished = QtCore.Signal(bool)  # an open_images load ended: True when the pair changed

    def __init__(self, settings: QtCore.QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("UCN Viewer")
        self.setAcceptDrops(False)  # drops belong to the pair view, which knows the side
        self.prefs = Preferences(settings if settings is not None else QtCore.QSettings("ucn-viewer", "UCN Viewer"))
        self.state = ViewerState(self)
        self.runner = MatchRunner(self)
        self._before_preview: MatchResult | None = None  # what a first-pass preview replaced (see _on_preview)
        self.models = ModelChooser(self)
        self._keep_max_side = False  # the user confirmed an extreme max side for later launches
        self._refilter_later = qdebounced(self.refilter, RANSAC_PAUSE_MS)
        self._build_widgets()
        self.messages = Messages(self.message_bar, self.statusBar())
        self.opener = PhotoOpener(self.state, self.prefs, self.messages, lambda: self.compute_panel.settings().max_side, self)
        self.loader = self.opener.loader
        self.saver = Saver(self, self.state, self.prefs, self.messages,
                           lambda: (self.compute_panel.settings(), self.filter_panel.settings()), self.pair_view.render_picture)
        self.menus = Menus(self, self.side_dock)
        self.geometry_panel = self.side_dock.add_geometry_panel(self.menus.alignment)
        self._connect()
        self.fill_model_menu()
        self.prefs.restore(self, self.filter_panel, self.compute_panel, self.menus.toggles)
        self.viewer.set_linked_zoom(self.menus.linked_zoom.isChecked())  # restored without a toggle when off
        self._show_matchers()
        self.menus.fill_recent(self.prefs.recent_pairs(), self.set_pair)

    def _build_widgets(self) -> None:
        self.viewer = ViewerWidget(self.state)
        self.message_bar, self.pair_view, self.info = self.viewer.message_bar, self.viewer.pair_view, self.viewer.info
        self.setCentralWidget(self.viewer)
        self.side_dock = SettingsDock()
        self.compute_panel, self.filter_panel = self.side_dock.compute_panel, self.side_dock.filter_panel
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, self.side_dock)
        self.side_dock.keep_width_in(self)
        self.run_status = RunStatus(self.statusBar())
        self.filter_panel.counts_changed.connect(self.run_status.counts.setText)

    def _connect(self) -> None:
        view, state, runner, m = self.pair_view, self.state, self.runner, self.menus
        for pane in self.viewer.panes:
            pane.files_dropped.connect(self.opener.on_dropped)
        self.opener.finished.connect(self.load_finished)
        self.opener.recent_changed.connect(lambda: self.menus.fill_recent(self.prefs.recent_pairs(), self.set_pair))
        self.viewer.notice.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.compute_panel.changed.connect(self.request_match)
        self.compute_panel.changed.connect(self._check_max_side)
        for box in (self.compute_panel.matcher, self.compute_panel.compare):
            box.currentIndexChanged.connect(self._show_matchers)
        self.compute_panel.open_model_requested.connect(self.open_model_dialog)
        self.filter_panel.changed.connect(self.refilter)
        self.geometry_panel.outliers.toggled.connect(self.refilter)
        state.images_changed.connect(self._show_images)
        state.result_changed.connect(self._show_result)
        state.mask_changed.connect(self._show_counts)
        runner.progress.connect(self.run_status.set_progress)
        runner.finished.connect(self._on_result)
        runner.preview.connect(self._on_preview)
        runner.cancelled.connect(self._drop_preview)
        runner.failed.connect(lambda _message: self._drop_preview())
        runner.failed.connect(lambda message: self.show_message(f"Matching failed: {message}", "error", "run"))
        runner.cancelled.connect(lambda: self.statusBar().showMessage("Run cancelled.", 5000))
        runner.notice.connect(lambda text: self.show_message(text, "warning", "notice"))
        runner.busy_changed.connect(self.run_status.set_busy)
        self.models.chosen.connect(self._use_model)
        self.models.message.connect(lambda text, level: self.show_message(text, level, "model"))
        self.models.status.connect(self.statusBar().showMessage)
        self.models.downloaded.connect(self.fill_model_menu)
        self.run_status.cancel_button.clicked.connect(self.cancel)
        for action, slot in ((m.open_left, lambda: self.open_image_dialog(0)), (m.open_right, lambda: self.open_image_dialog(1)),
                             (m.open_model, self.open_model_dialog), (m.swap, self.state.swap), (m.rerun, self.request_match),
                             (m.cancel, self.cancel), (m.export, lambda: self.export_matches()),
                             (m.picture, lambda: self.save_picture()), (m.quit, self.close),
                             (m.clear_query, self.clear_queries), (m.reset_zoom, view.reset_zoom)):
            action.triggered.connect(slot)
        m.lines.toggled.connect(lambda on: [pane.set_lines_visible(on) for pane in self.viewer.panes])
        m.stacked.toggled.connect(lambda on: [pane.set_stacked(on) for pane in self.viewer.panes])
        m.gray.toggled.connect(lambda on: [pane.set_grayscale(on) for pane in self.viewer.panes])
        m.alignment.toggled.connect(self.viewer.show_alignment)
        m.linked_zoom.toggled.connect(self.viewer.set_linked_zoom)

    # ------------------------------------------------------------------ messages

    def show_message(self, text: str, level: str = "info", topic: str = "general", action=None) -> None:
        """A message above the images about ``topic`` (see MessageBar); the status bar repeats it briefly."""
        self.messages.show(text, level, topic, action)

    # ------------------------------------------------------------------ images

    def open_images(self, paths: Mapping[int, str | Path], notice: str | None = None) -> int:
        """Open one or both sides ({side: path}) on the loader's thread; returns the load's id.
        If any file fails, nothing changes and a message says why (``load_finished`` tells either way)."""
        return self.opener.open(paths, notice)

    def set_pair(self, path0: str | Path, path1: str | Path, notice: str | None = None) -> int:
        return self.open_images({0: path0, 1: path1}, notice)

    def _show_images(self, _sides: list[int]) -> None:
        images = self.state.images
        names = [img.path.name if img is not None else "—" for img in images]
        self.setWindowTitle(f"UCN Viewer — {names[0]} ↔ {names[1]}")
        self.request_match()

    def open_image_dialog(self, side: int) -> None:
        path = ask_open_path(self, f"Open {'left' if side == 0 else 'right'} image", self.prefs.last_dir(), IMAGE_FILTER)
        if path:
            self.open_images({side: path})

    # ------------------------------------------------------------------ model

    def _use_model(self, model: LoadedModel, path: str) -> None:
        self.compute_panel.set_model_name(f"{model.name} ({model.arch}, {model.n_out}-d)")
        # Thresholds belong to a model (its card names those chosen on its validation pairs):
        # a different model than the saved thresholds were tuned for starts from its own.
        if self.prefs.filters_model() != path:
            self.filter_panel.set_settings(default_filters(model.card, self.filter_panel.settings()))
            self.prefs.save_filters(self.filter_panel.settings(), path)
        self.prefs.set_model_path(path)
        self.message_bar.clear("model")  # the "choose a weights file" notice, a download, an earlier failure
        self.state.set_model(model)
        self.request_match()

    def fill_model_menu(self) -> None:
        """List the zoo's models again (a download adds one)."""
        self.menus.fill_models(zoo.list_models(), self.models.load_file, self.models.download)

    def open_model_dialog(self) -> None:
        path = ask_open_path(self, "Open model weights", self.prefs.last_dir(), MODEL_FILTER)
        if path:
            self.models.load_file(path)

    # ------------------------------------------------------------------ running

    def request_match(self) -> int | None:
        """Start a background run with the current pair, model and compute settings."""
        if not self.state.has_pair():
            return None
        request = self.state.request(self.compute_panel.settings())
        if request is None:
            if self.models.busy:  # it runs when the model arrives; the download's own message stays
                self.statusBar().showMessage("The pair is matched as soon as the model has arrived.", 10000)
            else:
                self.show_message("No model loaded yet: choose a weights file with File ▸ Open model… (Ctrl+M). "
                                  "open-ucn checkpoints and .safetensors files both work.", "warning", "model")
            return None
        self.pair_view.clear_query()
        return self.runner.submit(request)

    def cancel(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
        else:
            self.clear_queries()

    def clear_queries(self) -> None:
        for pane in self.viewer.panes:
            pane.clear_query()

    def _on_preview(self, result: MatchResult) -> None:
        """The first pass, drawn while the alignment pass runs; what was shown before is kept
        in case the run is cancelled (a cancelled run shows nothing it computed)."""
        shown = self.state.result
        if shown is None or not shown.preview:
            self._before_preview = shown
        self.state.set_result(result)

    def _drop_preview(self) -> None:
        if self.state.result is not None and self.state.result.preview:
            if self._before_preview is not None:
                self.state.set_result(self._before_preview)
            else:
                self.state.clear_result()
        self._before_preview = None

    def _on_result(self, result: MatchResult) -> None:
        self._before_preview = None
        self.message_bar.clear("run", "model")  # a failed run or model load is history now
        self.state.set_result(result)
        self.result_shown.emit()

    # ------------------------------------------------------------------ showing the result

    def _show_result(self) -> None:
        result = self.state.result
        m = None if result is None else result.matches
        self.filter_panel.set_errors(None if m is None else m.reciprocity_error, None if m is None else m.stability_error)
        if result is None:
            self.filter_panel.set_counts("no matches yet")
            return
        self.filter_panel.set_unit(result.matches.network_side, result.matches.error_scale)
        # What the second pass did stays in view until the next message (it says which pass is drawn).
        timeout = 0 if result.alignment is not None else 10000
        self.statusBar().showMessage(" · ".join(_run_summary(r) for r in (result, result.compare) if r is not None), timeout)
        self.refilter()

    def refilter(self) -> None:
        """Re-mask with the panel's thresholds (instant); during a slider drag RANSAC waits for a pause."""
        dragging = bool(QtWidgets.QApplication.mouseButtons() & QtCore.Qt.MouseButton.LeftButton)
        outliers = self.geometry_panel.outliers.isChecked()
        if self.state.refilter(self.filter_panel.settings(), self.filter_panel.max_drawn(), dragging, outliers):
            self._refilter_later()

    def _show_counts(self) -> None:
        """The counts, and what RANSAC estimated (the alignment view needs a homography)."""
        slot = self.state.slots[0]
        self.filter_panel.set_counts(slot.counts())
        self.geometry_panel.show_geometry(slot.geometry, slot.counts())
        has_h = self.state.homography() is not None  # RANSAC's, or the second pass's warp
        self.menus.alignment.setEnabled(has_h or self.menus.alignment.isChecked())

    # ------------------------------------------------------------------ saving

    def export_matches(self, path: str | Path | None = None) -> Path | None:
        """NPZ / CSV / JSON (by suffix) with the same columns as ucn-match; mask = current filters."""
        return self.saver.export_matches(path)

    def save_picture(self, path: str | Path | None = None) -> Path | None:
        """PNG of the current picture at full image resolution."""
        return self.saver.save_picture(path)

    def _show_matchers(self) -> None:
        """Filters that do not apply to the chosen matchers are disabled at once (the run follows)."""
        chosen = self.compute_panel.settings()
        self.filter_panel.set_matchers(chosen.matcher, chosen.compare)

    def _check_max_side(self) -> None:
        """An extreme max side applies now, but the next launch gets it only when confirmed."""
        side = self.compute_panel.settings().max_side or 0
        if side <= EXTREME_MAX_SIDE:
            self._keep_max_side = False
            self.message_bar.clear("max_side")
        elif not self._keep_max_side:
            self.show_message(f"Max. image side {side} px: a run can take minutes and much memory. It applies to this "
                              "session; the next launch starts with the previous setting unless you keep it.", "warning",
                              "max_side", ("Keep for later launches", self._confirm_max_side))

    def _confirm_max_side(self) -> None:
        self._keep_max_side = True

    # ------------------------------------------------------------------ start and close

    def start(self, paths: list[str] | None = None, weights: str | None = None) -> None:
        """What launching does: open the given pair (or the sample pair) and a model, then match."""
        # Images first: without a model they show the "choose a weights file" notice, and a
        # model that then fails to load leaves its error message visible.
        samples = resources.sample_pair()
        last = self.prefs.last_pair() if self.menus.reopen_last.isChecked() else None
        if paths:  # each side on its own: a missing file is named, the other one still opens
            for side, path in enumerate(paths[:2]):
                self.open_images({side: path})
        elif last:
            self.set_pair(*last)
        elif all(p.is_file() for p in samples):
            self.set_pair(*samples)
        if weights:
            self.models.load_by_name(weights)
        else:
            self.models.load_default(self.prefs.model_path())

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt API)
        """Returns at once: runs and downloads are cancelled, and a step that cannot be
        interrupted ends in the background (ui/background.py), never holding the window."""
        self.prefs.save(self, self.filter_panel, self.compute_panel, self.menus.toggles, self._keep_max_side)
        self.hide()
        self.runner.shutdown()
        self.loader.shutdown()
        self.models.shutdown()
        super().closeEvent(event)
