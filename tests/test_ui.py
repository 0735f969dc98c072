"""The desktop app, offscreen: loading, drops, background runs, live filters, query, export.

Tiny random model (ResUNetBN2F, 16-d) and images at 320 px keep every run well
under a second, so the waits below are for threads, not for compute.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui

from ucn_gui.core.checkpoint import save_model
from ucn_gui.core.match_files import load_matches, match_columns
from ucn_gui.core.filters import FilterSettings, apply_filters, filter_mask
from ucn_gui.core.matching import similarity_map
from ucn_gui.core.model import build_model
from ucn_gui.core.settings import ComputeSettings, MatchOptions

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
IMG0, IMG1 = DATA / "terrace0.jpg", DATA / "terrace1.jpg"
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(path, build_model("ResUNetBN2F", 16), {"name": "tiny-random"})
    return path


@pytest.fixture
def settings(tmp_path) -> QtCore.QSettings:
    return QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings, monkeypatch):
    from ucn_gui.ui import main_window

    monkeypatch.setattr(main_window.zoo, "default_model_path", lambda: None)  # no bundled default: the state this test wants
    win = main_window.MainWindow(settings=settings)
    win.compute_panel.set_settings(ComputeSettings("cpu", 320, options=MatchOptions(max_keypoints=600), align=False))
    win.resize(1200, 700)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


@pytest.fixture
def matched(qtbot, window, model_path):
    """A window with the terrace pair matched."""
    assert window.models.load_file(model_path)
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        assert window.set_pair(IMG0, IMG1)
    return window


def opened(qtbot, window, start, ok: bool = True) -> None:
    """Run ``start`` (set_pair, open_images, a drop, ...) and wait for the photos it opens."""
    with qtbot.waitSignal(window.load_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        start()
    assert blocker.args == [ok], window.message_bar.text()


def drop(window, paths: list[Path], side: int) -> None:
    """A real QDropEvent with file URLs, landing on the left or right part of the pair view."""
    view = window.pair_view
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QtCore.QPointF(view.width() * (0.2 if side == 0 else 0.8), view.height() / 2)
    event = QtGui.QDropEvent(
        pos, QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    )
    view.dropEvent(event)


def expected_drawn(window) -> int:
    """With RANSAC and outliers shown, every threshold survivor is drawn (in two colours)."""
    settings, matches = window.filter_panel.settings(), window.state.result.matches
    outliers_too = settings.ransac and window.geometry_panel.outliers.isChecked()
    keep = filter_mask(matches, settings) if outliers_too else apply_filters(matches, settings)
    return min(int(keep.sum()), window.filter_panel.max_drawn())


# ---------------------------------------------------------------------- launch


def test_launch_shows_sample_pair_and_asks_for_weights(qtbot, window):
    opened(qtbot, window, window.start)
    assert all(img is not None for img in window.state.images)
    assert window.state.images[0].path.name == "DSC_0410.jpg"
    assert window.pair_view.image_size(0) == window.state.images[0].original_size
    assert "weights file" in window.message_bar.text()
    assert not window.runner.busy and window.state.result is None


def test_app_process_exits_cleanly_after_drawing(tmp_path, model_path):
    """Launch, match, draw, screenshot, quit: exit code 0 (catches crashes at interpreter exit)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"), HOME=str(tmp_path))
    shot = tmp_path / "shot.png"
    cmd = [sys.executable, str(ROOT / "main.py"), str(IMG0), str(IMG1), "--weights", str(model_path),
           "--device", "cpu", "--max-size", "256", "--screenshot", str(shot), "--quit-after", "60"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file() and QtGui.QImage(str(shot)).width() > 100


# ---------------------------------------------------------------------- loading and drops


def test_drop_one_file_sets_that_side(qtbot, window):
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG0))
    opened(qtbot, window, lambda: drop(window, [IMG1], side=1))
    assert window.state.images[0].path == IMG0 and window.state.images[1].path == IMG1
    opened(qtbot, window, lambda: drop(window, [IMG1], side=0))
    assert window.state.images[0].path == IMG1


