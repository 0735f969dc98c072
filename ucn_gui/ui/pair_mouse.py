"""The pair view's mouse: hover and click pick the nearest drawn match; a click also asks for
a query of the pixel under it (in either image); dropped files go to the side they land on.

A mixin of :class:`PairView` (which owns the signals and the drawn matches); kept apart so
the view's drawing and its input each stay readable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui

HOVER_RADIUS_PX = 8  # how close (screen pixels) the cursor must be to pick a match


class PairMouse:
    # Provided by PairView: vb, photos, _indices, _highlight, _selected, stacked, signals, to_view, ...

    def pick(self, view_xy: tuple[float, float]) -> int:
        """MatchSet index of the drawn match nearest to a view point, -1 if none is close."""
        if len(self._indices) == 0:
            return -1
        px = self.vb.viewPixelSize()
        radius = HOVER_RADIUS_PX * max(px[0], px[1])
        best, best_d = -1, radius
        for pts in self._view_points():
            d = np.hypot(pts[:, 0] - view_xy[0], pts[:, 1] - view_xy[1])
            i = int(np.argmin(d))
            if d[i] <= best_d:
                best, best_d = int(self._indices[i]), float(d[i])
        return best

    def image_at(self, vx: float, vy: float) -> int | None:
        """Which photo a view point lies on (0 or 1), None for the gap around them."""
        for side, layer in enumerate(self.photos):
            rect = layer.rect()
            if rect is not None and rect.left() <= vx < rect.right() and rect.top() <= vy < rect.bottom():
                return side
        return None

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if not self.vb.sceneBoundingRect().contains(scene_pos):
            return
        p = self.vb.mapSceneToView(scene_pos)
        index = self.pick((p.x(), p.y()))
        if index < 0:
            index = self._selected
        if index != self._highlight:
            self.highlight(index)
            self.hovered.emit(index)

    def leaveEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 (Qt API)
        """The cursor left the view (to a menu, say): the hovered match is no longer hovered."""
        if self._highlight != self._selected:
            self.highlight(self._selected)
            self.hovered.emit(self._selected)
        super().leaveEvent(event)

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        p = self.vb.mapSceneToView(event.scenePos())
        self.click_at_view(p.x(), p.y())

    def click_at_view(self, vx: float, vy: float) -> None:
        """What a left click does: select the nearest match; on a photo also query that pixel."""
        index = self.pick((vx, vy))
        self.select(index)
        self.match_clicked.emit(index)
        side = self.image_at(vx, vy)
        if side is not None:
            x, y = np.asarray((vx, vy)) - self.to_view(side, (0.0, 0.0))  # to_view's inverse
            self.query_requested.emit(side, float(x), float(y))

    def click_at_image(self, side: int, x: float, y: float) -> None:
        """Same as a click on pixel (x, y) of image ``side`` (original pixels)."""
        self.click_at_view(*self.to_view(side, (x, y)))

    def click_at_image0(self, x: float, y: float) -> None:
        self.click_at_image(0, x, y)

    # ------------------------------------------------------------------ drag and drop

    def side_at(self, pos: QtCore.QPointF | QtCore.QPoint) -> int:
        """Which image a widget position belongs to: the half it falls in (after layout)."""
        view = self.vb.mapSceneToView(self.mapToScene(QtCore.QPoint(int(pos.x()), int(pos.y()))))
        r0, r1 = self.photos[0].rect(), self.photos[1].rect()
        if r0 is not None and r1 is not None:
            # Nearest image centre decides, so the gap and margins still pick a side.
            d0, d1 = (np.hypot(view.x() - r.center().x(), view.y() - r.center().y()) for r in (r0, r1))
            return int(d1 < d0)
        if self.stacked:
            return int(pos.y() > self.height() / 2)
        return int(pos.x() > self.width() / 2)

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QtGui.QDragMoveEvent) -> None:  # noqa: N802 (Qt API) - the same test while moving
        self.dragEnterEvent(event)

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802 (Qt API)
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.files_dropped.emit(paths, self.side_at(event.position()))
