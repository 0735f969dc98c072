"""Dense UCN matching: forward nearest neighbours, reciprocity and stability.

    pair = PairFeatures.compute(model, image0, image1, device)          # precision="auto" by default
    matches = match(pair, MatchOptions(keypoints="sift"))
    keep = filter_mask(matches, FilterSettings())     # see filters.py

Everything is computed once per pair; thresholds only re-mask the MatchSet.
Coordinates in a MatchSet are (x, y) in ORIGINAL pixels. The reciprocity and
stability errors are in pixels of image 0 at the NETWORK's resolution ("px at 640"),
the unit the cycle tests work in, so one threshold means the same on a 1,000-px
photo and on its 4,000-px original; ``*_error_original`` hold the same errors in
original pixels, for display and export. Every long step checks ``cancel`` (between network layers,
search blocks and SIFT tiles) and raises :class:`Cancelled` when it says stop.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.random  # noqa: F401 - numpy 2 imports it lazily: 130 ms holding the GIL, which stalled the window when the first match did it
import torch

from .features import extract_features
from .image import LoadedImage
from .keypoints import check_query_points
from .keypoints import all_points, grid_points, sift_points, textured_points, to_pixel
from .nn import Cancelled, check_cancel, descriptor_distance, nearest_neighbors
from .precision import coarse_search_dtype, resolve_precision
from .settings import MatchOptions
from .subpixel import refine_targets

ProgressFn = Callable[[str, float], None]  # (stage name, fraction of the whole run done)


# The diagonal shifts of the seed's stability test, and all 8 neighbours.
DIAGONAL_SHIFTS = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], dtype=np.int64)
ALL8_SHIFTS = np.array([[dx, dy] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy], dtype=np.int64)


@dataclass
class MatchSet:
    """One candidate per query point of image 0. Arrays are numpy, length N."""

    keypoints0: np.ndarray  # N x 2 float32, original pixels of image 0
    keypoints1: np.ndarray  # N x 2 float32, original pixels of image 1
    reciprocity_error: np.ndarray  # N float32, pixels of image 0 at the network's resolution (what filters compare)
    stability_error: np.ndarray  # N float32, same unit
    descriptor_distance: np.ndarray  # N float32, L2 between unit descriptors, in [0, 2]
    ratio: np.ndarray  # N float32, nearest / second-nearest distance
    timings: dict[str, float] = field(default_factory=dict)
    # The two errors in original pixels of image 0 (display and export only); None: the same
    # numbers (a MatchSet made at full size, or by hand).
    reciprocity_error_original: np.ndarray | None = None
    stability_error_original: np.ndarray | None = None
    network_side: int = 0  # long side of image 0 as the network saw it (the errors' unit); 0: not known
    error_scale: float = 1.0  # original pixels per network pixel of image 0, to show a threshold in both units
    # Who matched: "UCN", or a reference matcher (SIFT, ...) whose matches have no cycle errors,
    # descriptor distance or ratio (those columns are NaN and their filters do not apply).
    method: str = "UCN"

    COLUMNS = ("keypoints0", "keypoints1", "reciprocity_error", "stability_error", "descriptor_distance", "ratio",
               "reciprocity_error_original", "stability_error_original")

    def __post_init__(self) -> None:
        if self.reciprocity_error_original is None:
            self.reciprocity_error_original = self.reciprocity_error
        if self.stability_error_original is None:
            self.stability_error_original = self.stability_error

    def __len__(self) -> int:
        return len(self.keypoints0)

    @property
    def has_scores(self) -> bool:
        """Whether the cycle errors, distance and ratio were measured (UCN's dense matching)."""
        return self.method == "UCN"

    def subset(self, mask: np.ndarray) -> MatchSet:
        return MatchSet(**{c: getattr(self, c)[mask] for c in self.COLUMNS}, timings=dict(self.timings),
                        network_side=self.network_side, error_scale=self.error_scale, method=self.method)


@dataclass
class PairFeatures:
    """Descriptors of both images, cached so re-matching and click queries cost no forward pass.

    desc0: C x h0 x w0, desc1: C x h1 x w1 fp32 (network resolution, on the compute device).
    precision: what the network ran in (fp32, bf16 or fp16, resolved).
    """

    image0: LoadedImage
    image1: LoadedImage
    desc0: torch.Tensor
    desc1: torch.Tensor
    timings: dict[str, float] = field(default_factory=dict)
    precision: str = "fp32"

    @classmethod
    def compute(
        cls,
        model: torch.nn.Module,
        image0: LoadedImage,
        image1: LoadedImage,
        device: torch.device | str = "cpu",
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
        precision: str = "auto",
    ) -> PairFeatures:
        """Descriptors of both images; precision: auto | fp32 | bf16 | fp16 (see core.precision)."""
        precision = resolve_precision(precision, torch.device(device))
        timings: dict[str, float] = {}
        descs = []
        for i, img in enumerate((image0, image1)):
            _report(progress, cancel, f"features image {i}", 0.05 + 0.3 * i)
            t = time.perf_counter()
            descs.append(extract_features(model, img, device, cancel, precision))
            _sync(descs[-1])
            timings[f"features{i}"] = time.perf_counter() - t
        return cls(image0, image1, descs[0], descs[1], timings, precision)

    def with_image1(self, model: torch.nn.Module, image1: LoadedImage, cancel: Callable[[], bool] | None = None) -> PairFeatures:
        """The same image 0 (its descriptors reused) with another image 1, on the same device and
        in the same precision; timings gain 'features1_again'."""
        t = time.perf_counter()
        desc1 = extract_features(model, image1, self.desc0.device, cancel, self.precision)
        _sync(desc1)
        timings = {**self.timings, "features1_again": time.perf_counter() - t}
        pair = PairFeatures(self.image0, image1, self.desc0, desc1, timings, self.precision)
        for name in ("flat0", "coarse0"):  # image 0's search copies, when made already (cached_property's slot)
            if name in self.__dict__:
                pair.__dict__[name] = self.__dict__[name]
        return pair

    # Row-major copies, made once per pair: the search reads database rows, and a
    # transposed view of C x H x W makes every block product and gather strided.
    # Descriptors computed in channels-last are already laid out this way (no copy).
    @cached_property
    def flat0(self) -> torch.Tensor:
        """h0*w0 x C, contiguous."""
        return self.desc0.flatten(1).t().contiguous()

    @cached_property
    def flat1(self) -> torch.Tensor:
        """h1*w1 x C, contiguous."""
        return self.desc1.flatten(1).t().contiguous()

    # bf16 copies for the coarse pass of the search (CPU with native bf16, network in bf16);
    # the search stays exact, see nn.py.
    @cached_property
    def coarse0(self) -> torch.Tensor | None:
        dtype = coarse_search_dtype(self.precision, self.desc0.device)
        return None if dtype is None else self.flat0.to(dtype)

    @cached_property
    def coarse1(self) -> torch.Tensor | None:
        dtype = coarse_search_dtype(self.precision, self.desc1.device)
        return None if dtype is None else self.flat1.to(dtype)


def query_points(pair: PairFeatures, options: MatchOptions, cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Query points of image 0 in network pixels (N x 2 float32); grid and every-pixel modes skip
    pixels flatter than ``options.min_texture``."""
    w, h = pair.image0.size
    if options.keypoints == "sift":
        return sift_points(pair.image0.gray, options.max_keypoints, cancel=cancel)
    if options.keypoints == "grid":
        points = grid_points(w, h, options.grid_stride)
    elif options.keypoints == "all":
        points = all_points(w, h)
    else:
        raise ValueError(f"unknown keypoint mode {options.keypoints!r} (sift, grid or all)")
    return textured_points(points, pair.image0.gray, options.min_texture)  # the TEXTURE_GATED_MODES


_query_pool: ThreadPoolExecutor | None = None


def prefetch_query_points(
    image0: LoadedImage,
    options: MatchOptions,
    device: torch.device | str,
    points0: np.ndarray | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Future | None:
    """Start image 0's SIFT detection on a CPU thread, to run while a GPU computes the features.

    Returns a future of :func:`query_points`' result for :func:`match`'s ``prefetched``, or
    None where there is nothing to overlap: given points, grid or every-pixel queries (no
    work), or a CPU device (detection and network would share the same cores).
    """
    global _query_pool
    if points0 is not None or options.keypoints != "sift" or torch.device(device).type == "cpu":
        return None
    if _query_pool is None:
        _query_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ucn-query-points")
    return _query_pool.submit(sift_points, image0.gray, options.max_keypoints, cancel=cancel)


def match(
    pair: PairFeatures,
    options: MatchOptions | None = None,
    points0: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    prefetched: Future | None = None,
) -> MatchSet:
    """Match query points of image 0 to all pixels of image 1 and score each match.

    points0: optional N x 2 (x, y) in ORIGINAL pixels of image 0; matched in that
    order and reported unchanged. Otherwise options.keypoints chooses them, or
    ``prefetched`` (from :func:`prefetch_query_points` with the same options) holds them
    already; then the 'keypoints' time is only the wait for it.
    """
    options = options or MatchOptions()
    points0 = None if points0 is None else check_query_points(points0, *pair.image0.original_size)[0]  # never clamp silently
    timings: dict[str, float] = {}
    img0, img1 = pair.image0, pair.image1
    w0, h0 = img0.size
    w1, h1 = img1.size

    t = time.perf_counter()
    _report(progress, cancel, "query points", 0.62)
    if points0 is None:
        net_pts = prefetched.result() if prefetched is not None else query_points(pair, options, cancel)
        reported0 = img0.to_original(net_pts)
    else:
        reported0 = np.asarray(points0, dtype=np.float32).reshape(-1, 2)
        net_pts = img0.to_network(reported0)
    q_xy = to_pixel(net_pts, w0, h0)  # N x 2 int64, where the descriptors are read
    n = len(q_xy)
    timings["keypoints"] = time.perf_counter() - t

    t = time.perf_counter()
    _report(progress, cancel, "forward search", 0.68)
    q_index = torch.as_tensor(q_xy[:, 1] * w0 + q_xy[:, 0], device=pair.desc0.device)
    scores, idx = _search(q_index, pair.flat0, pair.flat1, pair.coarse1, min(2, w1 * h1), cancel)
    fwd = _index_to_xy(idx[:, 0], w1)
    timings["forward"] = _elapsed(t, scores)
    if options.subpixel:
        t = time.perf_counter()
        target1 = refine_targets(pair.desc0, pair.desc1, torch.as_tensor(net_pts, dtype=torch.float32), fwd).numpy()
        timings["subpixel"] = time.perf_counter() - t
    else:
        target1 = fwd.cpu().numpy().astype(np.float32)

    # Both cycle tests in one backward search: the matches themselves (reciprocity) and
    # their shifted copies (stability), each distinct pixel of image 1 searched once.
    t = time.perf_counter()
    _report(progress, cancel, "reciprocity and stability", 0.8)
    moved = _stability_positions(fwd, options, w1, h1)
    back = _backward(pair, torch.cat((fwd, moved)), cancel)
    # Errors in network pixels: the unit the thresholds use (the seed's), and in original pixels for display.
    recip, recip_orig = _pixel_error(back[:n], q_xy, img0.scale)
    reps = len(moved) // max(n, 1)
    stab, stab_orig = _pixel_error(back[n:], np.tile(q_xy, (reps, 1)), img0.scale)
    stab = stab.reshape(reps, n).max(axis=0) if n else np.zeros(0)
    stab_orig = stab_orig.reshape(reps, n).max(axis=0) if n else np.zeros(0)
    timings["backward"] = time.perf_counter() - t

    dist = descriptor_distance(scores).cpu().numpy()
    ratio = dist[:, 0] / np.maximum(dist[:, 1], 1e-12) if dist.shape[1] == 2 else np.zeros(len(dist))
    _report(progress, None, "done", 1.0)
    return MatchSet(
        keypoints0=reported0.astype(np.float32),
        keypoints1=img1.to_original(target1),
        reciprocity_error=recip.astype(np.float32),
        stability_error=stab.astype(np.float32),
        descriptor_distance=dist[:, 0].astype(np.float32),
        ratio=np.minimum(ratio, 1.0).astype(np.float32),
        timings={**pair.timings, **timings},
        reciprocity_error_original=recip_orig.astype(np.float32),
        stability_error_original=stab_orig.astype(np.float32),
        network_side=max(w0, h0),
        error_scale=float(np.sqrt(img0.scale[0] * img0.scale[1])),
    )


def _search(
    index: torch.Tensor,
    queries_from: torch.Tensor,
    database: torch.Tensor,
    coarse: torch.Tensor | None,
    k: int,
    cancel: Callable[[], bool] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of the rows ``index`` of ``queries_from`` (pixels, row-major) in ``database``.

    Each distinct pixel is searched once (grid, every-pixel and backward queries repeat
    many), in raster order, which keeps neighbouring queries' candidate blocks together.
    """
    if len(index) == 0:
        return nearest_neighbors(queries_from[:0], database, k=k)
    unique, inverse = torch.unique(index, return_inverse=True)
    scores, idx = nearest_neighbors(queries_from[unique], database, k=k, coarse=coarse, cancel=cancel)
    return scores[inverse], idx[inverse]


def _backward(pair: PairFeatures, xy1: torch.Tensor, cancel: Callable[[], bool] | None = None) -> torch.Tensor:
    """Nearest pixel of image 0 for descriptors of image 1 at xy1 (N x 2 long) -> N x 2 long."""
    w1 = pair.image1.size[0]
    _, idx = _search(xy1[:, 1] * w1 + xy1[:, 0], pair.flat1, pair.flat0, pair.coarse0, 1, cancel)
    return _index_to_xy(idx[:, 0], pair.image0.size[0])


def _stability_positions(fwd: torch.Tensor, options: MatchOptions, w1: int, h1: int) -> torch.Tensor:
    """Each match shifted by one pixel: reps*N x 2 long (reps = 1 for 'diagonal', 8 for 'all8').

    The stability error is the cycle error of these shifted matches, the worst over the shifts.
    """
    n = len(fwd)
    if options.stability == "all8":
        shifts = np.repeat(ALL8_SHIFTS, n, axis=0)  # 8N x 2: every match with each neighbour
    elif options.stability == "diagonal":
        rng = np.random.default_rng(options.seed)
        shifts = DIAGONAL_SHIFTS[rng.integers(0, 4, size=n)]
    else:
        raise ValueError(f"unknown stability mode {options.stability!r} (diagonal or all8)")
    reps = len(shifts) // max(n, 1)
    moved = fwd.repeat(reps, 1) + torch.as_tensor(shifts, device=fwd.device)
    moved[:, 0].clamp_(0, w1 - 1)
    moved[:, 1].clamp_(0, h1 - 1)
    return moved


class OutsideView(ValueError):
    """A click-to-query pixel that the cached features do not cover (image 1 outside what
    image 0 sees, when image 1 was matched aligned to image 0: see core.alignment)."""


@torch.no_grad()
def similarity_map(pair: PairFeatures, x: float, y: float, side: int = 0) -> tuple[np.ndarray, tuple[float, float]]:
    """Descriptor similarity of one pixel of image ``side`` against every pixel of the other image.
    OutsideView when the features do not cover the pixel.

    (x, y) in ORIGINAL pixels of image ``side`` (0: query image 0 into image 1, the forward
    direction; 1: query image 1 back into image 0). Returns h x w float32 cosine
    similarities in [-1, 1] (the other image at the network resolution) and its best match
    in original pixels of the other image. Uses the cached descriptors only.
    """
    (src, src_desc), (dst, dst_desc) = ((pair.image0, pair.desc0), (pair.image1, pair.desc1))[:: 1 if side == 0 else -1]
    covers = getattr(src, "covers", None)  # an aligned copy of image 1 holds only what image 0 sees
    if covers is not None and not covers(np.array([[x, y]], np.float32))[0]:
        raise OutsideView(f"({x:.0f}, {y:.0f}) in image {side} lies outside what image 0 sees: the aligned second pass "
                          "has no features there (untick 'Align and match again' to query it)")
    w, h = src.size
    q_xy = to_pixel(src.to_network(np.array([[x, y]], np.float32)), w, h)[0]
    q = src_desc[:, q_xy[1], q_xy[0]]
    sim = torch.einsum("c,chw->hw", q, dst_desc)
    best = int(sim.argmax())
    w_dst = dst.size[0]
    best_xy = dst.to_original(np.array([[best % w_dst, best // w_dst]], np.float32))[0]
    return dst.network_map(sim.float().cpu().numpy()), (float(best_xy[0]), float(best_xy[1]))


def _index_to_xy(idx: torch.Tensor, width: int) -> torch.Tensor:
    return torch.stack((idx % width, idx // width), dim=1)


def _pixel_error(xy: torch.Tensor, ref: np.ndarray, scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance between network-pixel positions: in network pixels, and in original pixels."""
    d = (xy.cpu().numpy() - ref).astype(np.float64)
    scaled = d * np.asarray(scale)
    return np.hypot(d[:, 0], d[:, 1]), np.hypot(scaled[:, 0], scaled[:, 1])


def _report(progress: ProgressFn | None, cancel: Callable[[], bool] | None, stage: str, fraction: float) -> None:
    check_cancel(cancel, stage)
    if progress is not None:
        progress(stage, fraction)


def _sync(t: torch.Tensor) -> None:
    if t.is_cuda:
        torch.cuda.synchronize(t.device)


def _elapsed(start: float, t: torch.Tensor) -> float:
    _sync(t)
    return time.perf_counter() - start


def match_images(
    model: torch.nn.Module,
    image0: LoadedImage,
    image1: LoadedImage,
    options: MatchOptions | None = None,
    device: torch.device | str = "cpu",
    points0: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    precision: str = "auto",
) -> tuple[PairFeatures, MatchSet]:
    """Features for both images, then :func:`match`. The one-call API for scripts.

    precision: auto | fp32 | bf16 | fp16 for the network ('auto': bf16 where the hardware
    runs it natively); the search is exact in every case. On a GPU, image 0's SIFT points
    are detected on a CPU thread meanwhile (:func:`prefetch_query_points`).
    """
    options = options or MatchOptions()
    pending = prefetch_query_points(image0, options, device, points0, cancel)
    pair = PairFeatures.compute(model, image0, image1, device, progress, cancel, precision)
    return pair, match(pair, options, points0, progress, cancel, prefetched=pending)


__all__ = [
    "Cancelled",
    "MatchOptions",
    "MatchSet",
    "OutsideView",
    "PairFeatures",
    "match",
    "match_images",
    "prefetch_query_points",
    "similarity_map",
]