def test_drop_two_files_sets_both_in_order(qtbot, window):
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG0))
    opened(qtbot, window, lambda: drop(window, [IMG1, IMG0], side=1))
    assert [img.path for img in window.state.images] == [IMG1, IMG0]
    assert window.message_bar.level != "error"
    opened(qtbot, window, lambda: drop(window, [IMG0, IMG1, IMG1], side=1))
    assert [img.path for img in window.state.images] == [IMG0, IMG1]
    assert "3 files dropped: using the first two." in window.message_bar.text()


@pytest.mark.parametrize("name, content", [("notes.txt", b"just some text\n"), ("broken.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 64)])
def test_drop_bad_file_keeps_pair_and_says_why(qtbot, window, tmp_path, name, content):
    bad = tmp_path / name
    bad.write_bytes(content)
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    before = list(window.state.images)
    opened(qtbot, window, lambda: drop(window, [bad], side=1), ok=False)
    assert window.state.images == before  # the very same objects: nothing changed
    assert name in window.message_bar.text() and window.message_bar.level == "error"
    opened(qtbot, window, lambda: drop(window, [IMG1, bad], side=0), ok=False)  # one bad file: neither side changes
    assert window.state.images == before


def test_swap_and_open_dialog(qtbot, window, monkeypatch):
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    window.state.swap()
    assert [img.path for img in window.state.images] == [IMG1, IMG0]
    from PySide6 import QtWidgets

    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(IMG0), "")))
    opened(qtbot, window, lambda: window.open_image_dialog(1))
    assert window.state.images[1].path == IMG0


def test_bad_model_file_keeps_current_model(window, tmp_path, model_path):
    assert window.models.load_file(model_path)
    current = window.state.model
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"not a checkpoint")
    assert not window.models.load_file(bad)
    assert window.state.model is current
    assert "weights.pth" in window.message_bar.text()


# ---------------------------------------------------------------------- background runs


def test_worker_matches_real_pair(matched):
    result = matched.state.result
    assert len(result.matches) > 50
    assert result.matches.keypoints0.max(axis=0)[0] > 400  # original pixels (744 wide), not network pixels
    assert matched.pair_view.drawn_count() == expected_drawn(matched)
    assert "candidates" in matched.filter_panel.counter.text()
    assert not matched.runner.busy and matched.run_status.progress.isHidden()


def test_slider_moves_change_drawn_count_like_the_core_filter(matched):
    panel = matched.filter_panel
    panel.stability.check.setChecked(False)
    seen = set()
    for value in (0.0, 0.5, 1.0, 2.0, 5.0, 12.0, 20.0):
        panel.reciprocity.slider.setValue(value)
        keep = apply_filters(matched.state.result.matches, FilterSettings(reciprocity=value, stability=None))
        assert matched.pair_view.drawn_count() == min(int(keep.sum()), panel.max_drawn()) == expected_drawn(matched)
        assert np.array_equal(matched.state.mask, keep)
        assert panel.counter.text().startswith(f"shown {int(keep.sum()):,} of {len(keep):,}")
        seen.add(int(keep.sum()))
    assert len(seen) > 1  # the slider really moved the cut
    panel.reciprocity.check.setChecked(False)  # every test off: every candidate survives
    assert matched.state.mask.all()
    panel.max_drawn_box.setValue(25)
    assert matched.pair_view.drawn_count() == 25
    panel.ransac.setCurrentIndex(panel.ransac.findData("homography"))
    assert matched.pair_view.drawn_count() == expected_drawn(matched)


def test_filter_changes_never_recompute(matched, qtbot):
    runs = []
    matched.runner.busy_changed.connect(runs.append)
    matched.filter_panel.reciprocity.slider.setValue(7.0)
    matched.filter_panel.distance.check.setChecked(True)
    qtbot.wait(50)
    assert runs == []


