"""The two images with their correspondences, in one pyqtgraph ViewBox.

    view = PairView()
    view.set_image(0, rgb0); view.set_image(1, rgb1)
    view.set_matches(kp0, kp1, indices)       # original pixels; indices into the MatchSet

Both images live in one view coordinate system (image 1 shifted by ``offset1``), so
lines between them are plain segments and zoom/pan act on the pair. Drawing uses a
fixed handful of items (dots, lines, highlight, heat map), never one per match.
Signals carry MatchSet indices or original-pixel coordinates, never view coords.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyqtgraph as pg
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtGui, QtWidgets

from .colors import color_index
from .items import DotsItem, LinesItem

HOVER_RADIUS_PX = 8  # how close (screen pixels) the cursor must be to pick a match


class PairView(pg.GraphicsLayoutWidget):
    files_dropped = QtCore.Signal(list, int)  # paths, side the drop landed on (0 or 1)
    hovered = QtCore.Signal(int)  # MatchSet index under the cursor, -1 for none
    match_clicked = QtCore.Signal(int)  # MatchSet index clicked (-1: clicked away from matches)
    query_requested = QtCore.Signal(float, float)  # click on image 0, original pixels

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("#202124")
        self.setAcceptDrops(True)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.vb: pg.ViewBox = self.addViewBox()
        self.vb.setAspectLocked(True)
        self.vb.invertY(True)
        self.vb.setMenuEnabled(False)

        self._rgb: list[np.ndarray | None] = [None, None]
        self._sizes: list[tuple[int, int] | None] = [None, None]  # (width, height) in the photo's own pixels
        self._shown: list[np.ndarray | None] = [None, None]  # what the image items display (finest level)
        # Each shown image halved again and again (cv2, INTER_AREA); the item gets the coarsest
        # level still as fine as the screen, chosen again when the zoom changes. pyqtgraph's own
        # auto-downsampling (numpy means at every zoom step) took 110-375 ms per paint on the
        # GUI thread for a 2-12 MP photo.
        self._levels: list[list[np.ndarray]] = [[], []]
        self._level_shown = [-1, -1]
        self.grayscale = False
        self.stacked = False
        self.lines_visible = False
        self.offset1 = np.zeros(2)  # where image 1's origin sits in view coordinates

        self.image_items = [pg.ImageItem(axisOrder="row-major"), pg.ImageItem(axisOrder="row-major")]
        for item in self.image_items:
            self.vb.addItem(item)
        self.vb.sigTransformChanged.connect(self._choose_levels)
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        # Inferno with an alpha ramp: dissimilar pixels stay see-through, so the photo
        # shows where the descriptor is NOT similar and the heat where it is.
        lut = pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=True)
        lut[:, 3] = (np.linspace(0.0, 1.0, 256) ** 1.5 * 235).astype(np.uint8)
        self.heat_item.setLookupTable(lut)
        self.heat_item.setZValue(5)
        self.heat_item.hide()
        self.vb.addItem(self.heat_item)
        self.lines_item = LinesItem()
        self.lines_item.setZValue(10)
        self.vb.addItem(self.lines_item)
        self.dots_item = DotsItem()
        self.dots_item.setZValue(20)
        self.vb.addItem(self.dots_item)
        # Highlight of the hovered / selected match and the click-to-query markers:
        # tiny items with a single pen, redrawn on demand.
        self.highlight_line = pg.PlotDataItem(pen=pg.mkPen("w", width=2))
        self.highlight_dots = pg.ScatterPlotItem(size=16, pen=pg.mkPen("w", width=2.5), brush=None, pxMode=True)
        self.query_marks = pg.ScatterPlotItem(size=20, symbol="+", pen=pg.mkPen("#00ff88", width=2.5), brush=None)
        for z, item in ((30, self.highlight_line), (31, self.highlight_dots), (32, self.query_marks)):
            item.setZValue(z)
            self.vb.addItem(item)

        # Drawn matches: original-pixel keypoints and their MatchSet indices.
        self._kp0 = np.zeros((0, 2), np.float32)
        self._kp1 = np.zeros((0, 2), np.float32)
        self._indices = np.zeros(0, np.int64)
        self._highlight = -1  # MatchSet index
        self._selected = -1
        self._query: tuple[float, float, np.ndarray, tuple[float, float]] | None = None

        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    # ------------------------------------------------------------------ images

    def set_image(self, side: int, rgb: np.ndarray | None, original_size: tuple[int, int] | None = None) -> None:
        """H x W x 3 uint8 (None clears that side). original_size: (width, height) of the photo
        when ``rgb`` is a reduced copy; it is drawn stretched to that size, so that all view
        coordinates stay in the photo's own pixels."""
        self._rgb[side] = rgb
        self._sizes[side] = None if rgb is None else tuple(original_size or (rgb.shape[1], rgb.shape[0]))
        self._refresh_image(side)
        self._relayout()

    def image_size(self, side: int) -> tuple[int, int] | None:
        """(width, height) of that side's photo in its own pixels."""
        return self._sizes[side]

    def set_grayscale(self, on: bool) -> None:
        self.grayscale = on
        for side in (0, 1):
            self._refresh_image(side)

    def set_stacked(self, on: bool) -> None:
        self.stacked = on
        self._relayout()

    def set_lines_visible(self, on: bool) -> None:
        self.lines_visible = on
        self._redraw_matches()

    def _refresh_image(self, side: int) -> None:
        rgb = self._rgb[side]
        item = self.image_items[side]
        if rgb is None:
            self._shown[side] = None
            self._levels[side] = []
            self._level_shown[side] = -1
            item.clear()
            return
        shown = rgb
        if self.grayscale:  # the seed's look: grey photos make the coloured dots stand out
            shown = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        self._shown[side] = shown
        levels = [shown]
        while max(levels[-1].shape[:2]) > 512:
            h, w = levels[-1].shape[:2]
            levels.append(cv2.resize(levels[-1], ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA))
        self._levels[side] = levels
        self._level_shown[side] = -1
        self._choose_level(side)

    def _choose_levels(self, *_args) -> None:
        for side in (0, 1):
            self._choose_level(side)

    def _choose_level(self, side: int) -> None:
        """Show the coarsest pyramid level that still has a pixel per screen pixel."""
        levels, size = self._levels[side], self._sizes[side]
        if not levels or size is None:
            return
        pixel = self.vb.viewPixelSize()[0]  # view units (photo pixels) per screen pixel
        span = size[0] / pixel if pixel > 0 else float("inf")  # screen pixels across the photo
        level = 0
        while level + 1 < len(levels) and levels[level + 1].shape[1] >= span:
            level += 1
        if level != self._level_shown[side]:
            self._level_shown[side] = level
            self.image_items[side].setImage(levels[level], levels=(0, 255), autoLevels=False)
            self._place_image(side)

    def shown_level(self, side: int) -> np.ndarray | None:
        """The array the image item of that side draws now."""
        level = self._level_shown[side]
        return self._levels[side][level] if level >= 0 else None

    def _place_image(self, side: int) -> None:
        """Stretch the shown copy over the photo's own pixels, at its place in the view."""
        shown, size = self.shown_level(side), self._sizes[side]
        if shown is None or size is None:
            return
        off = self.offset1 if side == 1 else (0.0, 0.0)
        self.image_items[side].setRect(QtCore.QRectF(float(off[0]), float(off[1]), float(size[0]), float(size[1])))

    def _relayout(self) -> None:
        """Place image 1 beside (or below) image 0, centred on the other axis."""
        s0, s1 = self.image_size(0), self.image_size(1)
        w0, h0 = s0 or (0, 0)
        w1, h1 = s1 or (0, 0)
        gap = 0.03 * max(w0, h0, w1, h1, 1)
        if s0 is None:
            self.offset1 = np.zeros(2)
        elif self.stacked:
            self.offset1 = np.array([(w0 - w1) / 2.0, h0 + gap])
        else:
            self.offset1 = np.array([w0 + gap, (h0 - h1) / 2.0])
        for side in (0, 1):
            self._place_image(side)
        bounds = self.scene_bounds()
        self.dots_item.set_bounds(bounds)
        self.lines_item.set_bounds(bounds)
        self._place_heat()
        self._redraw_matches()
        self._redraw_query()
        self._redraw_highlight()
        self.reset_zoom()

    def scene_bounds(self) -> QtCore.QRectF:
        """Union of both images in view coordinates."""
        rect = QtCore.QRectF()
        for side in (0, 1):
            size = self.image_size(side)
            if size is None:
                continue
            off = self.offset1 if side == 1 else (0.0, 0.0)
            rect = rect.united(QtCore.QRectF(off[0], off[1], size[0], size[1]))
        return rect

    def reset_zoom(self) -> None:
        bounds = self.scene_bounds()
        if not bounds.isEmpty():
            self.vb.setRange(rect=bounds, padding=0.02)

    # ------------------------------------------------------------------ matches

    def set_matches(self, kp0: np.ndarray, kp1: np.ndarray, indices: np.ndarray) -> None:
        """The matches to draw: N x 2 original pixels each, and their MatchSet indices."""
        self._kp0 = np.asarray(kp0, np.float32).reshape(-1, 2)
        self._kp1 = np.asarray(kp1, np.float32).reshape(-1, 2)
        self._indices = np.asarray(indices, np.int64)
        self._redraw_matches()
        if self._highlight >= 0 and not np.any(self._indices == self._highlight):
            self._highlight = -1
            self._redraw_highlight()

    def drawn_count(self) -> int:
        return len(self._indices)

    def _view_points(self) -> tuple[np.ndarray, np.ndarray]:
        # +0.5: the core's (x, y) is a pixel index; ImageItem pixel x spans [x, x+1].
        v0 = self._kp0.astype(np.float64) + 0.5
        v1 = self._kp1.astype(np.float64) + 0.5 + self.offset1
        return v0, v1

    def _redraw_matches(self) -> None:
        size0 = self.image_size(0)
        if size0 is None or len(self._kp0) == 0:
            self.dots_item.set_points(np.zeros((0, 2)), np.zeros(0, np.uint8))
            self.lines_item.set_segments(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, np.uint8))
            return
        v0, v1 = self._view_points()
        cidx = color_index(self._kp0, *size0)
        self.dots_item.set_points(np.concatenate([v0, v1]), np.concatenate([cidx, cidx]))
        if self.lines_visible:
            self.lines_item.set_segments(v0, v1, cidx)
        else:
            self.lines_item.set_segments(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, np.uint8))

    # ------------------------------------------------------------------ highlight

    def highlight(self, index: int) -> None:
        """Mark one match (MatchSet index; -1 clears) in both images."""
        self._highlight = index
        self._redraw_highlight()

    def select(self, index: int) -> None:
        """A sticky highlight that survives hovering elsewhere (-1 clears)."""
        self._selected = index
        self.highlight(index)

    def _position_of(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        hits = np.flatnonzero(self._indices == index)
        if index < 0 or len(hits) == 0:
            return None
        v0, v1 = self._view_points()
        return v0[hits[0]], v1[hits[0]]

    def _redraw_highlight(self) -> None:
        pos = self._position_of(self._highlight)
        if pos is None:
            self.highlight_dots.setData([], [])
            self.highlight_line.setData([], [])
            return
        p, q = pos
        self.highlight_dots.setData([p[0], q[0]], [p[1], q[1]])
        self.highlight_line.setData([p[0], q[0]], [p[1], q[1]])

    def pick(self, view_xy: tuple[float, float]) -> int:
        """MatchSet index of the drawn match nearest to a view point, -1 if none is close."""
        if len(self._indices) == 0:
            return -1
        px = self.vb.viewPixelSize()
        radius = HOVER_RADIUS_PX * max(px[0], px[1])
        v0, v1 = self._view_points()
        best, best_d = -1, radius
        for pts in (v0, v1):
            d = np.hypot(pts[:, 0] - view_xy[0], pts[:, 1] - view_xy[1])
            i = int(np.argmin(d))
            if d[i] <= best_d:
                best, best_d = int(self._indices[i]), float(d[i])
        return best

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

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        p = self.vb.mapSceneToView(event.scenePos())
        self.click_at_view(p.x(), p.y())

    def click_at_view(self, vx: float, vy: float) -> None:
        """What a left click does: select the nearest match; on image 0 also query the pixel."""
        index = self.pick((vx, vy))
        self.select(index)
        self.match_clicked.emit(index)
        size0 = self.image_size(0)
        if size0 is not None and 0 <= vx < size0[0] and 0 <= vy < size0[1]:
            self.query_requested.emit(vx - 0.5, vy - 0.5)

    def click_at_image0(self, x: float, y: float) -> None:
        """Same as a click on pixel (x, y) of image 0 (original pixels)."""
        self.click_at_view(x + 0.5, y + 0.5)

    # ------------------------------------------------------------------ click-to-query

    def show_query(self, x0: float, y0: float, similarity: np.ndarray, best: tuple[float, float]) -> None:
        """Heat map of descriptor similarity over image 1 and markers at the query and its best match.

        similarity: h1 x w1 at the network resolution; stretched over image 1's original size.
        """
        self._query = (x0, y0, similarity, best)
        # From the median up: half of image 1 is see-through whatever the model's range is.
        lo, hi = float(np.median(similarity)), float(similarity.max())
        self.heat_item.setImage(similarity, autoLevels=False, levels=(lo, max(hi, lo + 1e-6)))
        self.heat_item.show()
        self._place_heat()
        self._redraw_query()

    def clear_query(self) -> None:
        self._query = None
        self.heat_item.hide()
        self._redraw_query()

    def has_query(self) -> bool:
        return self._query is not None

    def _place_heat(self) -> None:
        size1 = self.image_size(1)
        if size1 is not None:
            self.heat_item.setRect(QtCore.QRectF(self.offset1[0], self.offset1[1], size1[0], size1[1]))

    def _redraw_query(self) -> None:
        if self._query is None:
            self.query_marks.setData([], [])
            return
        x0, y0, _, (x1, y1) = self._query
        self.query_marks.setData([x0 + 0.5, x1 + 0.5 + self.offset1[0]], [y0 + 0.5, y1 + 0.5 + self.offset1[1]])

    # ------------------------------------------------------------------ drag and drop

    def side_at(self, pos: QtCore.QPointF | QtCore.QPoint) -> int:
        """Which image a widget position belongs to: the half it falls in (after layout)."""
        scene = self.mapToScene(QtCore.QPoint(int(pos.x()), int(pos.y())))
        view = self.vb.mapSceneToView(scene)
        size0 = self.image_size(0)
        if size0 is not None and self.image_size(1) is not None:
            # Nearest image centre decides, so the gap and margins still pick a side.
            c0 = np.array([size0[0] / 2, size0[1] / 2])
            w1, h1 = self.image_size(1)
            c1 = self.offset1 + (w1 / 2, h1 / 2)
            v = np.array([view.x(), view.y()])
            return int(np.linalg.norm(v - c1) < np.linalg.norm(v - c0))
        if self.stacked:
            return int(pos.y() > self.height() / 2)
        return int(pos.x() > self.width() / 2)

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QtGui.QDragMoveEvent) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802 (Qt API)
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.files_dropped.emit(paths, self.side_at(event.position()))

    # ------------------------------------------------------------------ export

    def render_full_resolution(self) -> QtGui.QImage:
        """The current picture (images, heat map, lines, dots, markers) at full image resolution."""
        from .export import render_scene  # local: export needs nothing from here at import time

        return render_scene(self)
