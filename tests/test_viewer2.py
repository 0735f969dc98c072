"""Issue 14, the viewer's second round: thresholds in network pixels, geometry you can see,
other matchers side by side, no stale or stranded state, layout.

Same set-up as test_ui.py: a tiny random model, the terrace pair at 320 px.
"""
from __future__ import annotations

import numpy as np
import pytest

from ucn_gui.core.match_files import load_matches
from test_ui import IMG0, IMG1, RUN_TIMEOUT_MS, matched, model_path, opened, settings, window  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------------- 1. thresholds in network pixels


def test_thresholds_are_labelled_in_network_pixels_and_exported_in_both_units(matched, tmp_path):
    panel = matched.filter_panel
    m = matched.state.result.matches
    assert m.network_side == 320
    for row in (panel.reciprocity, panel.stability):
        assert "(px at 320)" in row.check.text()
        assert f"{744 / 320:.2f} original px" in row.check.toolTip()
    # The filter compares network pixels: a 1-px threshold keeps errors of up to 1 network pixel.
    panel.stability.check.setChecked(False)
    panel.reciprocity.slider.setValue(1.0)
    assert np.array_equal(matched.state.mask, m.reciprocity_error <= 1.0)
    out = matched.export_matches(tmp_path / "m.npz")
    cols = load_matches(out)
    np.testing.assert_array_equal(cols["reciprocity_error_network_px"], m.reciprocity_error)
    np.testing.assert_array_equal(cols["reciprocity_error_original_px"], m.reciprocity_error_original)
    assert cols["settings"]["network_side"] == 320 and "network_px" in cols["settings"]["error_units"]


# ---------------------------------------------------------------------- 4. no stale or stranded state


def hover_first_match(window) -> int:
    """Move the (synthetic) mouse onto the first drawn match of image 1; returns its index."""
    from PySide6 import QtCore

    view = window.pair_view
    idx = int(window.state.drawn_indices[0])
    x, y = window.state.result.matches.keypoints1[idx]
    view.scene().sigMouseMoved.emit(view.vb.mapViewToScene(QtCore.QPointF(*view.to_view(1, (x, y)))))
    return idx


def test_each_message_leaves_with_its_state(qtbot, window, model_path, tmp_path):
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    assert "No model loaded yet" in window.message_bar.text()
    assert "Drop two images here" not in window.info.text()  # the hint follows the state
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        assert window.models.load_file(model_path)
    assert window.message_bar.text() == ""  # the model arrived: its notice left
    # A failed model load, then a successful run: the red bar is history.
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"nope")
    assert not window.models.load_file(bad)
    assert "Could not load the model" in window.message_bar.text() and window.message_bar.level == "error"
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        window.request_match()
    assert window.message_bar.text() == ""
    # The hover line belongs to the hovered match: it leaves with the cursor and with the result.
    window.filter_panel.reciprocity.check.setChecked(False)
    window.filter_panel.stability.check.setChecked(False)
    idx = hover_first_match(window)
    assert window.info.text().startswith(f"Match {idx}:")
    from PySide6 import QtCore

    window.pair_view.leaveEvent(QtCore.QEvent(QtCore.QEvent.Type.Leave))  # to the menu bar, say
    assert not window.info.text().startswith("Match") and "Hover a match" in window.info.text()
    hover_first_match(window)
    window.state.swap()
    assert not window.info.text().startswith("Match")


def test_no_model_warning_while_a_model_is_on_its_way(qtbot, window, monkeypatch):
    from ucn_gui.ui import download

    monkeypatch.setattr(download.ModelDownloader, "busy", property(lambda self: True))
    window.show_message("Downloading tiny from http://127.0.0.1/ …", "info", "model")
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    assert window.message_bar.text().startswith("Downloading tiny")
    assert "No model loaded yet" not in window.statusBar().currentMessage()