def test_compute_setting_starts_a_run_reusing_features(matched, qtbot):
    panel = matched.compute_panel
    assert not panel.skip_flat.isEnabled()  # SIFT points: nothing to skip
    with qtbot.waitSignal(matched.result_shown, timeout=RUN_TIMEOUT_MS):
        panel.keypoints.setCurrentIndex(panel.keypoints.findData("grid"))
    assert matched.state.result.reused_features
    w, h = 744, 496
    whole_grid = len(range(0, 320, 8)) * len(range(0, round(h * 320 / w), 8))
    assert panel.skip_flat.isEnabled() and panel.skip_flat.isChecked()  # on by default: flat pixels left out
    assert 0 < len(matched.state.result.matches) < whole_grid
    with qtbot.waitSignal(matched.result_shown, timeout=RUN_TIMEOUT_MS):
        panel.skip_flat.setChecked(False)
    assert len(matched.state.result.matches) == whole_grid and panel.settings().options.min_texture == 0


def test_align_checkbox_runs_the_alignment_pass_and_says_what_it_found(matched, qtbot):
    assert ComputeSettings().align  # on by default in the window (the fixture turns it off for speed)
    with qtbot.waitSignal(matched.result_shown, timeout=RUN_TIMEOUT_MS):
        matched.compute_panel.align.setChecked(True)
    result = matched.state.result
    assert matched.compute_panel.settings().align and result.reused_features  # image 0's features were kept
    assert result.alignment is not None and result.alignment.kept_first > 0
    assert result.alignment.summary() in matched.statusBar().currentMessage()
    with qtbot.waitSignal(matched.result_shown, timeout=RUN_TIMEOUT_MS):
        matched.compute_panel.align.setChecked(False)
    assert matched.state.result.alignment is None and "Alignment" not in matched.statusBar().currentMessage()


