"""The centre of the window: message bar, pair view and a line about the match under the cursor,
kept in step with a ViewerState (as napari's QtViewer is with its viewer model).

    viewer = ViewerWidget(state)
    viewer.pair_view.files_dropped.connect(open_dropped)
    viewer.query(x, y)                   # False until the pair is matched

Photos, drawn matches, the highlight and the click-to-query heat map follow the state's
signals; nothing here starts work.
"""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from .pair_view import PairView
from .state import ViewerState
from .status import MessageBar


class ViewerWidget(QtWidgets.QWidget):
    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.message_bar = MessageBar()
        self.pair_view = PairView()
        self.info = QtWidgets.QLabel(self.hint())
        self.info.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 2)
        layout.setSpacing(4)
        for widget, stretch in ((self.message_bar, 0), (self.pair_view, 1), (self.info, 0)):
            layout.addWidget(widget, stretch)
        self._query_text = ""  # the line about the shown click-to-query, while it is shown
        state.images_changed.connect(self._show_images)
        state.result_changed.connect(self._on_result_changed)
        state.mask_changed.connect(self._show_mask)
        self.pair_view.hovered.connect(self.describe_match)
        self.pair_view.match_clicked.connect(self.describe_match)
        self.pair_view.query_cleared.connect(self._on_query_cleared)

    def hint(self) -> str:
        """What the line below the images says when no match is hovered and no query shown."""
        images = self.state.images
        if all(img is None for img in images):
            return "Drop two images here, or use File ▸ Open."
        if any(img is None for img in images):
            return f"Now open or drop the {'right' if images[1] is None else 'left'} image; the pair is matched then."
        if self.state.result is None:
            return "The pair is matched in the background; its matches appear here."
        return "Hover a match to read its scores; click a pixel to see how similar every pixel of the other image is."

    def _show_hint(self) -> None:
        self.info.setText(self._query_text or self.hint())

    def _show_images(self, sides: list[int]) -> None:
        for side in sides:
            photo = self.state.images[side]
            self.pair_view.set_image(side, self.state.displays[side], None if photo is None else photo.original_size)
        self._show_hint()

    def _on_result_changed(self) -> None:
        if self.state.result is None:
            self.pair_view.select(-1)
            self.pair_view.clear_query()
        self._show_hint()

    def _on_query_cleared(self) -> None:
        self._query_text = ""
        self._show_hint()

    def _show_mask(self) -> None:
        self.pair_view.set_matches(*self.state.drawn())

    def describe_match(self, index: int) -> None:
        """Scores of one match (MatchSet index) in the line below the images; -1: back to the hint."""
        if self.state.result is None or index < 0:
            self._show_hint()
            return
        m = self.state.result.matches
        (x0, y0), (x1, y1) = m.keypoints0[index], m.keypoints1[index]
        unit = f"px at {m.network_side}" if m.network_side else "px"
        self.info.setText(
            f"Match {index}: ({x0:.0f}, {y0:.0f}) → ({x1:.0f}, {y1:.0f}) · reciprocity error "
            f"{m.reciprocity_error[index]:.2f} {unit} ({m.reciprocity_error_original[index]:.1f} original px) · "
            f"stability error {m.stability_error[index]:.2f} {unit} ({m.stability_error_original[index]:.1f} original px) · "
            f"descriptor distance {m.descriptor_distance[index]:.3f} · ratio {m.ratio[index]:.3f}"
        )

    def query(self, x: float, y: float) -> bool:
        """Click-to-query: similarity of pixel (x, y) of image 0 over image 1, from cached features.
        False (nothing shown) until the pair is matched."""
        found = self.state.query(x, y)
        if found is None:
            return False
        sim, best = found
        self.pair_view.show_query(x, y, sim, best)
        self._query_text = (
            f"Query ({x:.0f}, {y:.0f}) in image 0 → nearest neighbour ({best[0]:.0f}, {best[1]:.0f}) in image 1, "
            f"similarity {float(sim.max()):.3f} (heat map: descriptor similarity over image 1)"
        )
        self.info.setText(self._query_text)
        return True
