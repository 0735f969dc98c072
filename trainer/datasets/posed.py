"""Real image pairs with known cameras: SIFT matches that agree with the ground-truth epipolar geometry.

    scenes = load_scenes(["data/posed"], exclude=["strecha_fountain_p11"])
    ds = PosedDataset(scenes, PosedParams(crop_size=256), seed=0)
    sample = ds[(1, 0)]   # img0, img1: crops in [-0.5, 0.5]; pairs: P x 4 (x0, y0, x1, y1) positives

A scene folder holds ``images/*.jpg``, ``cameras.json`` (per image K, R, t in the
OpenCV convention, x_cam = R X + t, sized to the stored images) and optionally
``pairs.txt`` (``image0 image1 angle_deg baseline_over_depth sift_matches
sift_matches_within_2px`` per line). Pairs come from ``pairs.txt`` (at least
``min_pair_matches`` consistent SIFT matches and a baseline ratio of at least
``min_baseline``), or, without it, from every two views whose optical axes are
within ``max_axis_angle_deg``.

Positives are the seed's recipe: SIFT keypoints of both images (at the training
resolution) matched by nearest neighbour with a ratio test, kept when their
symmetric epipolar distance under the ground-truth F is below
``epipolar_threshold`` pixels. Epipolar agreement does not pin a point down along
its line, so a few positives are wrong; the README gives the measured share.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ucn_gui import ImageLoadError, read_rgb, shrink_to_max_side

from ..geometry import relative_pose, skew, symmetric_epipolar_distance
from .common import Key, KeyedOrder, Skipped, sample_rng
from .homography import HomographyParams, photometric


POSITIVES_FILE = "positives.npz"
FUNDAMENTALS_FILE = "fundamentals.json"  # scenes without cameras: trainer.estimate_pairs


class SceneError(ValueError):
    """A scene folder that cannot be used; the message names the scene and the reason."""


@dataclass
class Camera:
    K: np.ndarray  # 3 x 3, for the stored image
    R: np.ndarray  # 3 x 3 world -> camera
    t: np.ndarray  # 3
    width: int
    height: int

    def scaled(self, s: float) -> Camera:
        """The same camera for the image resized by ``s`` (pixel centres kept aligned)."""
        K = self.K.copy()
        K[0, 0] *= s
        K[1, 1] *= s
        K[0, 1] *= s
        K[0, 2] = (K[0, 2] + 0.5) * s - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * s - 0.5
        return Camera(K, self.R, self.t, round(self.width * s), round(self.height * s))


@dataclass
class Scene:
    """A place seen from several views: known cameras, or (``fundamentals``) only each pair's estimated F."""

    name: str
    root: Path
    cameras: dict[str, Camera]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    fundamentals: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (a, b) -> F of the stored images

    def image_path(self, name: str) -> Path:
        return self.root / "images" / name

    def fundamental(self, a: str, b: str, s0: float = 1.0, s1: float = 1.0) -> np.ndarray:
        """F (x1^T F x0 = 0) for images a and b resized by s0 and s1 from the stored ones."""
        if a in self.cameras and b in self.cameras:
            return fundamental_matrix(self.cameras[a].scaled(s0), self.cameras[b].scaled(s1))
        F = self.fundamentals[(a, b)] if (a, b) in self.fundamentals else self.fundamentals[(b, a)].T
        return _resized_to_stored(s1).T @ F @ _resized_to_stored(s0)


def _resized_to_stored(s: float) -> np.ndarray:
    """3 x 3 map from pixels of an image resized by s to pixels of the stored one (pixel centres aligned)."""
    return np.array([[1 / s, 0, 0.5 / s - 0.5], [0, 1 / s, 0.5 / s - 0.5], [0, 0, 1]])


def fundamental_matrix(cam0: Camera, cam1: Camera) -> np.ndarray:
    """F with x1^T F x0 = 0 for homogeneous pixels x0 of cam0 and x1 of cam1."""
    R, t = relative_pose(cam0.R, cam0.t, cam1.R, cam1.t)
    return np.linalg.inv(cam1.K).T @ skew(t) @ R @ np.linalg.inv(cam0.K)