def test_first_pass_is_drawn_while_the_alignment_pass_runs(qtbot, window, tmp_path):
    import cv2

    from ucn_gui.core.resources import models_dir

    rgb = cv2.imread(str(ROOT / "resources/samples/DSC_0410.jpg"))
    rgb = cv2.resize(rgb, (480, round(480 * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    cv2.imwrite(str(tmp_path / "a.png"), rgb)
    cv2.imwrite(str(tmp_path / "b.png"), cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.2), (w, h)))
    window.compute_panel.set_settings(ComputeSettings("cpu", 480, options=MatchOptions(max_keypoints=1000), align=True))
    assert window.models.load_file(models_dir() / "default.safetensors")
    seen = []
    window.runner.preview.connect(lambda r: seen.append(("preview", r, window.statusBar().currentMessage())))
    window.result_shown.connect(lambda: seen.append(("final", window.state.result, "")))
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        window.set_pair(tmp_path / "a.png", tmp_path / "b.png")
    assert [kind for kind, *_ in seen] == ["preview", "final"]
    first, final = seen[0][1], seen[1][1]
    assert first.preview and first.alignment is None and not final.preview
    assert "Matching again with image 1 aligned" in seen[0][2]  # the first pass was drawn, and said what follows
    assert final.alignment.used and final.alignment.kept_first < final.alignment.kept_second
    qtbot.waitUntil(lambda: "Second pass shown" in window.statusBar().currentMessage(), timeout=2000)
    # The alignment view can show the second pass's warp (image 0 -> image 1 there) without RANSAC.
    assert window.state.geometry is None and window.menus.alignment.isEnabled()
    assert np.allclose(window.state.homography(), np.linalg.inv(final.alignment.homography))
    # The export says which pass it holds and by which warp.
    settings = json.loads((window.export_matches(tmp_path / "m.json")).read_text())["settings"]
    assert settings["alignment"].startswith("Second pass shown") and len(settings["alignment_homography"]) == 3
    # A click on image 1 where image 0 sees nothing: said so, not answered with a border pixel.
    assert not window.viewer.query(2, 2, side=1)
    assert "outside what image 0 sees" in window.viewer.info.text()
    assert window.viewer.query(240, 160, side=0)  # inside: answered as usual
    # Esc during the second pass: the first pass it drew goes, the result before the run comes back.
    with qtbot.waitSignal(window.runner.preview, timeout=RUN_TIMEOUT_MS):
        window.menus.rerun.trigger()
    window.cancel()
    assert window.state.result is final and not window.runner.busy


def test_cancel_stops_the_run_and_shows_nothing(qtbot, window, model_path):
    assert window.models.load_file(model_path)
    shown = []
    window.result_shown.connect(lambda: shown.append(1))
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    assert window.runner.busy
    window.cancel()
    assert not window.runner.busy and window.run_status.progress.isHidden()
    qtbot.wait(3000)  # long enough for the run to have finished had it not been cancelled
    assert shown == [] and window.state.result is None


def test_new_request_supersedes_running_one(qtbot, window, model_path):
    assert window.models.load_file(model_path)
    results = []
    window.runner.finished.connect(results.append)
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    window.state.swap()  # supersedes the first run while it is in flight
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.wait(300)
    assert len(results) == 1
    assert results[0].pair.image0.path == IMG1 and window.state.result is results[0]


def test_close_during_run_ends_within_two_seconds(qtbot, window, model_path):
    window.compute_panel.set_settings(ComputeSettings("cpu", 1024))  # a forward pass of seconds: must be interrupted
    assert window.models.load_file(model_path)
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    qtbot.wait(100)
    assert window.runner.busy
    start = time.perf_counter()
    window.close()
    elapsed = time.perf_counter() - start
    print(f"closed in {elapsed:.3f} s")
    assert elapsed < 2.0
    assert not window.runner.running


def test_cuda_out_of_memory_falls_back_to_cpu(qtbot, window, model_path, monkeypatch):
    import torch

    from ucn_gui.ui import worker

    real_run = worker.MatchWorker._run_on

    def fake_run(self, request, device, stop):
        if device.startswith("cuda"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_run(self, request, device, stop)

    monkeypatch.setattr(worker, "choose_device", lambda _name: (torch.device("cuda"), None))
    monkeypatch.setattr(worker.MatchWorker, "_run_on", fake_run)
    assert window.models.load_file(model_path)
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        window.set_pair(IMG0, IMG1)
    assert window.state.result.device == "cpu"
    assert "CPU" in window.message_bar.text()


def test_saved_cuda_choice_without_cuda_runs_on_cpu(qtbot, settings, model_path, monkeypatch):
    """A device saved on a CUDA machine (or a CUDA index that is gone) never blocks a launch."""
    import torch

    from ucn_gui.ui import main_window

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(main_window.zoo, "default_model_path", lambda: None)
    settings.setValue("device", "cuda")
    settings.setValue("max_side", 256)
    win = main_window.MainWindow(settings=settings)
    qtbot.addWidget(win)
    assert win.compute_panel.settings().device == "cuda"  # the saved choice is kept ...
    with qtbot.waitSignal(win.result_shown, timeout=RUN_TIMEOUT_MS):
        win.start([str(IMG0), str(IMG1)], str(model_path))
    assert win.state.result.device == "cpu" and len(win.state.result.matches) > 0  # ... and the run happens on the CPU
    assert "not available" in win.message_bar.text() and "CPU" in win.message_bar.text()
    assert win.message_bar.level == "warning"
    win.close()


# ---------------------------------------------------------------------- looking at matches


def test_hover_shows_scores_of_the_match(matched):
    panel = matched.filter_panel
    panel.reciprocity.check.setChecked(False)
    panel.stability.check.setChecked(False)
    idx = int(matched.state.drawn_indices[0])
    x, y = matched.state.result.matches.keypoints1[idx]
    view = matched.pair_view
    scene_pos = view.vb.mapViewToScene(QtCore.QPointF(x + 0.5 + view.offset1[0], y + 0.5 + view.offset1[1]))
    hovered = []
    view.hovered.connect(hovered.append)
    view.scene().sigMouseMoved.emit(scene_pos)  # what moving the mouse there emits
    picked = hovered[-1]
    assert picked >= 0
    m = matched.state.result.matches
    assert f"reciprocity error {m.reciprocity_error[picked]:.2f} px" in matched.info.text()
    assert f"stability error {m.stability_error[picked]:.2f} px" in matched.info.text()


def test_click_to_query_shows_heat_map_from_cached_features(matched, monkeypatch):
    from ucn_gui.core import matching

    monkeypatch.setattr(matching.PairFeatures, "compute", lambda *a, **k: pytest.fail("query must not recompute"))
    view = matched.pair_view
    view.click_at_image0(300.0, 200.0)
    assert view.has_query() and view.heat_item.isVisible()
    sim, best = similarity_map(matched.state.result.pair, 300.0, 200.0)
    np.testing.assert_allclose(view.heat_item.image, sim)
    assert view.query_points()[1] == best
    assert view.heat_item.mapRectToParent(view.heat_item.boundingRect()).width() == pytest.approx(744)
    assert "nearest neighbour" in matched.info.text()
    matched.cancel()  # Esc with no run clears the query
    assert not view.has_query()


def test_layout_toggles_keep_matches_drawn(matched):
    n = matched.pair_view.drawn_count()
    matched.menus.stacked.setChecked(True)
    assert matched.pair_view.offset1[1] > 496 and matched.pair_view.drawn_count() == n
    before = matched.pair_view.grab().toImage()  # paints every item once
    matched.menus.lines.setChecked(True)
    with_lines = matched.pair_view.grab().toImage()
    matched.menus.gray.setChecked(False)
    in_colour = matched.pair_view.grab().toImage()
    assert matched.pair_view.lines_visible and not matched.pair_view.grayscale
    assert before.size() == with_lines.size() == in_colour.size() and not before.isNull()
    assert with_lines != before and in_colour != with_lines  # each toggle changed what is painted
    assert matched.pair_view.drawn_count() == n


# ---------------------------------------------------------------------- output and settings


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_export_has_cli_columns(matched, tmp_path, suffix):
    matched.filter_panel.reciprocity.slider.setValue(6.0)
    out = matched.export_matches(tmp_path / f"matches{suffix}")
    assert out is not None and out.is_file()
    loaded = load_matches(out)
    expected = match_columns(matched.state.result.matches, matched.state.mask)
    assert set(expected) <= set(loaded)
    for key, value in expected.items():
        np.testing.assert_allclose(loaded[key], value, rtol=1e-5, atol=1e-4 if suffix == ".csv" else 0)
    assert loaded["mask"].sum() == matched.state.mask.sum()


def test_save_picture_at_full_resolution(matched, tmp_path):
    matched.pair_view.click_at_image0(100.0, 100.0)
    out = matched.save_picture(tmp_path / "pic.png")
    image = QtGui.QImage(str(out))
    bounds = matched.pair_view.scene_bounds()
    assert (image.width(), image.height()) == (int(np.ceil(bounds.width())), int(np.ceil(bounds.height())))
    assert image.width() > 2 * 744  # both images at original size side by side


def test_settings_persist_between_launches(qtbot, settings, model_path, monkeypatch):
    from ucn_gui.ui import main_window

    monkeypatch.setattr(main_window.zoo, "default_model_path", lambda: None)
    first = main_window.MainWindow(settings=settings)
    qtbot.addWidget(first)
    first.models.load_file(model_path)  # first: a newly chosen model brings its own thresholds
    first.filter_panel.reciprocity.slider.setValue(2.5)
    first.filter_panel.stability.check.setChecked(False)
    first.compute_panel.set_settings(ComputeSettings("cpu", 512, "fp32", MatchOptions(keypoints="grid", grid_stride=16, min_texture=3e-4),
                                                     align=False))
    opened(qtbot, first, lambda: first.set_pair(IMG0, IMG1))
    first.close()

    second = main_window.MainWindow(settings=settings)
    qtbot.addWidget(second)
    s = second.filter_panel.settings()
    assert s.reciprocity == pytest.approx(2.5) and s.stability is None
    assert second.compute_panel.settings().max_side == 512 and second.compute_panel.settings().options.grid_stride == 16
    assert second.compute_panel.settings().options.min_texture == pytest.approx(3e-4)  # a level given elsewhere is kept
    assert second.compute_panel.settings().precision == "fp32" and not second.compute_panel.settings().align
    assert second.prefs.recent_pairs()[0] == [str(IMG0.resolve()), str(IMG1.resolve())]
    second.start([str(IMG0), str(IMG1)])
    assert second.state.model is not None and second.state.model.path in (model_path.resolve(), model_path)
    second.close()


def test_zoo_model_downloads_in_background_then_loads(qtbot, window, server, tmp_path, monkeypatch):
    import hashlib

    from helpers import open_ucn_style_bytes

    from ucn_gui.core import zoo

    server.payload = open_ucn_style_bytes(tmp_path, "ResUNetBN2F", 16)
    entry = zoo.ModelEntry("test-remote", "served on 127.0.0.1", tmp_path / "cache" / "remote.pth",
                           url=f"http://127.0.0.1:{server.server_address[1]}/remote.pth", architecture="ResUNetBN2F", n_out=16,
                           sha256=hashlib.sha256(server.payload).hexdigest(), size=len(server.payload))
    monkeypatch.setenv("UCN_VIEWER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(zoo, "remote_models", lambda: [entry])
    window.fill_model_menu()
    action = next(a for a in window.menus.model_menu.actions() if a.text().startswith("test-remote"))
    assert "download" in action.text() and not entry.available
    with qtbot.waitSignal(window.models.downloader.finished, timeout=30_000):
        action.trigger()
    assert entry.available and window.state.model is not None and window.state.model.path == entry.path
    window.fill_model_menu()
    assert not any("download" in a.text() for a in window.menus.model_menu.actions() if a.text().startswith("test-remote"))


def test_ransac_runs_once_a_slider_drag_pauses(qtbot, matched, monkeypatch):
    from PySide6 import QtWidgets

    from ucn_gui.ui import match_slot

    panel = matched.filter_panel
    panel.stability.check.setChecked(False)
    panel.reciprocity.slider.setValue(8.0)
    panel.ransac.setCurrentIndex(panel.ransac.findData("fundamental"))  # no drag: exact at once
    exact = matched.state.mask.copy()
    calls = []
    real = match_slot.fit_geometry
    monkeypatch.setattr(match_slot, "fit_geometry", lambda *a: calls.append(1) or real(*a))
    buttons = {"now": QtCore.Qt.MouseButton.LeftButton}
    monkeypatch.setattr(QtWidgets.QApplication, "mouseButtons", staticmethod(lambda: buttons["now"]))
    panel.reciprocity.slider.setValue(3.0)  # while dragging: a preview, no RANSAC
    assert calls == []
    assert not (matched.state.mask & ~exact).any()
    buttons["now"] = QtCore.Qt.MouseButton.NoButton  # released: the pending run happens
    qtbot.waitUntil(lambda: bool(calls), timeout=3000)
    assert np.array_equal(matched.state.mask, apply_filters(matched.state.result.matches, panel.settings()))
    assert matched.pair_view.drawn_count() == expected_drawn(matched)


def test_a_model_brings_its_own_thresholds_once(qtbot, window, settings, tmp_path):
    """The card's default thresholds apply when a model is first chosen; the user's changes then persist."""
    card_model = tmp_path / "carded.safetensors"
    save_model(card_model, build_model("ResUNetBN2F", 16),
               {"name": "carded", "default_filters": {"reciprocity": 1.0, "stability": 2.5, "max_ratio": 0.9}})
    assert window.models.load_file(card_model)
    f = window.filter_panel.settings()
    assert (f.reciprocity, f.stability, f.max_ratio) == (1.0, 2.5, 0.9)
    # Stored at once, not only on a clean close: a crash cannot leave the wrong thresholds behind.
    saved = json.loads(settings.value("filters", "{}", type=str))
    assert (saved["reciprocity"], saved["stability"], saved["max_ratio"]) == (1.0, 2.5, 0.9)
    # The user moves a threshold; loading the same model again keeps it.
    window.filter_panel.set_settings(replace(f, reciprocity=3.0))
    assert window.models.load_file(card_model)
    assert window.filter_panel.settings().reciprocity == 3.0
    # A model without a card's thresholds starts from FilterSettings' defaults.
    plain = tmp_path / "plain.safetensors"
    save_model(plain, build_model("ResUNetBN2F", 16), {"name": "plain"})
    assert window.models.load_file(plain)
    f = window.filter_panel.settings()
    assert (f.reciprocity, f.stability, f.max_ratio) == (4.0, 4.0, None)


# ---------------------------------------------------------------------- speed settings, cancel, huge photos


def test_precision_setting_reaches_the_run(qtbot, window, model_path, monkeypatch):
    from ucn_gui.core import precision

    assert window.models.load_file(model_path)
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    assert window.state.result.precision == precision.resolve_precision("auto", "cpu")
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        window.compute_panel.precision.setCurrentIndex(window.compute_panel.precision.findData("fp32"))
    assert window.state.result.precision == "fp32" and not window.state.result.reused_features
    assert "fp32" in window.statusBar().currentMessage()
    # fp16 cannot run on the CPU: the run goes ahead in what auto picks, and says so.
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        window.compute_panel.precision.setCurrentIndex(window.compute_panel.precision.findData("fp16"))
    assert window.state.result.precision == "fp32"
    assert "fp16 runs on CUDA only" in window.message_bar.text()


def test_cancel_during_every_pixel_run_idles_the_worker_quickly(qtbot, window, model_path):
    """Issue 12: Cancel during 'every pixel' query points left a run going for 160 s."""
    window.compute_panel.set_settings(ComputeSettings("cpu", 512, options=MatchOptions(keypoints="all")))
    assert window.models.load_file(model_path)
    stages = []
    window.runner.progress.connect(lambda stage, _f: stages.append(stage))
    worker_done = []  # when the worker ended the run: > 0 cancelled, -1 finished
    window.runner.settled.connect(lambda _rid, how: worker_done.append(time.perf_counter() if how == "cancelled" else -1.0))
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    qtbot.waitUntil(lambda: "forward search" in stages, timeout=RUN_TIMEOUT_MS)
    qtbot.wait(300)  # well into the search of 175,000 query points
    assert window.runner.busy and stages[-1] == "forward search"
    start = time.perf_counter()
    window.cancel()
    qtbot.waitUntil(lambda: bool(worker_done), timeout=5000)
    print(f"worker idle {worker_done[0] - start:.3f} s after Cancel")
    assert worker_done[0] > 0, "the run finished instead of stopping"
    assert worker_done[0] - start < 0.5
    assert window.state.result is None and window.run_status.progress.isHidden()


def test_photos_decode_off_the_gui_thread(qtbot, window, monkeypatch):
    import threading

    from ucn_gui.ui import loader

    threads = []
    real = loader.open_photo
    monkeypatch.setattr(loader, "open_photo", lambda *a, **k: threads.append(threading.current_thread()) or real(*a, **k))
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    assert len(threads) == 2 and threading.main_thread() not in threads


def test_large_photo_shown_reduced_matched_in_its_own_pixels(qtbot, window, model_path, tmp_path, monkeypatch):
    import cv2

    from ucn_gui.core.image import read_rgb
    from ucn_gui.ui import loader

    # A scaled-down limit so that a 2400 x 1600 photo plays the part of a huge one.
    monkeypatch.setattr(loader, "DISPLAY_SIDE", 400)
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(cv2.imread(str(IMG0)), (2400, 1600), interpolation=cv2.INTER_LINEAR))
    assert read_rgb(big).shape == (1600, 2400, 3)
    assert window.models.load_file(model_path)
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        opened(qtbot, window, lambda: window.set_pair(big, IMG1))
    img = window.state.images[0]
    assert img.original_size == (2400, 1600) and img.rgb.shape == (400, 600, 3)  # decoded at 1/4
    assert window.state.displays[0].shape == (267, 400, 3)
    assert window.pair_view.image_size(0) == (2400, 1600)
    item = window.pair_view.image_items[0]
    assert item.mapRectToParent(item.boundingRect()).width() == pytest.approx(2400)
    kp0 = window.state.result.matches.keypoints0
    assert kp0[:, 0].max() > 1500 and kp0[:, 1].max() > 1000  # the photo's own pixels
    picture = QtGui.QImage(str(window.save_picture(tmp_path / "pic.png")))
    assert picture.width() > 2400 + 744


def test_tens_of_thousands_of_signals_do_not_abort_python(tmp_path):
    """PySide6 6.12.0 on Python 3.11 drops a reference to True on every emit (see ui/pyside_fix)."""
    from ucn_gui.ui import pyside_fix

    script = (
        "import sys\n"
        "if sys.argv[1] == 'fix': import ucn_gui.ui.pyside_fix\n"
        "from PySide6 import QtCore\n"
        "class O(QtCore.QObject):\n"
        "    s = QtCore.Signal(int)\n"
        "o = O()\n"
        "for i in range(40000): o.s.emit(i)\n"
        "print('done')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = lambda how: subprocess.run([sys.executable, "-c", script, how], env=env, capture_output=True, text=True, timeout=120)  # noqa: E731
    fixed = run("fix")
    assert fixed.returncode == 0 and "done" in fixed.stdout, fixed.stderr[-500:]
    if sys.version_info < (3, 12) and pyside_fix.signal_emit_drops_a_reference():
        bare = run("bare")  # the same without the work-around: the bug this guards against
        assert bare.returncode != 0 and "bool_dealloc" in bare.stderr
    # Void Qt methods returned None without a reference the same way (none_dealloc at exit).
    voids = script.replace("for i in range(40000): o.s.emit(i)", "for i in range(40000): o.setObjectName('x')")
    fixed = subprocess.run([sys.executable, "-c", voids, "fix"], env=env, capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 0 and "done" in fixed.stdout, fixed.stderr[-500:]
    if sys.version_info < (3, 12) and pyside_fix.void_call_drops_a_reference():
        bare = subprocess.run([sys.executable, "-c", voids, "bare"], env=env, capture_output=True, text=True, timeout=120)
        assert bare.returncode != 0 and "none_dealloc" in bare.stderr
    # The display-library check runs before Qt may load: it must not pull the fix (and Qt) in.
    probe = "import sys, ucn_gui.ui.system_libs; print('PySide6.QtCore' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip() == "False"


def test_view_draws_the_pyramid_level_the_zoom_needs(qtbot):
    from ucn_gui.ui.pair_view import PairView

    view = PairView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    rgb = np.random.default_rng(0).integers(0, 255, (1500, 2000, 3)).astype(np.uint8)
    view.set_image(0, rgb, (4000, 3000))  # a reduced copy of a 4000 x 3000 photo
    qtbot.waitUntil(lambda: view.shown_level(0).shape[1] < 2000, timeout=3000)  # chosen when painted
    coarse = view.shown_level(0)
    assert coarse.shape[1] < 2000 and coarse.shape[1] >= 500  # about the screen's width, not the whole copy
    item = view.image_items[0]
    assert item.mapRectToParent(item.boundingRect()).width() == pytest.approx(4000)
    view.vb.setRange(QtCore.QRectF(1000, 1000, 200, 150), padding=0)  # zoom far in
    qtbot.waitUntil(lambda: view.shown_level(0).shape == rgb.shape, timeout=3000)
    assert item.mapRectToParent(item.boundingRect()).width() == pytest.approx(4000)
    view.set_grayscale(True)
    shown = view.shown_level(0)
    assert shown.shape == rgb.shape and np.array_equal(shown[..., 0], shown[..., 1])