def test_one_side_starts_no_run_and_the_last_pair_reopens(qtbot, settings, model_path, monkeypatch):
    from ucn_gui.ui import main_window

    monkeypatch.setattr(main_window.zoo, "default_model_path", lambda: None)
    first = main_window.MainWindow(settings=settings)
    qtbot.addWidget(first)
    assert first.models.load_file(model_path)
    opened(qtbot, first, lambda: first.open_images({0: IMG1}))
    assert not first.runner.busy and first.prefs.recent_pairs() == []  # half a pair: no run, no recent pair
    opened(qtbot, first, lambda: first.open_images({1: IMG0}))
    assert first.runner.busy and first.prefs.recent_pairs()[0] == [str(IMG1.resolve()), str(IMG0.resolve())]
    first.close()
    second = main_window.MainWindow(settings=settings)  # launch without paths: the last pair, not the samples
    qtbot.addWidget(second)
    assert second.menus.reopen_last.isChecked()
    opened(qtbot, second, lambda: second.start())
    qtbot.waitUntil(lambda: all(second.state.images), timeout=RUN_TIMEOUT_MS)
    assert [p.path.name for p in second.state.images] == [IMG1.name, IMG0.name]
    second.menus.reopen_last.setChecked(False)
    second.close()
    third = main_window.MainWindow(settings=settings)
    qtbot.addWidget(third)
    opened(qtbot, third, lambda: third.start())
    assert third.state.images[0].path.name == "DSC_0410.jpg"
    third.close()


def test_tiny_images_are_refused_and_transparency_is_told_once(qtbot, window, tmp_path):
    import cv2

    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    before = list(window.state.images)
    dot = tmp_path / "dot.png"
    cv2.imwrite(str(dot), np.zeros((1, 1, 3), np.uint8))
    opened(qtbot, window, lambda: window.open_images({1: dot}), ok=False)
    assert window.state.images == before
    assert "dot.png: 1x1 px is too small to match" in window.message_bar.text()
    logo = tmp_path / "logo.png"
    bgr = cv2.imread(str(IMG1))
    alpha = np.full(bgr.shape[:2], 255, np.uint8)
    alpha[:100] = 0
    cv2.imwrite(str(logo), np.dstack([bgr, alpha]))
    opened(qtbot, window, lambda: window.open_images({1: logo}))
    assert "logo.png: transparent pixels were laid over grey" in window.message_bar.text()
    assert (window.state.images[1].rgb[:100] == 128).all()
    opened(qtbot, window, lambda: window.open_images({0: logo}))
    assert "transparent" not in window.message_bar.text()  # told once


def test_a_missing_path_on_the_command_line_keeps_the_other_image(qtbot, window, tmp_path):
    missing = tmp_path / "missing.jpg"
    window.start([str(IMG0), str(missing)])
    qtbot.waitUntil(lambda: window.state.images[0] is not None and not window.loader.busy, timeout=RUN_TIMEOUT_MS)
    assert window.state.images[0].path == IMG0 and window.state.images[1] is None
    assert "missing.jpg" in window.message_bar.text() and window.message_bar.level == "error"
    assert not window.runner.busy


def test_export_adds_the_suffix_asks_for_a_folder_and_carries_the_settings(matched, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    target = tmp_path / "new" / "matches"  # no suffix, in a folder that does not exist
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "CSV (*.csv)")))
    answers = []
    no, yes = QtWidgets.QMessageBox.StandardButton.No, QtWidgets.QMessageBox.StandardButton.Yes
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(lambda *a, **k: answers.pop(0)))
    answers.append(no)
    assert matched.export_matches() is None
    assert not target.parent.exists() and "does not exist" in matched.message_bar.text()
    answers.append(yes)
    out = matched.export_matches()
    assert out == target.with_suffix(".csv") and out.is_file()
    s = load_matches(out)["settings"]
    assert s["filters"]["reciprocity"] == matched.filter_panel.settings().reciprocity
    assert s["model"].endswith("tiny.safetensors") and s["precision"] == matched.state.result.precision
    assert s["network_side"] == 320 and "network_px" in s["error_units"]
    json_out = matched.export_matches(tmp_path / "m.json")
    assert load_matches(json_out)["settings"]["filters"] == s["filters"]


def test_an_extreme_max_side_is_kept_for_later_launches_only_when_confirmed(qtbot, settings, monkeypatch):
    from ucn_gui.core.settings import ComputeSettings
    from ucn_gui.ui import main_window

    monkeypatch.setattr(main_window.zoo, "default_model_path", lambda: None)
    for confirm, expected in ((False, 640), (True, 6000)):
        win = main_window.MainWindow(settings=settings)
        qtbot.addWidget(win)
        win.compute_panel.set_settings(ComputeSettings("cpu", 640))
        win.compute_panel.max_side.setValue(6000)
        qtbot.waitUntil(lambda: "6000 px" in win.message_bar.text(), timeout=3000)
        if confirm:
            win.message_bar.action_button.click()
        win.close()
        later = main_window.MainWindow(settings=settings)  # the next launch
        qtbot.addWidget(later)
        assert later.compute_panel.settings().max_side == expected
        later.close()
