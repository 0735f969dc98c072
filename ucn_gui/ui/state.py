"""What the window shows, without its widgets: the pair, the model, the latest result and its mask.

    state = ViewerState()
    state.mask_changed.connect(redraw)             # after refilter / clear_result
    state.set_images({0: opened0, 1: opened1})     # loader output; the result is cleared
    request = state.request(ComputeSettings())     # None until there is a pair and a model
    state.set_result(result)                       # from MatchRunner
    state.refilter(FilterSettings(), max_drawn=5000)

Like napari's viewer model behind its Qt window: signals say what changed, the window
decides how to show it. Only numpy masks here; tensors stay in the core and the worker.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore

from ucn_gui.core.checkpoint import LoadedModel
from ucn_gui.core.filters import apply_filters, draw_order, drawn_indices, filter_mask
from ucn_gui.core.image import Photo
from ucn_gui.core.match_files import save_matches
from ucn_gui.core.matching import similarity_map
from ucn_gui.core.settings import ComputeSettings, FilterSettings

from .loader import OpenedImage
from .worker import MatchRequest, MatchResult


class ViewerState(QtCore.QObject):
    images_changed = QtCore.Signal(list)  # the sides whose photo changed
    result_changed = QtCore.Signal()  # ``result`` was replaced (None: cleared)
    mask_changed = QtCore.Signal()  # ``mask`` and ``drawn_indices`` were recomputed

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.images: list[Photo | None] = [None, None]
        self.displays: list[np.ndarray | None] = [None, None]  # what the view shows of each photo
        self.model: LoadedModel | None = None
        self.result: MatchResult | None = None
        self.mask = np.zeros(0, bool)  # current filter result over result.matches
        self.drawn_indices = np.zeros(0, np.int64)  # the survivors drawn under the cap
        self._order = np.zeros(0, np.int64)  # draw order, fixed per MatchSet
        self._exact: np.ndarray | None = None  # the last mask with RANSAC, for previews while dragging

    # ------------------------------------------------------------------ pair and model

    def has_pair(self) -> bool:
        return all(img is not None for img in self.images)

    def set_images(self, opened: dict[int, OpenedImage]) -> None:
        for side, item in opened.items():
            self.images[side], self.displays[side] = item.image, item.display
        self.clear_result()
        self.images_changed.emit(sorted(opened))

    def swap(self) -> bool:
        """Exchange the sides; False when there is nothing to swap."""
        if self.images == [None, None]:
            return False
        self.images.reverse()
        self.displays.reverse()
        self.clear_result()
        self.images_changed.emit([0, 1])
        return True

    def set_model(self, model: LoadedModel) -> None:
        self.model = model
        self.clear_result()

    def request(self, compute: ComputeSettings) -> MatchRequest | None:
        """A run of the current pair and model; None when either is missing."""
        if not self.has_pair() or self.model is None:
            return None
        return MatchRequest(self.model, self.images[0], self.images[1], compute)

    # ------------------------------------------------------------------ result and mask

    def set_result(self, result: MatchResult) -> None:
        self.result = result
        self._order = draw_order(len(result.matches))
        self._exact = None
        self.result_changed.emit()

    def clear_result(self) -> None:
        self.result = None
        self.mask = np.zeros(0, bool)
        self.drawn_indices = np.zeros(0, np.int64)
        self._order = np.zeros(0, np.int64)
        self._exact = None
        self.mask_changed.emit()
        self.result_changed.emit()

    def refilter(self, settings: FilterSettings, max_drawn: int, preview: bool = False) -> bool:
        """Re-mask the MatchSet (instant, nothing recomputed). With ``preview`` (a slider being
        dragged) RANSAC does not run (~100 ms): the last RANSAC inliers that still pass the
        thresholds are shown instead. Returns True when such a preview wants an exact refilter later."""
        if self.result is None:
            return False
        matches = self.result.matches
        previewing = bool(settings.ransac) and preview and self._exact is not None
        if previewing:
            self.mask = filter_mask(matches, settings) & self._exact
        else:
            self.mask = apply_filters(matches, settings)
            self._exact = self.mask
        self.drawn_indices = drawn_indices(self.mask, self._order, max_drawn)
        self.mask_changed.emit()
        return previewing

    def drawn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keypoints of image 0 and 1 of the drawn matches (original pixels) and their indices."""
        if self.result is None:
            return np.zeros((0, 2)), np.zeros((0, 2)), self.drawn_indices
        m, idx = self.result.matches, self.drawn_indices
        return m.keypoints0[idx], m.keypoints1[idx], idx

    # ------------------------------------------------------------------ query and export

    def query(self, x: float, y: float) -> tuple[np.ndarray, tuple[float, float]] | None:
        """Similarity of pixel (x, y) of image 0 over image 1 and its best match, from cached features."""
        return None if self.result is None else similarity_map(self.result.pair, x, y)

    def save_matches(self, path: str | Path, compute: ComputeSettings, filters: FilterSettings) -> Path:
        """The MatchSet with the current mask, in ucn-match's columns, and what made it."""
        assert self.result is not None
        meta = {
            "image0": str(self.images[0].path),
            "image1": str(self.images[1].path),
            "model": str(self.model.path) if self.model else None,
            "max_side": compute.max_side,
            "device": self.result.device,
            "precision": self.result.precision,
            "options": asdict(compute.options),
            "filters": filters.to_dict(),
        }
        return Path(save_matches(path, self.result.matches, self.mask, meta))
