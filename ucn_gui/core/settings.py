"""The settings a run and its filters take, and their defaults: one home for each number.

    FilterSettings()     thresholds that only re-mask a MatchSet (instant)
    MatchOptions()       how query points are chosen and scored (a new match, features reused)
    ComputeSettings()    device, network size, precision and MatchOptions (a new run)

The panels, ``ucn-match``'s options, the window's saved settings and the worker
all start from these dataclasses. Light on purpose (no torch, no OpenCV): entry
points read the defaults for their ``--help`` before the thread policy is set.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field

RANSAC_MODELS = ("homography", "fundamental")
# The window's matchers: UCN (the model) and the sparse references of core.reference_matchers
# (XFeat only when its optional package is installed).
MATCHERS = ("UCN", "SIFT", "ORB", "AKAZE", "XFeat")
THRESHOLDS = ("reciprocity", "stability", "max_distance", "max_ratio")  # the tests a None switches off


@dataclass
class FilterSettings:
    """A threshold of None switches that test off. Defaults follow the seed (4 px each).

    Pixel thresholds are pixels of image 0 at the network's resolution ("px at 640"), the
    unit the cycle tests work in, so they mean the same on a 1,000-px photo and a 4,000-px one.
    """

    reciprocity: float | None = 4.0  # max cycle error, px at the network's resolution
    stability: float | None = 4.0  # max cycle error after a 1-px shift, same unit
    max_distance: float | None = None  # max descriptor distance in [0, 2]
    max_ratio: float | None = None  # max nearest / second-nearest distance ratio
    ransac: str | None = None  # None | homography | fundamental
    ransac_threshold: float = 3.0  # px at the network's resolution (converted for RANSAC on original pixels)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the setting when a threshold is NaN (a NaN cut would silently
        keep or drop everything) or RANSAC is set up wrongly."""
        for name in THRESHOLDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value)):
                raise ValueError(f"{name} threshold must be a number or None (off), got {value!r}")
        if self.ransac and self.ransac not in RANSAC_MODELS:
            raise ValueError(f"unknown RANSAC model {self.ransac!r} ({' or '.join(RANSAC_MODELS)})")
        t = self.ransac_threshold
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"ransac_threshold must be a positive number of pixels, got {t!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# The query-point modes that MatchOptions.min_texture applies to (core.matching.query_points).
TEXTURE_GATED_MODES = ("grid", "all")


@dataclass
class MatchOptions:
    keypoints: str = "sift"  # sift | grid | all (ignored when points are given)
    max_keypoints: int = 2000
    grid_stride: int = 8
    stability: str = "diagonal"  # diagonal: one random diagonal shift (seeded) | all8: worst of 8
    seed: int = 0
    subpixel: bool = True  # targets refined between pixels (core.subpixel); False: the searched pixel itself
    # Grid and every-pixel queries (TEXTURE_GATED_MODES) skip flat pixels: those whose texture
    # (core.keypoints.texture_map, gray in [0, 1]) is below this. 1e-4 leaves out about half of a photo's grid
    # (sky, walls), whose kept matches are far more often wrong; 0 queries every point. SIFT points and given
    # points are never skipped.
    min_texture: float = 1e-4

    def __post_init__(self) -> None:
        t = self.min_texture
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t < 0:
            raise ValueError(f"min_texture must be a number >= 0 (0: query flat pixels too), got {t!r}")


@dataclass
class ComputeSettings:
    """What a background run in the window needs besides the pair and the model."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N (an unavailable CUDA device runs on the CPU)
    max_side: int | None = 640  # the network sees a copy at most this long (None: full size)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (one the device cannot run: auto's choice, with a notice)
    options: MatchOptions = field(default_factory=MatchOptions)
    matcher: str = "UCN"  # one of MATCHERS: what the main pane (A) shows
    compare: str | None = None  # a second matcher shown beside it (B), or None
    # UCN: match again with image 1 warped by a homography fitted to the kept matches (core.alignment). On in the
    # window, where one pair is looked at closely (2.6x the correct matches for about 1.9x the time); opt-in
    # (--align) for ucn-match and the Python API, where time per pair and explicit behaviour matter more.
    align: bool = True

    @property
    def compared(self) -> str | None:
        """The matcher pane B shows: ``compare`` when it is set and differs from ``matcher``, else None."""
        return self.compare if self.compare and self.compare != self.matcher else None
