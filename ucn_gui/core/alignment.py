"""Align and match again: a second pass with image 1 warped into image 0's frame.

    pair, matches, alignment = match_aligned(model, image0, image1, MatchOptions(), trust=FilterSettings(...))
    alignment.used          # True when the second pass kept more matches and was returned
    alignment.homography    # 3 x 3, image 1 original pixels -> image 0 original pixels

The network is not invariant to rotation, zoom or perspective: on the benchmark's strongest
synthetic warps (up to 45 degrees, zoom 0.6-1.6) the bundled model keeps 87 correct matches per
pair where SIFT keeps 654. The matches it does keep are mostly right, though, enough for RANSAC
to fit a homography. Warping image 1 by it turns the pair into a mild one, where the network is
at its best; the second pass's targets are mapped back through the homography, so every
coordinate still refers to the original photos and the cycle errors stay in image 0's pixels.
A homography is only a rough warp of a 3D scene with parallax: the pass that keeps more
matches at the ``trust`` thresholds is returned, which on such pairs is often the first.

Beyond about 35 degrees (less with a zoom or a tilt on top) the first pass keeps too few right
matches to fit anything. Then image 1 is tried turned (a probe at half size: its features and
PROBE_POINTS queries each): by the quarter turns first (photos held sideways or upside down),
then by 45 degrees either way, until one fits with CONFIDENT_INLIERS; a turn whose kept
matches fit a homography leaves little to the fit, and the second pass goes on from there at
full size. So photos at almost any in-plane angle match (not near 135 degrees either way),
for about a pass more when no turn helps (unrelated photos, a very wide baseline).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from .features import extract_features
from .filters import FilterSettings, filter_mask
from .image import LoadedImage, shrink_to_max_side
from .matching import MatchOptions, MatchSet, PairFeatures, ProgressFn, match, match_images

MIN_INLIERS = 8  # fewer is too likely a wrong fit; a wrong one costs a pass, not matches (the first pass then wins)
RANSAC_PX = 4.0  # inlier threshold of the fit, pixels of image 0 at the network's resolution
VALID_MARGIN = 2  # px: matches this close to the warped image's edge are dropped (interpolated border)
FIRST_PASS_SHARE = 0.6  # of a run's progress bar (the second pass skips image 0's features)
PROBE_POINTS = 300  # SIFT queries of a probe: enough for a fit, a seventh of a full pass's search
# Image 1 turned by these (counter-clockwise), in this order. With the first pass good to about 35 degrees each way,
# they leave gaps only near 135 degrees either way, and each costs about 0.3 s here, paid in full when nothing fits.
PROBE_TURNS_DEG = (90, -90, 180, 45, -45)
CONFIDENT_INLIERS = 3 * MIN_INLIERS  # a probe fitting this many ends the probing (a wrong fit rarely gets 24)


@dataclass(eq=False)
class WarpedImage(LoadedImage):
    """Image 1 warped into image 0's network frame. Its coordinates still map to image 1's
    ORIGINAL pixels, so matching code treats it as any other network copy.

    homography: 3 x 3, image 1 original pixels -> pixels of this copy.
    source: image 1's own network copy (its frame is where maps over image 1 are shown).
    valid: h x w bool, the pixels of this copy that image 1 covers.
    """

    homography: np.ndarray = field(default_factory=lambda: np.eye(3))
    source: LoadedImage | None = None
    valid: np.ndarray | None = None

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        return _transform(np.linalg.inv(self.homography), xy)

    def to_network(self, xy: np.ndarray) -> np.ndarray:
        return _transform(self.homography, xy)

    def network_map(self, values: np.ndarray) -> np.ndarray:
        """A map over this copy's pixels, warped back into image 1's own network frame."""
        assert self.source is not None
        own_to_here = self.homography @ _network_to_original(self.source)
        w, h = self.source.size
        return cv2.warpPerspective(values, own_to_here, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=float(values.min(initial=0.0)))

    def covers(self, xy: np.ndarray) -> np.ndarray:
        """N bool: which points (original pixels of image 1) lie where the warped copy has image 1."""
        assert self.valid is not None
        p = np.round(self.to_network(xy)).astype(np.int64)
        h, w = self.valid.shape
        inside = (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] < w) & (p[:, 1] < h)
        out = np.zeros(len(p), bool)
        out[inside] = self.valid[p[inside, 1], p[inside, 0]]
        return out


@dataclass
class Alignment:
    """What the alignment pass found. homography: image 1 -> image 0, original pixels (None: no fit)."""

    homography: np.ndarray | None
    inliers: int
    kept_first: int  # matches kept at the trust thresholds by the first pass
    kept_second: int  # ... and by the second (0 when it did not run)
    used: bool  # the second pass was returned
    dropped: int = 0  # second-pass candidates whose target fell outside image 1 (the warp's border), left out
    probe_turn_deg: int = 0  # the fit came from image 1 turned by this many degrees (0: from the first pass)

    @property
    def rotation_deg(self) -> float:
        """The homography's in-plane rotation at the image centre (rough: from its linear part)."""
        if self.homography is None:
            return 0.0
        a = self.homography[:2, :2] / self.homography[2, 2]
        return float(np.degrees(np.arctan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])))

    @property
    def scale(self) -> float:
        if self.homography is None:
            return 1.0
        a = self.homography[:2, :2] / self.homography[2, 2]
        return float(np.sqrt(abs(np.linalg.det(a))))

    def to_settings(self) -> dict:
        """What a matches file records about it: the summary and, when the second pass was written,
        its warp (image 1 -> image 0, original pixels) and the query points it left out."""
        out: dict = {"alignment": self.summary()}
        if self.used:
            out["alignment_homography"] = self.homography.tolist()
            out["alignment_dropped"] = self.dropped
        return out

    def summary(self) -> str:
        """One line for a status bar or a terminal: what the second pass did and which pass is shown."""
        if self.homography is None:
            return (f"Second pass skipped: the {self.kept_first} kept matches do not agree on a homography "
                    f"({self.inliers} inliers, {MIN_INLIERS} needed), nor do those of image 1 turned by "
                    "45 or 90 degrees either way or by 180 degrees, so many of them may be wrong")
        warp = f"image 1 aligned to image 0 by a turn of {self.rotation_deg:+.0f} deg and a scale of {self.scale:.2f}x"
        if self.used:
            return f"Second pass shown ({warp}): {self.kept_first} -> {self.kept_second} kept matches"
        return f"First pass shown: the second ({warp}) kept fewer matches, {self.kept_second} vs {self.kept_first}"


