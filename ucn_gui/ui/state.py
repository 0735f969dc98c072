"""What the window shows, without its widgets: the pair, the model, the latest result and its mask.

    state = ViewerState()
    state.mask_changed.connect(redraw)             # after refilter / clear_result
    state.set_images({0: opened0, 1: opened1})     # loader output; the result is cleared
    request = state.request(ComputeSettings())     # None until there is a pair and a model
    state.set_result(result)                       # from MatchRunner
    state.refilter(FilterSettings(), max_drawn=5000)
    state.slots[1].result                          # the matcher compared with (None: no comparison)

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
from ucn_gui.core.image import Photo
from ucn_gui.core.match_files import save_matches
from ucn_gui.core.matching import similarity_map
from ucn_gui.core.settings import ComputeSettings, FilterSettings

from .loader import OpenedImage
from .match_slot import MatchSlot
from .worker import MatchRequest, MatchResult, needs_model


class ViewerState(QtCore.QObject):
    images_changed = QtCore.Signal(list)  # the sides whose photo changed
    result_changed = QtCore.Signal()  # ``result`` was replaced (None: cleared)
    mask_changed = QtCore.Signal()  # the slots' masks and drawn indices were recomputed

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.images: list[Photo | None] = [None, None]
        self.displays: list[np.ndarray | None] = [None, None]  # what the view shows of each photo
        self.model: LoadedModel | None = None
        # A: the chosen matcher's result; B: the matcher it is compared with (empty when none).
        self.slots = (MatchSlot(), MatchSlot())

    # The chosen matcher's result and masks (slot A), by their old names.
    result = property(lambda self: self.slots[0].result)
    mask = property(lambda self: self.slots[0].mask)
    drawn_indices = property(lambda self: self.slots[0].drawn_indices)
    geometry = property(lambda self: self.slots[0].geometry)

    def homography(self) -> np.ndarray | None:
        """Image 0 -> image 1 (original pixels) for the alignment view: RANSAC's homography when it
        estimated one, else the warp of the second pass on screen (inverted: it maps image 1 -> 0)."""
        geometry = self.geometry
        if geometry is not None and geometry.model == "homography" and geometry.matrix is not None:
            return geometry.matrix
        alignment = None if self.result is None else self.result.alignment
        if alignment is not None and alignment.used:
            return np.linalg.inv(alignment.homography)
        return None

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
        """A run of the current pair (and model, when a matcher needs it); None when missing."""
        if not self.has_pair() or (self.model is None and needs_model(compute)):
            return None
        return MatchRequest(self.model, self.images[0], self.images[1], compute)

    # ------------------------------------------------------------------ result and mask

    def set_result(self, result: MatchResult) -> None:
        self.slots[0].set_result(result)
        if result.compare is not None:
            self.slots[1].set_result(result.compare)
        else:
            self.slots[1].clear()
        self.result_changed.emit()

    def clear_result(self) -> None:
        for slot in self.slots:
            slot.clear()
        self.mask_changed.emit()
        self.result_changed.emit()

    def refilter(self, settings: FilterSettings, max_drawn: int, preview: bool = False, show_outliers: bool = False) -> bool:
        """Re-mask both results (instant, nothing recomputed; see MatchSlot.refilter).
        Returns True when a preview wants an exact refilter later."""
        if self.result is None:
            return False
        later = [slot.refilter(settings, max_drawn, preview, show_outliers) for slot in self.slots]
        self.mask_changed.emit()
        return any(later)

    def drawn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keypoints of image 0 and 1 of slot A's drawn matches (original pixels) and their indices."""
        return self.slots[0].drawn()

    # ------------------------------------------------------------------ query and export

    def query(self, x: float, y: float, side: int = 0, slot: int = 0) -> tuple[np.ndarray, tuple[float, float]] | None:
        """Similarity of pixel (x, y) of image ``side`` over the other image and its best match, from
        the cached dense features (None without them: no result yet, or a sparse matcher's)."""
        result = self.slots[slot].result
        if result is None or result.pair is None:
            return None
        return similarity_map(result.pair, x, y, side)

    def save_matches(self, path: str | Path, compute: ComputeSettings, filters: FilterSettings) -> Path:
        """Slot A's MatchSet with the current mask, in ucn-match's columns, and what made it."""
        assert self.result is not None
        geometry = self.geometry
        meta = {
            "image0": str(self.images[0].path),
            "image1": str(self.images[1].path),
            "matcher": self.result.matcher,
            "model": str(self.model.path) if self.model and self.result.matcher == "UCN" else None,
            "max_side": compute.max_side,
            "device": self.result.device,
            "precision": self.result.precision,
            "options": asdict(compute.options),
            "filters": filters.to_dict(),
            **({"ransac_matrix": geometry.matrix.tolist()} if geometry is not None and geometry.matrix is not None else {}),
            **(self.result.alignment.to_settings() if self.result.alignment is not None else {}),
        }
        return Path(save_matches(path, self.result.matches, self.mask, meta))
