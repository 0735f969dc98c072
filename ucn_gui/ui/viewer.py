"""The centre of the window: message bar, the pair view(s) and a line about what the mouse points at,
kept in step with a ViewerState (as napari's QtViewer is with its viewer model).

    viewer = ViewerWidget(state)
    viewer.pair_view.files_dropped.connect(open_dropped)
    viewer.query(x, y, side=0)               # False until the pair is matched densely
    viewer.show_alignment(True)              # image 1 warped onto image 0 by the homography

Pane A shows the chosen matcher's result; pane B, below it and only while a second
matcher is chosen, the one it is compared with (zoom linked or not). A click on either
photo queries that pixel in the other photo (dense features) and, with a fundamental
matrix estimated, draws its epipolar line there with the match's distance to it.
Photos, drawn matches, the highlight and the overlays follow the state's signals;
nothing here starts work.
"""
from __future__ import annotations

from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtWidgets

from ucn_gui.core.matching import OutsideView
from ucn_gui.core.two_view import clip_line, epipolar_line, line_distance

from .alignment_view import AlignmentView
from .pair_view import PairView
from .state import ViewerState
from .status import MessageBar


class ViewerWidget(QtWidgets.QWidget):
    notice = QtCore.Signal(str)  # a short status-bar note (e.g. why a click queried nothing)

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.message_bar = MessageBar()
        self.panes = (PairView(), PairView())
        self.pair_view = self.panes[0]
        self.titles = (QtWidgets.QLabel(), QtWidgets.QLabel())
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        for title, view in zip(self.titles, self.panes):
            box = QtWidgets.QWidget()
            column = QtWidgets.QVBoxLayout(box)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(1)
            column.addWidget(title)
            column.addWidget(view, 1)
            title.hide()
            self.splitter.addWidget(box)
        self.splitter.widget(1).hide()
        self.alignment = AlignmentView()
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.splitter)
        self.stack.addWidget(self.alignment)
        self.info = QtWidgets.QLabel(self.hint())
        self.info.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 2)
        layout.setSpacing(4)
        for widget, stretch in ((self.message_bar, 0), (self.stack, 1), (self.info, 0)):
            layout.addWidget(widget, stretch)
        # The shown click's two parts of the info line: its query, and its epipolar line (dropped on
        # its own when the click's pane stops having a fundamental matrix).
        self._click_query = self._click_epipolar = ""
        self._click_pane = 0
        self.linked = True  # panes A and B zoom together (while B is shown)
        state.images_changed.connect(self._show_images)
        state.result_changed.connect(self._on_result_changed)
        state.mask_changed.connect(self._show_mask)
        for pane, view in enumerate(self.panes):
            view.hovered.connect(lambda index, p=pane: self.describe_match(index, p))
            view.match_clicked.connect(lambda index, p=pane: self.describe_match(index, p))
            view.query_requested.connect(lambda side, x, y, p=pane: self.on_click(side, x, y, p))
            view.query_cleared.connect(self._on_query_cleared)

    # ------------------------------------------------------------------ what the line below says

    def hint(self) -> str:
        """What the line below the images says when no match is hovered and no query shown."""
        images = self.state.images
        if all(img is None for img in images):
            return "Drop two images here, or use File ▸ Open."
        if any(img is None for img in images):
            return f"Now open or drop the {'right' if images[1] is None else 'left'} image; the pair is matched then."
        if self.state.result is None:
            return "The pair is matched in the background; its matches appear here."
        return "Hover a match to read its scores; click a pixel of either image to query it in the other."

    def _show_hint(self) -> None:
        self.info.setText(self._query_text or self.hint())

    @property
    def _query_text(self) -> str:
        """The info line about the shown click ('' when none)."""
        return " · ".join(part for part in (self._click_query, self._click_epipolar) if part)

    def _on_query_cleared(self) -> None:
        self._click_query = self._click_epipolar = ""
        self._show_hint()

    def describe_match(self, index: int, pane: int = 0) -> None:
        """Scores of one match (MatchSet index) in the line below the images; -1: back to the hint."""
        result = self.state.slots[pane].result
        if result is None or index < 0:
            self._show_hint()
            return
        m = result.matches
        (x0, y0), (x1, y1) = m.keypoints0[index], m.keypoints1[index]
        text = f"{result.matcher} match {index}: ({x0:.1f}, {y0:.1f}) → ({x1:.1f}, {y1:.1f})"
        if m.has_scores:
            unit = f"px at {m.network_side}" if m.network_side else "px"
            text = (f"Match {index}: ({x0:.1f}, {y0:.1f}) → ({x1:.1f}, {y1:.1f}) · reciprocity error "
                    f"{m.reciprocity_error[index]:.2f} {unit} ({m.reciprocity_error_original[index]:.1f} original px) · "
                    f"stability error {m.stability_error[index]:.2f} {unit} ({m.stability_error_original[index]:.1f} "
                    f"original px) · descriptor distance {m.descriptor_distance[index]:.3f} · ratio {m.ratio[index]:.3f}")
        self.info.setText(text)

    # ------------------------------------------------------------------ following the state

    def _show_images(self, sides: list[int]) -> None:
        for side in sides:
            photo = self.state.images[side]
            for view in self.panes:
                view.set_image(side, self.state.displays[side], None if photo is None else photo.original_size)
        self._show_hint()

    def _on_result_changed(self) -> None:
        if self.state.result is None:
            for view in self.panes:
                view.select(-1)
                view.clear_query()
        comparing = self.state.slots[1].result is not None
        if comparing != self.splitter.widget(1).isVisible():
            self.splitter.widget(1).setVisible(comparing)
            for title in self.titles:
                title.setVisible(comparing)
            self.set_linked_zoom(self.linked)
        self._show_hint()

    def _show_mask(self) -> None:
        for slot, view, title, name in zip(self.state.slots, self.panes, self.titles, "AB"):
            view.set_matches(*slot.drawn(), slot.drawn_inliers)
            if slot.result is not None:
                title.setText(f"<b>{name} · {slot.result.matcher}</b> — {slot.counts()}")
        if self.stack.currentWidget() is self.alignment:
            self._update_alignment()
        self._drop_stale_epipolar_lines()

    def _drop_stale_epipolar_lines(self) -> None:
        """A line drawn from a fundamental matrix goes when that matrix does (RANSAC switched to a
        homography or off, too few matches); the query's own heat map stays."""
        for pane, (view, slot) in enumerate(zip(self.panes, self.state.slots)):
            if _fundamental(slot.geometry) is None and view.has_epipolar():
                view.show_epipolar(1, None)
                if pane == self._click_pane and self._click_epipolar:
                    self._click_epipolar = ""
                    self._show_hint()

    # ------------------------------------------------------------------ clicks: query and epipolar line

    def query(self, x: float, y: float, side: int = 0) -> bool:
        """What a click on pixel (x, y) of image ``side`` does in pane A (see on_click)."""
        return self.on_click(side, x, y, 0)

    def on_click(self, side: int, x: float, y: float, pane: int = 0) -> bool:
        """Click-to-query (similarity of the pixel over the other image, from cached dense features)
        and, with a fundamental matrix, the pixel's epipolar line in the other image. False when
        neither is available (nothing matched yet, or a sparse matcher without RANSAC)."""
        view, slot, other = self.panes[pane], self.state.slots[pane], 1 - side
        query, epipolar, partner = "", "", None
        try:
            found = self.state.query(x, y, side, pane)
        except OutsideView as exc:
            view.clear_query()
            self._click_query, self._click_epipolar, self._click_pane = str(exc), "", pane
            self.info.setText(self._query_text)
            return False
        if found is not None:
            sim, best = found
            view.show_query(x, y, sim, best, side)
            partner = best
            query = (f"Query ({x:.0f}, {y:.0f}) in image {side} → nearest neighbour ({best[0]:.0f}, {best[1]:.0f}) "
                     f"in image {other}, similarity {float(sim.max()):.3f}")
        F = _fundamental(slot.geometry)
        if F is not None:
            if view.selected >= 0:  # the click picked a match: the line of its own point, and its partner
                m = slot.result.matches
                (x, y), partner = (m.keypoints0, m.keypoints1)[side][view.selected], (m.keypoints0, m.keypoints1)[other][view.selected]
                whose = f"match {view.selected}'s point ({x:.0f}, {y:.0f})"
            else:
                whose = f"({x:.0f}, {y:.0f})"
            line = epipolar_line(F, (x, y), side)
            size = self.state.images[other].original_size
            view.show_epipolar(other, clip_line(line, size))
            epipolar = f"epipolar line of {whose} drawn in image {other}"
            if partner is not None:
                epipolar += f": {'its partner' if view.selected >= 0 else 'the nearest neighbour'} lies {line_distance(line, partner):.1f} px from it"
        if not (query or epipolar):
            self.notice.emit("Match the pair with UCN first (click-to-query uses its features), "
                             "or estimate a fundamental matrix to see epipolar lines.")
            return False
        self._click_query, self._click_epipolar, self._click_pane = query, epipolar, pane
        self.info.setText(self._query_text)
        return True

    # ------------------------------------------------------------------ layout

    def set_linked_zoom(self, linked: bool) -> None:
        """Panes A and B zoom and pan together, or each on its own. Linked only while B is shown:
        a hidden pane's empty range would drag A's along."""
        self.linked = linked
        target = self.panes[0].vb if linked and self.splitter.widget(1).isVisibleTo(self) else None
        self.panes[1].vb.setXLink(target)
        self.panes[1].vb.setYLink(target)
        if target is None:
            self.panes[1].reset_zoom()
        else:
            self.panes[0].reset_zoom()

    def show_alignment(self, on: bool) -> None:
        """The alignment view (image 1 warped onto image 0 by the homography) instead of the panes."""
        self.stack.setCurrentWidget(self.alignment if on else self.splitter)
        if on:
            self._update_alignment()

    def _update_alignment(self) -> None:
        sizes = [None if img is None else img.original_size for img in self.state.images]
        self.alignment.set_pair(*self.state.displays, *sizes, self.state.homography())


def _fundamental(geometry) -> np.ndarray | None:
    """The 3 x 3 fundamental matrix of a pane's RANSAC result, or None (no result, a homography, failed)."""
    if geometry is not None and geometry.model == "fundamental" and geometry.matrix is not None:
        return geometry.matrix
    return None
