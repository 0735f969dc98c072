"""One matcher's result and what the filters make of it: masks, RANSAC geometry, what is drawn.

    slot = MatchSlot()
    slot.set_result(result)                                  # a MatchResult from the worker
    slot.refilter(FilterSettings(ransac="homography"), max_drawn=5000, show_outliers=True)
    slot.mask, slot.geometry, slot.drawn_indices, slot.drawn_inliers

The window has two (A: the chosen matcher, B: the one compared with it). Numpy only:
the masks come from ``core.filters``; nothing here touches tensors or widgets.
"""
from __future__ import annotations

import numpy as np

from ucn_gui.core.filters import Geometry, draw_order, drawn_indices, filter_mask, fit_geometry
from ucn_gui.core.settings import FilterSettings

from .worker import MatchResult

# Below this many inliers a RANSAC fit is flagged as unreliable (COLMAP's two-view geometry
# verification needs 15 as well).
WEAK_FIT_INLIERS = 15


class MatchSlot:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.result: MatchResult | None = None
        self.survivors = np.zeros(0, bool)  # passing the threshold tests
        self.mask = np.zeros(0, bool)  # kept: the survivors that are RANSAC inliers when RANSAC is on
        self.geometry: Geometry | None = None  # the RANSAC fit behind ``mask`` (None: RANSAC off)
        self.drawn_indices = np.zeros(0, np.int64)  # what is drawn (a capped, fixed-order sample)
        self.drawn_inliers: np.ndarray | None = None  # per drawn match: RANSAC inlier? (None: colour by position)
        self._order = np.zeros(0, np.int64)  # draw order, fixed per MatchSet
        self._exact: Geometry | None = None  # the last exact fit, for previews while a slider is dragged

    def set_result(self, result: MatchResult) -> None:
        self.clear()
        self.result = result
        self._order = draw_order(len(result.matches))

    def refilter(self, settings: FilterSettings, max_drawn: int, preview: bool = False, show_outliers: bool = False) -> bool:
        """Re-mask (nothing recomputed). With ``preview`` (a slider being dragged) RANSAC (~100 ms)
        does not run: the last fit's inliers that still pass the thresholds are shown. With
        ``show_outliers`` the survivors RANSAC rejected are drawn too, told apart by ``drawn_inliers``.
        Returns True when a preview wants an exact refilter later."""
        if self.result is None:
            return False
        matches = self.result.matches
        self.survivors = filter_mask(matches, settings)
        previewing = bool(settings.ransac) and preview and self._exact is not None and self._exact.model == settings.ransac
        if not settings.ransac:
            self.geometry = None
        elif previewing:
            self.geometry = self._exact
        else:
            self.geometry = self._exact = fit_geometry(matches, self.survivors, settings.ransac, settings.ransac_threshold)
        inliers = self.geometry.inliers if self.geometry is not None else None
        self.mask = self.survivors if inliers is None else self.survivors & inliers
        drawn_from = self.survivors if (inliers is not None and show_outliers) else self.mask
        self.drawn_indices = drawn_indices(drawn_from, self._order, max_drawn)
        self.drawn_inliers = inliers[self.drawn_indices] if (inliers is not None and show_outliers) else None
        return previewing

    def drawn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keypoints of image 0 and 1 of the drawn matches (original pixels) and their indices."""
        if self.result is None:
            return np.zeros((0, 2)), np.zeros((0, 2)), self.drawn_indices
        m, idx = self.result.matches, self.drawn_indices
        return m.keypoints0[idx], m.keypoints1[idx], idx

    def counts(self) -> str:
        """'shown 267 of 2,000 candidates', or with RANSAC '135 inliers of 267 shown (2,000 candidates)'."""
        if self.result is None:
            return "no matches yet"
        total, shown = len(self.mask), int(self.survivors.sum())
        if self.geometry is None:
            text = f"shown {shown:,} of {total:,} candidates"
        else:
            inliers = int(self.mask.sum())
            text = f"{inliers:,} inliers of {shown:,} shown ({total:,} candidates)"
            if self.geometry.matrix is None:
                text += f" — too few to fit a {self.geometry.model}"
            elif inliers < WEAK_FIT_INLIERS:
                text += f" — a {self.geometry.model} from so few inliers is unreliable"
        drawn = len(self.drawn_indices)
        limit = shown if self.drawn_inliers is not None else int(self.mask.sum())
        return text + (f" (drawing {drawn:,})" if drawn < limit else "")