def symmetric_epipolar_px(F: np.ndarray, xy0: np.ndarray, xy1: np.ndarray) -> np.ndarray:
    """N: mean of the distances of x1 to the line F x0 and of x0 to the line F^T x1, in pixels."""
    h0 = np.concatenate([xy0, np.ones((len(xy0), 1))], 1)
    h1 = np.concatenate([xy1, np.ones((len(xy1), 1))], 1)
    return 0.5 * symmetric_epipolar_distance(F, h0, h1)  # the sum of both distances, for F as for E


def _matrix(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be a finite {'x'.join(map(str, shape))} array")
    return a


def read_cameras(scene_dir: Path) -> dict[str, Camera]:
    """Every camera of ``cameras.json``; raises SceneError naming the scene and the problem."""
    path = scene_dir / "cameras.json"
    if not path.is_file():
        raise SceneError(f"scene {scene_dir.name}: no cameras.json in {scene_dir}")
    try:
        images = json.loads(path.read_text())["images"]
        cams = {}
        for name, c in images.items():
            cams[name] = Camera(
                _matrix(c["K"], (3, 3), f"{name}: K"), _matrix(c["R"], (3, 3), f"{name}: R"),
                _matrix(c["t"], (3,), f"{name}: t"), int(c["width"]), int(c["height"]),
            )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SceneError(f"scene {scene_dir.name}: malformed cameras.json ({type(exc).__name__}: {exc})") from None
    if not cams:
        raise SceneError(f"scene {scene_dir.name}: cameras.json lists no images")
    missing = [n for n in cams if not (scene_dir / "images" / n).is_file()]
    if missing:
        raise SceneError(f"scene {scene_dir.name}: {len(missing)} image(s) listed in cameras.json are missing "
                         f"from images/ (e.g. {missing[0]})")
    return cams


def _axis_angle_deg(a: Camera, b: Camera) -> float:
    za, zb = a.R[2], b.R[2]  # optical axes in world coordinates
    return float(np.degrees(np.arccos(np.clip(za @ zb, -1.0, 1.0))))


@dataclass
class PosedParams:
    crop_size: int = 256  # 0: whole images
    max_image_side: int = 640  # images (and their K) are shrunk to this on load
    epipolar_threshold: float = 1.5  # px at the training resolution
    ratio: float = 0.9  # SIFT ratio test for the candidate matches (1: none)
    num_keypoints: int = 4000
    min_pair_matches: int = 50  # pairs.txt: consistent SIFT matches the pair needs
    min_baseline: float = 0.02  # pairs.txt: baseline / depth; below, the epipolar test says little
    max_axis_angle_deg: float = 30.0  # without pairs.txt
    min_correspondences: int = 32
    photometric: HomographyParams = field(default_factory=HomographyParams)


def read_pairs(scene_dir: Path, cams: dict[str, Camera], params: PosedParams) -> list[tuple[str, str]]:
    path = scene_dir / "pairs.txt"
    pairs: list[tuple[str, str]] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 2 or parts[0] not in cams or parts[1] not in cams:
                continue
            if len(parts) >= 6:
                try:
                    baseline, consistent = float(parts[3]), float(parts[5])
                except ValueError:
                    continue
                if consistent < params.min_pair_matches or baseline < params.min_baseline:
                    continue
            pairs.append((parts[0], parts[1]))
    else:
        names = sorted(cams)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if _axis_angle_deg(cams[a], cams[b]) <= params.max_axis_angle_deg:
                    pairs.append((a, b))
    return pairs


def read_fundamentals(scene_dir: Path) -> Scene:
    """A scene of ``fundamentals.json`` (written by trainer.estimate_pairs): pairs with estimated F, no cameras."""
    path = scene_dir / FUNDAMENTALS_FILE
    try:
        doc = json.loads(path.read_text())
        fundamentals = {(p["image0"], p["image1"]): _matrix(p["F"], (3, 3), f"{p['image0']} / {p['image1']}: F")
                        for p in doc["pairs"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SceneError(f"scene {scene_dir.name}: malformed {FUNDAMENTALS_FILE} ({type(exc).__name__}: {exc})") from None
    missing = sorted({n for pair in fundamentals for n in pair if not (scene_dir / "images" / n).is_file()})
    if missing:
        raise SceneError(f"scene {scene_dir.name}: {len(missing)} image(s) of {FUNDAMENTALS_FILE} are missing "
                         f"from images/ (e.g. {missing[0]})")
    if not fundamentals:
        raise SceneError(f"scene {scene_dir.name}: {FUNDAMENTALS_FILE} lists no pairs")
    return Scene(scene_dir.name, scene_dir, {}, sorted(fundamentals), fundamentals)


def load_scene(scene_dir: str | os.PathLike, params: PosedParams) -> Scene:
    scene_dir = Path(scene_dir)
    if not (scene_dir / "cameras.json").is_file() and (scene_dir / FUNDAMENTALS_FILE).is_file():
        return read_fundamentals(scene_dir)
    cams = read_cameras(scene_dir)
    pairs = read_pairs(scene_dir, cams, params)
    if not pairs:
        raise SceneError(f"scene {scene_dir.name}: no overlapping pairs (pairs.txt and the camera-angle rule gave none)")
    return Scene(scene_dir.name, scene_dir, cams, pairs)


def _is_scene(folder: Path) -> bool:
    return (folder / "cameras.json").is_file() or (folder / FUNDAMENTALS_FILE).is_file()


def find_scene_dirs(roots: Sequence[str | os.PathLike]) -> list[Path]:
    """Scene folders: each root that has cameras.json (or fundamentals.json), else its subfolders that do."""
    found: list[Path] = []
    for root in map(Path, roots):
        if _is_scene(root):
            found.append(root)
        elif root.is_dir():
            found.extend(sorted(p for p in root.iterdir() if _is_scene(p)))
        else:
            raise SceneError(f"{root}: no such folder")
    return found


def scene_group(name: str) -> str:
    """Scenes of one place share a group (strecha_castle_p19 / _p30): keep a group in one split."""
    return re.sub(r"_p\d+$", "", name)


def split_scenes(
    roots: Sequence[str | os.PathLike], val_names: Sequence[str], params: PosedParams
) -> tuple[list[Scene], list[Scene]]:
    """(training scenes, validation scenes); a validation scene's group never trains."""
    dirs = find_scene_dirs(roots)
    if not dirs:
        raise SceneError(f"no scene folders (with cameras.json) under {', '.join(map(str, roots))}")
    known = {d.name for d in dirs}
    unknown = sorted(set(val_names) - known)
    if unknown:
        raise SceneError(f"validation scene(s) not found: {', '.join(unknown)} (have: {', '.join(sorted(known))})")
    held_groups = {scene_group(n) for n in val_names}
    train = [load_scene(d, params) for d in dirs if scene_group(d.name) not in held_groups]
    val = [load_scene(d, params) for d in dirs if d.name in set(val_names)]
    return train, val


class PosedDataset:
    """Pairs of real photos with epipolar-verified SIFT positives (keys: see datasets.common)."""

    IMAGE_CACHE = 400  # decoded training-resolution images kept per worker (~0.3 MB each)
    SIFT_CACHE = 64  # keypoints + descriptors (~2 MB each)

    def __init__(self, scenes: Sequence[Scene], params: PosedParams | None = None, seed: int = 0) -> None:
        self.params = params or PosedParams()
        self.scenes = list(scenes)
        self.items = [(si, a, b) for si, s in enumerate(self.scenes) for a, b in s.pairs]
        if not self.items:
            raise SceneError("no posed pairs to sample from")
        self.seed = seed
        self.order = KeyedOrder(len(self.items), seed)
        self._images: OrderedDict[Path, tuple[np.ndarray, float]] = OrderedDict()
        self._sift: OrderedDict[Path, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._positives: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray, int]] = {}  # small: P x 4 per pair
        self.cached_pairs = sum(self.load_positive_cache(s) for s in self.scenes)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def scene_names(self) -> list[str]:
        return [s.name for s in self.scenes]

    # -------------------------------------------------------------- loading

    def image(self, path: Path) -> tuple[np.ndarray, float]:
        """(h x w uint8 gray at the training resolution, scale from the stored image)."""
        if path in self._images:
            self._images.move_to_end(path)
            return self._images[path]
        full = cv2.cvtColor(read_rgb(path), cv2.COLOR_RGB2GRAY)
        gray = shrink_to_max_side(full, self.params.max_image_side)
        s = gray.shape[1] / full.shape[1]
        self._images[path] = (gray, s)
        if len(self._images) > self.IMAGE_CACHE:
            self._images.popitem(last=False)
        return gray, s

    def sift(self, path: Path, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if path in self._sift:
            self._sift.move_to_end(path)
            return self._sift[path]
        kps, desc = cv2.SIFT_create(nfeatures=self.params.num_keypoints).detectAndCompute(gray, None)
        xy = cv2.KeyPoint_convert(kps).astype(np.float64).reshape(-1, 2) if kps else np.zeros((0, 2))
        out = (xy, desc if desc is not None else np.zeros((0, 128), np.float32))
        self._sift[path] = out
        if len(self._sift) > self.SIFT_CACHE:
            self._sift.popitem(last=False)
        return out

    def positives(self, scene: Scene, a: str, b: str) -> dict[str, Any]:
        """Both images at the training resolution and their epipolar-verified SIFT matches.

        Returns gray0, gray1 (uint8), pairs (P x 4 float32), residual_px (P), matches (candidate count).
        """
        p0, p1 = scene.image_path(a), scene.image_path(b)
        gray0, s0 = self.image(p0)
        gray1, s1 = self.image(p1)
        cached = self._positives.get((scene.name, a, b))
        if cached is not None:
            return {"gray0": gray0, "gray1": gray1, "pairs": cached[0], "residual_px": cached[1], "matches": cached[2]}
        F = scene.fundamental(a, b, s0, s1)
        xy0, d0 = self.sift(p0, gray0)
        xy1, d1 = self.sift(p1, gray1)
        empty = {"gray0": gray0, "gray1": gray1, "pairs": np.zeros((0, 4), np.float32), "residual_px": np.zeros(0), "matches": 0}
        if len(xy0) < 2 or len(xy1) < 2:
            return empty
        knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d0, d1, k=2)
        good = [m[0] for m in knn if len(m) == 2 and m[0].distance <= self.params.ratio * m[1].distance]
        if not good:
            return empty
        q = np.array([m.queryIdx for m in good])
        t = np.array([m.trainIdx for m in good])
        m0, m1 = xy0[q], xy1[t]
        res = symmetric_epipolar_px(F, m0, m1)
        ok = res < self.params.epipolar_threshold
        pairs = np.concatenate([m0[ok], m1[ok]], 1).astype(np.float32)
        self._positives[(scene.name, a, b)] = (pairs, res[ok], len(good))
        return {"gray0": gray0, "gray1": gray1, "pairs": pairs, "residual_px": res[ok], "matches": len(good)}

    # -------------------------------------------------------------- precomputed positives

    def _cache_meta(self) -> str:
        """What the positives depend on; a cache made with other settings is ignored."""
        p = self.params
        return json.dumps({"max_image_side": p.max_image_side, "epipolar_threshold": p.epipolar_threshold,
                           "ratio": p.ratio, "num_keypoints": p.num_keypoints}, sort_keys=True)

    def load_positive_cache(self, scene: Scene) -> int:
        """Read ``positives.npz`` of a scene (made by :meth:`save_positive_cache`); returns the pairs found.

        SIFT on both images of every pair is most of a posed sample's cost (a GPU run was
        data-bound on it), so packed data sets carry their positives."""
        path = scene.root / POSITIVES_FILE
        if not path.is_file():
            return 0
        found = 0
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["meta"]) != self._cache_meta():
                    return 0
                names = set(z.files)
                for a, b in scene.pairs:
                    k = f"{a}|{b}"
                    if f"pairs::{k}" in names:
                        self._positives[(scene.name, a, b)] = (z[f"pairs::{k}"], z[f"residual::{k}"], int(z[f"matches::{k}"]))
                        found += 1
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # unreadable: positives are computed instead
            return 0
        return found

    def save_positive_cache(self, scene: Scene) -> Path:
        """Compute the positives of every pair of ``scene`` and write them beside its cameras.json (atomically)."""
        from ucn_gui.core.files import atomic_write

        arrays: dict[str, np.ndarray] = {"meta": np.array(self._cache_meta())}
        for a, b in scene.pairs:
            d = self.positives(scene, a, b)
            k = f"{a}|{b}"
            arrays[f"pairs::{k}"] = d["pairs"]
            arrays[f"residual::{k}"] = np.asarray(d["residual_px"], np.float32)
            arrays[f"matches::{k}"] = np.array(d["matches"])
        path = scene.root / POSITIVES_FILE

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)

        atomic_write(path, write)
        return path

    # -------------------------------------------------------------- sampling

    def _crop(self, gray: np.ndarray, centre: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A crop_size square holding ``centre`` at a random place; (crop, top-left offset x, y)."""
        S = self.params.crop_size
        h, w = gray.shape
        offset = np.zeros(2)
        if S and w > S:
            lo, hi = max(0.0, centre[0] - S + 1), min(float(w - S), centre[0])
            offset[0] = int(rng.uniform(lo, max(lo, hi)))
        if S and h > S:
            lo, hi = max(0.0, centre[1] - S + 1), min(float(h - S), centre[1])
            offset[1] = int(rng.uniform(lo, max(lo, hi)))
        x, y = int(offset[0]), int(offset[1])
        crop = gray[y : y + S, x : x + S] if S else gray
        return crop, offset

    def __getitem__(self, key: Key) -> dict[str, Any] | Skipped:
        si, a, b = self.items[self.order(key)]
        scene = self.scenes[si]
        rng = sample_rng(self.seed, key)
        swap = rng.random() < 0.5  # either image can be the query side
        try:
            d = self.positives(scene, a, b)
        except ImageLoadError as exc:
            return Skipped(key, f"scene {scene.name}: unreadable image: {exc}")
        if swap:
            a, b = b, a
            d = {**d, "gray0": d["gray1"], "gray1": d["gray0"], "pairs": d["pairs"][:, [2, 3, 0, 1]]}
        pos = d["pairs"]
        if len(pos) < self.params.min_correspondences:
            return Skipped(key, f"scene {scene.name}: {a} / {b}: too few positives ({len(pos)})")
        anchor = pos[rng.integers(len(pos))]
        c0, o0 = self._crop(d["gray0"], anchor[:2], rng)
        c1, o1 = self._crop(d["gray1"], anchor[2:], rng)
        pairs = pos - np.concatenate([o0, o1]).astype(np.float32)
        h0, w0 = c0.shape
        h1, w1 = c1.shape
        inside = (
            (pairs[:, 0] >= 0) & (pairs[:, 0] <= w0 - 1) & (pairs[:, 1] >= 0) & (pairs[:, 1] <= h0 - 1)
            & (pairs[:, 2] >= 0) & (pairs[:, 2] <= w1 - 1) & (pairs[:, 3] >= 0) & (pairs[:, 3] <= h1 - 1)
        )
        pairs = pairs[inside]
        if len(pairs) < min(self.params.min_correspondences, 8):
            return Skipped(key, f"scene {scene.name}: {a} / {b}: too few positives inside the crops ({len(pairs)})")
        ph = self.params.photometric
        img0 = photometric(c0.astype(np.float32) / 255.0, ph, rng) - 0.5
        img1 = photometric(c1.astype(np.float32) / 255.0, ph, rng) - 0.5
        return {"img0": img0, "img1": img1, "pairs": pairs, "path": f"{scene.name}/{a}|{b}"}


class MixedDataset:
    """Each key goes to one of several data sets, drawn by fixed weights (homography vs posed)."""

    def __init__(self, datasets: Sequence[Any], weights: Sequence[float], seed: int = 0) -> None:
        if len(datasets) != len(weights) or not datasets:
            raise ValueError("one weight per data set")
        w = np.asarray(weights, dtype=np.float64)
        if np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"mixing weights must be non-negative and not all zero, got {list(weights)}")
        self.datasets = list(datasets)
        self.cdf = np.cumsum(w / w.sum())
        self.seed = seed

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    @property
    def scene_names(self) -> list[str]:
        """The scenes of the member data sets that have scenes (the posed ones)."""
        return [n for d in self.datasets for n in getattr(d, "scene_names", [])]

    def __getitem__(self, key: Key) -> dict[str, Any] | Skipped:
        u = sample_rng(self.seed, key, salt=7).random()
        k = int(np.searchsorted(self.cdf, u, side="right"))
        return self.datasets[min(k, len(self.datasets) - 1)][key]
