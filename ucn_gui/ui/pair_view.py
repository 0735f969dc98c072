"""The two images with their correspondences, in one pyqtgraph ViewBox.

    view = PairView()
    view.set_image(0, rgb0); view.set_image(1, rgb1)
    view.set_matches(kp0, kp1, indices)       # original pixels; indices into the MatchSet
    view.set_matches(kp0, kp1, indices, inliers)   # coloured by RANSAC's verdict instead of position
    view.show_query(0, (x, y), similarity, best); view.show_epipolar(1, ends)
    image = view.render_picture()              # for "Save picture": full resolution, off screen

Both images live in one view coordinate system (image 1 shifted by ``offset1``), so
lines between them are plain segments and zoom/pan act on the pair; ``to_view`` is the
one mapping from a photo's pixels to it. Drawing uses a fixed handful of items (photos,
dots, lines, highlight, heat map, epipolar line), never one per match. Signals carry
MatchSet indices or original-pixel coordinates, never view coords. The mouse and drops
are handled in ``pair_mouse``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore, QtGui, QtWidgets

from . import picture
from .colors import color_index, verdict_index
from .items import DotsItem, LinesItem
from .overlays import EpipolarOverlay, Highlight, QueryOverlay
from .pair_mouse import PairMouse
from .photo_layer import PhotoLayer


class PairView(PairMouse, pg.GraphicsLayoutWidget):
    files_dropped = QtCore.Signal(list, int)  # paths, side the drop landed on (0 or 1)
    hovered = QtCore.Signal(int)  # MatchSet index under the cursor, -1 for none
    match_clicked = QtCore.Signal(int)  # MatchSet index clicked (-1: clicked away from matches)
    query_requested = QtCore.Signal(int, float, float)  # a click on a photo: side, original pixels
    query_cleared = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(picture.BACKGROUND)
        self.setAcceptDrops(True)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.vb: pg.ViewBox = self.addViewBox()
        self.vb.setAspectLocked(True)
        self.vb.invertY(True)
        self.vb.setMenuEnabled(False)

        self.grayscale = False
        self.stacked = False
        self.lines_visible = False
        self.offset1 = np.zeros(2)  # where image 1's origin sits in view coordinates

        self.photos = [PhotoLayer(), PhotoLayer()]
        self.image_items = [layer.item for layer in self.photos]
        self.vb.sigTransformChanged.connect(self._choose_levels)
        self.lines_item = LinesItem()
        self.lines_item.setZValue(10)
        self.dots_item = DotsItem()
        self.dots_item.setZValue(20)
        self.highlight_overlay = Highlight()
        self.query_overlay = QueryOverlay()
        self.heat_item = self.query_overlay.heat_item
        self.epipolar_overlay = EpipolarOverlay()
        for item in (*self.image_items, self.lines_item, self.dots_item, *self.highlight_overlay.items,
                     *self.query_overlay.items, *self.epipolar_overlay.items):
            self.vb.addItem(item)

        # Drawn matches: original-pixel keypoints and their MatchSet indices.
        self._kp0 = np.zeros((0, 2), np.float32)
        self._kp1 = np.zeros((0, 2), np.float32)
        self._indices = np.zeros(0, np.int64)
        self._inliers: np.ndarray | None = None  # per drawn match, when coloured by RANSAC's verdict
        self._highlight = -1  # MatchSet index
        self._selected = -1

        self.fitted = True  # the photos fill the canvas; stays so on resizes until the user zooms or pans
        self.vb.sigRangeChangedManually.connect(self._on_user_zoom)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    # ------------------------------------------------------------------ images and layout

    def set_image(self, side: int, rgb: np.ndarray | None, original_size: tuple[int, int] | None = None) -> None:
        """H x W x 3 uint8 (None clears that side). original_size: (width, height) of the photo
        when ``rgb`` is a reduced copy; it is drawn stretched to that size, so that all view
        coordinates stay in the photo's own pixels."""
        self.photos[side].set_photo(rgb, original_size)
        self._choose_level(side)
        self._relayout()

    def image_size(self, side: int) -> tuple[int, int] | None:
        """(width, height) of that side's photo in its own pixels."""
        return self.photos[side].size

    def set_grayscale(self, on: bool) -> None:
        self.grayscale = on
        for side in (0, 1):
            self.photos[side].set_grayscale(on)
            self._choose_level(side)

    def set_stacked(self, on: bool) -> None:
        self.stacked = on
        self._relayout()

    def set_lines_visible(self, on: bool) -> None:
        self.lines_visible = on
        self._redraw_matches()

    def _choose_levels(self, *_args) -> None:
        for side in (0, 1):
            self._choose_level(side)

    def _choose_level(self, side: int) -> None:
        self.photos[side].choose_level(self.vb.viewPixelSize()[0])

    def shown_level(self, side: int) -> np.ndarray | None:
        """The array the image item of that side draws now."""
        return self.photos[side].shown_level()

    def to_view(self, side: int, xy: np.ndarray | tuple[float, float]) -> np.ndarray:
        """N x 2 (or one) pixel (x, y) of that side's photo -> view coordinates of the pixel centre."""
        origin = self.offset1 if side == 1 else np.zeros(2)
        # +0.5: the core's (x, y) is a pixel index; the image item's pixel x spans [x, x+1].
        return np.asarray(xy, np.float64) + 0.5 + origin

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
        self.photos[0].place((0.0, 0.0))
        self.photos[1].place(tuple(self.offset1))
        bounds = self.scene_bounds()
        self.dots_item.set_bounds(bounds)
        self.lines_item.set_bounds(bounds)
        self._place_overlays()
        self._redraw_matches()
        self._redraw_highlight()
        self.reset_zoom()

    def _place_overlays(self) -> None:
        self.query_overlay.place(lambda side: self.photos[side].rect(), self.to_view)
        self.epipolar_overlay.place(self.to_view)

    def scene_bounds(self) -> QtCore.QRectF:
        """Union of both images in view coordinates."""
        rect = QtCore.QRectF()
        for layer in self.photos:
            if layer.rect() is not None:
                rect = rect.united(layer.rect())
        return rect

    def reset_zoom(self) -> None:
        """Fit both photos into the canvas (and keep them fitted when the canvas changes size)."""
        self.fitted = True
        bounds = self.scene_bounds()
        if not bounds.isEmpty():
            self.vb.setRange(rect=bounds, padding=0.02)

    def _on_user_zoom(self, *_args) -> None:
        self.fitted = False

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if getattr(self, "fitted", False):  # pyqtgraph resizes once inside __init__, before our attributes
            self.reset_zoom()

    # ------------------------------------------------------------------ matches

    def set_matches(self, kp0: np.ndarray, kp1: np.ndarray, indices: np.ndarray, inliers: np.ndarray | None = None) -> None:
        """The matches to draw: N x 2 original pixels each, and their MatchSet indices. With
        ``inliers`` (N bool) they are coloured by RANSAC's verdict, else by position (jet)."""
        self._kp0 = np.asarray(kp0, np.float32).reshape(-1, 2)
        self._kp1 = np.asarray(kp1, np.float32).reshape(-1, 2)
        self._indices = np.asarray(indices, np.int64)
        self._inliers = None if inliers is None else np.asarray(inliers, bool)
        self._redraw_matches()
        if self._highlight >= 0 and not np.any(self._indices == self._highlight):
            self._highlight = -1
            self._redraw_highlight()

    def drawn_count(self) -> int:
        return len(self._indices)

    def _view_points(self) -> tuple[np.ndarray, np.ndarray]:
        return self.to_view(0, self._kp0), self.to_view(1, self._kp1)

    def _redraw_matches(self) -> None:
        size0 = self.image_size(0)
        empty = np.zeros((0, 2))
        if size0 is None or len(self._kp0) == 0:
            self.dots_item.set_points(empty, np.zeros(0, np.uint8))
            self.lines_item.set_segments(empty, empty, np.zeros(0, np.uint8))
            return
        v0, v1 = self._view_points()
        cidx = color_index(self._kp0, *size0) if self._inliers is None else verdict_index(self._inliers)
        self.dots_item.set_points(np.concatenate([v0, v1]), np.concatenate([cidx, cidx]))
        if self.lines_visible:
            self.lines_item.set_segments(v0, v1, cidx)
        else:
            self.lines_item.set_segments(empty, empty, np.zeros(0, np.uint8))

    # ------------------------------------------------------------------ hover and click

    def highlight(self, index: int) -> None:
        """Mark one match (MatchSet index; -1 clears) in both images."""
        self._highlight = index
        self._redraw_highlight()

    def select(self, index: int) -> None:
        """A sticky highlight that survives hovering elsewhere (-1 clears)."""
        self._selected = index
        self.highlight(index)

    @property
    def selected(self) -> int:
        """MatchSet index of the clicked match, -1 for none."""
        return self._selected

    def _redraw_highlight(self) -> None:
        hits = np.flatnonzero(self._indices == self._highlight)
        if self._highlight < 0 or len(hits) == 0:
            self.highlight_overlay.show(None)
            return
        i = hits[0]
        self.highlight_overlay.show((self.to_view(0, self._kp0[i]), self.to_view(1, self._kp1[i])))

    # ------------------------------------------------------------------ click-to-query

    def show_query(self, x: float, y: float, similarity: np.ndarray, best: tuple[float, float], side: int = 0) -> None:
        """Heat map of descriptor similarity over the other image (at the network resolution,
        stretched over the photo) and markers at the query pixel of image ``side`` and its best match."""
        self.query_overlay.show((x, y), similarity, best, side)
        self._place_overlays()

    def show_epipolar(self, side: int, ends: tuple[np.ndarray, np.ndarray] | None) -> None:
        """An epipolar line across image ``side`` (its two ends in that image's pixels; None: none)."""
        self.epipolar_overlay.show(side, ends)
        self._place_overlays()

    def has_epipolar(self) -> bool:
        return self.epipolar_overlay.ends is not None

    def clear_query(self) -> None:
        self.query_overlay.clear()
        self.epipolar_overlay.show(1, None)
        self._place_overlays()
        self.query_cleared.emit()

    def has_query(self) -> bool:
        return self.query_overlay.points is not None

    def query_points(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The shown query: its pixel and the best match in the other image (original pixels)."""
        return self.query_overlay.points

    # ------------------------------------------------------------------ picture

    def render_picture(self) -> QtGui.QImage:
        """The current picture (images, heat map, lines, dots, query marks) at full image
        resolution, drawn off screen (see ``picture``); ValueError when there is no image."""
        bounds = self.scene_bounds()
        radius = picture.dot_radius(bounds)
        copies = [layer.copy_for_export() for layer in self.photos] + [self.query_overlay.copy_for_export()]
        copies += [self.lines_item.copy_for_export(), self.dots_item.copy_for_export(radius)]
        line = self.epipolar_overlay.line
        if line.xData is not None and len(line.xData):
            copies.append(pg.PlotDataItem(line.xData, line.yData, pen=pg.mkPen(line.opts["pen"].color(), width=max(2, radius))))
        marks = self.query_overlay.marks_in_view(self.to_view)
        return picture.render(bounds, [c for c in copies if c is not None], marks, radius)
