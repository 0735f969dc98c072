"""Batched graphics items for many matches: one item paints every dot, one every line.

Qt's software rasteriser is slow with thousands of per-point symbols or colour
objects (timings: README, "Benchmarks > The window"), so :class:`DotsItem` stamps
all dots into one numpy ARGB buffer in device pixels and draws it with a single
``drawImage``; dots keep a constant on-screen size at every zoom. :class:`LinesItem` groups
segments by colour into a handful of ``QPainterPath`` objects.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from .colors import N_COLORS, PALETTE_ARGB32, PALETTE_RGB


def _disk_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dx * dx + dy * dy <= radius * radius + 0.5
    return dx[inside].astype(np.int64), dy[inside].astype(np.int64)


class DotsItem(pg.GraphicsObject):
    """Constant-size coloured dots at many positions (view coordinates)."""

    def __init__(self, radius: float = 2.5, outline: bool = True) -> None:
        super().__init__()
        self._xy = np.zeros((0, 2), np.float64)  # N x 2 view coordinates
        self._cidx = np.zeros(0, np.uint8)  # N colour LUT indices
        self._bounds = QtCore.QRectF()
        self.radius = radius
        self.outline = outline

    def set_points(self, xy: np.ndarray, cidx: np.ndarray) -> None:
        self._xy = np.asarray(xy, np.float64).reshape(-1, 2)
        self._cidx = np.asarray(cidx, np.uint8)
        self.update()

    def set_bounds(self, rect: QtCore.QRectF) -> None:
        """The area the dots can fall in (the images); used as bounding rect."""
        self.prepareGeometryChange()
        self._bounds = QtCore.QRectF(rect)

    def copy_for_export(self, radius: float) -> DotsItem:
        """The same dots at another radius (device pixels of the rendered picture)."""
        copy = DotsItem(radius=radius, outline=self.outline)
        copy.set_bounds(self._bounds)
        copy.set_points(self._xy, self._cidx)
        return copy

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt API)
        return self._bounds

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        if len(self._xy) == 0:
            return
        device = painter.device()
        dpr = device.devicePixelRatioF() if hasattr(device, "devicePixelRatioF") else 1.0
        tr = painter.transform()
        m = np.array([[tr.m11(), tr.m12()], [tr.m21(), tr.m22()]])
        dev = (self._xy @ m + (tr.dx(), tr.dy())) * dpr  # device pixels
        W, H = int(device.width() * dpr), int(device.height() * dpr)
        r = self.radius * dpr
        pad = int(np.ceil(r)) + 2
        ix = np.round(dev[:, 0]).astype(np.int64)
        iy = np.round(dev[:, 1]).astype(np.int64)
        vis = (ix > -pad) & (ix < W + pad) & (iy > -pad) & (iy < H + pad)
        if not vis.any():
            return
        ix, iy, col = ix[vis], iy[vis], PALETTE_ARGB32[self._cidx[vis]]
        # Only the bounding box of the visible dots gets a buffer, padded by the dot
        # radius so stamping needs no bounds checks.
        x0, y0 = max(int(ix.min()), 0), max(int(iy.min()), 0)
        x1, y1 = min(int(ix.max()) + 1, W), min(int(iy.max()) + 1, H)
        np.clip(ix, x0, x1 - 1, out=ix)  # dots just off-screen are clamped to the edge pixel's row/col
        np.clip(iy, y0, y1 - 1, out=iy)
        bw, bh = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
        buf = np.zeros((bh, bw), np.uint32)
        flat = buf.ravel()
        base = (iy - y0 + pad) * bw + (ix - x0 + pad)
        inner_dx, inner_dy = _disk_offsets(r)
        if self.outline:  # a dark rim keeps dots readable on bright and dark photos
            dx, dy = _disk_offsets(r + dpr)
            inner = set(zip(inner_dx.tolist(), inner_dy.tolist()))
            rim = np.array([(a, b) not in inner for a, b in zip(dx.tolist(), dy.tolist())])
            for off in (dy[rim] * bw + dx[rim]).tolist():
                flat[base + off] = 0xE0101010
        for off in (inner_dy * bw + inner_dx).tolist():  # one vectorised write per stamp pixel
            flat[base + off] = col
        img = QtGui.QImage(buf.data, bw, bh, bw * 4, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        img.setDevicePixelRatio(dpr)
        painter.save()
        painter.resetTransform()
        painter.drawImage(QtCore.QPointF((x0 - pad) / dpr, (y0 - pad) / dpr), img)
        painter.restore()


class LinesItem(pg.GraphicsObject):
    """Segments between matched points, coloured like the dots, batched per colour group."""

    GROUPS = 16  # jet colour groups (LUT entries merged); with the inlier and outlier colours, at most 18 draw calls

    def __init__(self, alpha: int = 170, width: float = 1.0) -> None:
        super().__init__()
        self._paths: list[tuple[QtGui.QPen, QtGui.QPainterPath]] = []
        self._bounds = QtCore.QRectF()
        self.alpha = alpha
        self.width = width
        self._pens = []
        step = N_COLORS // self.GROUPS
        shades = [PALETTE_RGB[g * step + step // 2] for g in range(self.GROUPS)] + list(PALETTE_RGB[N_COLORS:])
        for rgb in shades:
            r, gg, b = (int(v) for v in rgb)
            pen = QtGui.QPen(QtGui.QColor(r, gg, b, alpha))
            pen.setWidthF(width)
            pen.setCosmetic(True)
            self._pens.append(pen)

    def set_segments(self, p0: np.ndarray, p1: np.ndarray, cidx: np.ndarray) -> None:
        """p0, p1: N x 2 view coordinates; cidx: N colour LUT indices."""
        paths = []
        if len(p0):
            cidx = np.asarray(cidx, np.int64)
            group = np.where(cidx < N_COLORS, cidx * self.GROUPS // N_COLORS, self.GROUPS + cidx - N_COLORS)
            order = np.argsort(group, kind="stable")
            n_groups = len(self._pens)
            cuts = np.searchsorted(group[order], np.arange(n_groups + 1))
            for g in range(n_groups):
                sel = order[cuts[g] : cuts[g + 1]]
                if len(sel) == 0:
                    continue
                seg = np.empty((2 * len(sel), 2), np.float64)
                seg[0::2] = p0[sel]
                seg[1::2] = p1[sel]
                paths.append((self._pens[g], pg.arrayToQPath(seg[:, 0], seg[:, 1], connect="pairs")))
        self._paths = paths
        self.update()

    def set_bounds(self, rect: QtCore.QRectF) -> None:
        self.prepareGeometryChange()
        self._bounds = QtCore.QRectF(rect)

    def copy_for_export(self) -> LinesItem:
        """The same segments, sharing the already batched paths and their pens."""
        copy = LinesItem(self.alpha, self.width)
        copy.set_bounds(self._bounds)
        copy._paths = self._paths
        return copy

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt API)
        return self._bounds

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        for pen, path in self._paths:
            painter.setPen(pen)
            painter.drawPath(path)