def fit_alignment(matches: MatchSet, keep: np.ndarray) -> tuple[np.ndarray | None, int]:
    """(homography image 1 -> image 0 in original pixels, or None; its RANSAC inliers) from the kept matches."""
    k0, k1 = matches.keypoints0[keep], matches.keypoints1[keep]
    if len(k0) < MIN_INLIERS:
        return None, 0
    H, inliers = cv2.findHomography(k1.astype(np.float64), k0.astype(np.float64), cv2.USAC_MAGSAC,
                                    RANSAC_PX * matches.error_scale, maxIters=10_000, confidence=0.999)
    count = 0 if inliers is None else int(inliers.sum())
    if H is None or count < MIN_INLIERS or not _well_conditioned(H):
        return None, count
    return H, count


def warp_image1(image0: LoadedImage, image1: LoadedImage, homography: np.ndarray) -> WarpedImage:
    """Image 1's network copy warped by ``homography`` (image 1 -> image 0, original pixels)
    into image 0's network frame. The network copy is warped (it is already anti-aliased at the
    network's size); the border outside image 1 is mid-grey, the network's zero."""
    here = np.linalg.inv(_network_to_original(image0)) @ homography  # image 1 original -> image 0 network
    w0, h0 = image0.size
    to_here = here @ _network_to_original(image1)
    gray = cv2.warpPerspective(image1.gray, to_here, (w0, h0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    cover = cv2.warpPerspective(np.ones(image1.gray.shape, np.uint8), to_here, (w0, h0), flags=cv2.INTER_NEAREST)
    cover = cv2.erode(cover, np.ones((2 * VALID_MARGIN + 1,) * 2, np.uint8))
    return WarpedImage(path=image1.path, gray=gray.astype(np.float32), rgb=image1.rgb, scale=image1.scale,
                       full_size=image1.full_size, homography=here, source=image1, valid=cover.astype(bool))


def match_aligned(
    model: torch.nn.Module,
    image0: LoadedImage,
    image1: LoadedImage,
    options: MatchOptions | None = None,
    trust: FilterSettings | None = None,
    device: torch.device | str = "cpu",
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    precision: str = "auto",
    first: tuple[PairFeatures, MatchSet] | None = None,
    points0: np.ndarray | None = None,
    before_second: Callable[[], None] | None = None,
) -> tuple[PairFeatures, MatchSet, Alignment]:
    """:func:`match_images`, then the alignment pass (see the module's docstring).

    trust: the thresholds whose kept matches fit the homography and decide which pass wins
    (the model card's defaults are the natural choice). first: the first pass, when already
    computed (its features are reused for image 0; give it progress_range(progress, 0,
    FIRST_PASS_SHARE) so that the bar never runs backwards). points0: given query points (original
    pixels of image 0), matched in both passes. before_second: called once a warp is fitted,
    before the second pass starts (the window shows the first pass meanwhile). Costs one more
    forward pass (image 1 warped) and one more search.
    """
    options = options or MatchOptions()
    trust = trust or FilterSettings()
    pair, matches = first or match_images(model, image0, image1, options, device, points0,
                                          progress_range(progress, 0.0, FIRST_PASS_SHARE), cancel, precision)
    trusted = filter_mask(matches, trust)
    kept_first = int(trusted.sum())
    H, inliers = fit_alignment(matches, trusted)
    if before_second is not None:
        before_second()
    second_progress = progress_range(progress, FIRST_PASS_SHARE, 1.0)
    turn_deg = 0
    if H is None:
        H, probe_inliers, turn_deg = _probe_turns(model, pair, options, trust, second_progress, cancel)
        if H is None:  # the message names the first pass's fit
            return pair, matches, Alignment(None, inliers, kept_first, 0, False)
        inliers = probe_inliers
    if second_progress is not None:
        second_progress("features of image 1, aligned", 0.5 if turn_deg else 0.0)
    warped = warp_image1(pair.image0, pair.image1, H)
    second_pair = pair.with_image1(model, warped, cancel)
    second = match(second_pair, options, points0, second_progress, cancel)
    covered = warped.covers(second.keypoints1)
    second = second.subset(covered)  # given points keep their order; the left-out ones are counted
    tm = matches.timings  # the first pass's query points and searches, so that stage times add up
    second.timings["first_pass_matching"] = tm.get("keypoints", 0.0) + tm.get("forward", 0.0) + tm.get("backward", 0.0)
    kept_second = int(filter_mask(second, trust).sum())
    used = kept_second > kept_first
    alignment = Alignment(H, inliers, kept_first, kept_second, used, int((~covered).sum()), turn_deg)
    return (second_pair, second, alignment) if used else (pair, matches, alignment)


def _probe_turns(
    model: torch.nn.Module,
    pair: PairFeatures,
    options: MatchOptions,
    trust: FilterSettings,
    progress: ProgressFn | None,
    cancel: Callable[[], bool] | None,
) -> tuple[np.ndarray | None, int, int]:
    """(homography image 1 -> image 0, its inliers, the turn in degrees) of the best-fitting probe of
    image 1 turned by PROBE_TURNS_DEG (see the module's docstring); (None, 0, 0): none fits.

    Probes run at half the network's size: a fit only has to be good enough to warp by (the
    second pass runs at full size), and a quarter of the pixels makes each probe's features and
    search cost about a seventh of a full pass. The first probe that fits with CONFIDENT_INLIERS
    ends the probing; otherwise the best fit of all of them is returned.
    """
    probe_options = MatchOptions(keypoints="sift", max_keypoints=PROBE_POINTS, stability=options.stability, seed=options.seed)
    small0, small1 = _half_size(pair.image0), _half_size(pair.image1)
    desc0 = extract_features(model, small0, pair.desc0.device, cancel, pair.precision)
    small = PairFeatures(small0, small1, desc0, desc0, {}, pair.precision)  # desc1 is replaced per probe
    best: tuple[np.ndarray | None, int, int] = (None, 0, 0)
    for i, degrees in enumerate(PROBE_TURNS_DEG):
        if progress is not None:
            progress(f"image 1 turned by {degrees} degrees", i / (2 * len(PROBE_TURNS_DEG)))
        warped = warp_image1(small0, small1, turned(pair.image0, pair.image1, degrees))
        probe = match(small.with_image1(model, warped, cancel), probe_options, cancel=cancel)
        probe = probe.subset(warped.covers(probe.keypoints1))
        H, inliers = fit_alignment(probe, filter_mask(probe, trust))
        if H is not None and inliers > best[1]:
            best = (H, inliers, degrees)
            if inliers >= CONFIDENT_INLIERS:
                break
    return best


def _half_size(image: LoadedImage) -> LoadedImage:
    """The network copy at half its size (by the rule of every network copy), mapping to the same
    original pixels; a copy under 64 px on its short side stays as it is (the network needs 32)."""
    half = max(image.size) // 2 if min(image.size) >= 64 else None
    gray = shrink_to_max_side(image.gray, half)
    ow, oh = image.original_size
    return LoadedImage(path=image.path, gray=gray, rgb=image.rgb, scale=(ow / gray.shape[1], oh / gray.shape[0]),
                       full_size=image.full_size)


def turned(image0: LoadedImage, image1: LoadedImage, degrees: float) -> np.ndarray:
    """3 x 3, image 1 -> image 0 in original pixels: image 1 turned by ``degrees`` (counter-clockwise
    as seen on screen) about its centre onto image 0's centre, scaled to the same area."""
    w0, h0 = image0.original_size
    w1, h1 = image1.original_size
    s = np.sqrt((w0 * h0) / (w1 * h1))
    a = np.radians(degrees)
    c, t = np.cos(a), -np.sin(a)  # y points down: a turn that looks counter-clockwise is negative in these axes
    if degrees % 90 == 0:  # exact quarter turns (no 1e-17 residue in the matrix)
        c, t = np.round(c), np.round(t)
    to_centre = np.array([[1, 0, -(w1 - 1) / 2], [0, 1, -(h1 - 1) / 2], [0, 0, 1]], float)
    turn = np.array([[s * c, -s * t, 0], [s * t, s * c, 0], [0, 0, 1]], float)
    to_image0 = np.array([[1, 0, (w0 - 1) / 2], [0, 1, (h0 - 1) / 2], [0, 0, 1]], float)
    return to_image0 @ turn @ to_centre


def progress_range(progress: ProgressFn | None, start: float, end: float) -> ProgressFn | None:
    """``progress`` with a pass's fractions (0..1) mapped into [start, end] of the whole run
    (a pass that ends before the run does says "first pass done", not "done")."""
    if progress is None:
        return None

    def report(stage: str, fraction: float) -> None:
        progress("first pass done" if stage == "done" and end < 1.0 else stage, start + (end - start) * fraction)

    return report


def _network_to_original(image: LoadedImage) -> np.ndarray:
    """3 x 3: network pixels -> original pixels of a plain network copy (pixel centres aligned)."""
    sx, sy = image.scale
    return np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]], float)


def _transform(M: np.ndarray, xy: np.ndarray) -> np.ndarray:
    pts = np.asarray(xy, np.float64).reshape(-1, 2)
    if not len(pts):
        return np.zeros((0, 2), np.float32)
    return cv2.perspectiveTransform(pts[None], M)[0].astype(np.float32)


def _well_conditioned(H: np.ndarray) -> bool:
    """Not a collapse or a blow-up: the linear part scales areas by 1/16 to 16."""
    if abs(H[2, 2]) < 1e-12:
        return False
    det = np.linalg.det(H[:2, :2] / H[2, 2])
    return bool(np.isfinite(det) and 1 / 16 < det < 16)
