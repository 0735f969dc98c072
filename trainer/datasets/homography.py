"""Self-supervised pairs from any folder of photos: a random homography gives dense ground truth.

    ds = HomographyDataset(["photos/a", "photos/b"], HomographyParams(crop_size=256), seed=0)
    sample = ds[(1, 0)]   # img0, img1: 256 x 256 in [-0.5, 0.5]; pairs: P x 4 (x0, y0, x1, y1)

img0 is a square crop of the photo; img1 is the same place seen through a random
rotation, zoom and perspective change; both then get independent photometric
changes (gain, bias, blur, noise). Every pixel of img0 whose warped position lands
inside img1 (and inside the photo) is a correspondence.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ucn_gui import ImageLoadError, read_rgb, shrink_to_max_side

from .common import IMAGE_SUFFIXES, Key, KeyedOrder, Skipped, sample_rng


@dataclass
class HomographyParams:
    crop_size: int = 256
    max_rotation_deg: float = 30.0
    min_scale: float = 0.7  # zoom of img1 relative to img0
    max_scale: float = 1.4
    perspective: float = 0.1  # corner jitter, as a fraction of the crop's side in the photo
    max_translation: float = 0.1  # as a fraction of the crop's side
    gain: tuple[float, float] = (0.7, 1.3)
    bias: float = 0.1  # in [0, 1] intensity units
    blur_prob: float = 0.3
    max_blur_sigma: float = 1.5
    max_noise_std: float = 0.02
    max_image_side: int = 640  # photos are shrunk to this on load (0: never)
    min_correspondences: int = 64


def list_images(folders: Sequence[str | os.PathLike]) -> list[Path]:
    """Every image file under the folders (recursively), in a stable order."""
    found: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_file():
            found.append(folder)
            continue
        found.extend(p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return found


def random_homography_pair(
    photo_hw: tuple[int, int], params: HomographyParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(H0, H1): 3 x 3 maps from photo pixels to img0 and img1 pixels (crop_size squares)."""
    hs, ws = photo_hw
    S = params.crop_size
    side_max = float(min(hs, ws))
    # The crop spans between half the photo's short side and all of it (or the crop size when smaller).
    side = rng.uniform(min(side_max, max(S, 0.5 * side_max)), side_max)
    cx = rng.uniform(side / 2, ws - side / 2)
    cy = rng.uniform(side / 2, hs - side / 2)
    unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) / 2.0
    corners0 = unit * side + (cx, cy)

    angle = np.deg2rad(rng.uniform(-params.max_rotation_deg, params.max_rotation_deg))
    scale = np.exp(rng.uniform(np.log(params.min_scale), np.log(params.max_scale)))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    side1 = side / scale
    corners1 = (unit * side1) @ rot.T
    corners1 += rng.uniform(-params.perspective, params.perspective, size=(4, 2)) * side1
    corners1 += (cx, cy) + rng.uniform(-params.max_translation, params.max_translation, size=2) * side

    dst = np.array([[0, 0], [S - 1, 0], [S - 1, S - 1], [0, S - 1]], dtype=np.float32)
    H0 = cv2.getPerspectiveTransform(corners0.astype(np.float32), dst).astype(np.float64)
    H1 = cv2.getPerspectiveTransform(corners1.astype(np.float32), dst).astype(np.float64)
    return H0, H1


def apply_homography(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """N x 2 points through a 3 x 3 homography."""
    p = np.concatenate([xy, np.ones((len(xy), 1))], 1) @ H.T
    return p[:, :2] / p[:, 2:3]


def dense_correspondences(H0: np.ndarray, H1: np.ndarray, photo_hw: tuple[int, int], size: int) -> np.ndarray:
    """P x 4 float32 (x0, y0, x1, y1): every img0 pixel that lands inside img1 and inside the photo."""
    ys, xs = np.mgrid[0:size, 0:size]
    xy0 = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    src = apply_homography(np.linalg.inv(H0), xy0)
    xy1 = apply_homography(H1, src)
    hs, ws = photo_hw
    keep = (src[:, 0] >= 0) & (src[:, 0] <= ws - 1) & (src[:, 1] >= 0) & (src[:, 1] <= hs - 1)
    keep &= (xy1[:, 0] >= 0) & (xy1[:, 0] <= size - 1) & (xy1[:, 1] >= 0) & (xy1[:, 1] <= size - 1)
    return np.concatenate([xy0[keep], xy1[keep]], 1).astype(np.float32)


def photometric(img: np.ndarray, params: HomographyParams, rng: np.random.Generator) -> np.ndarray:
    """h x w float in [0, 1] -> changed gain, bias, blur and noise, still in [0, 1]."""
    out = img * rng.uniform(*params.gain) + rng.uniform(-params.bias, params.bias)
    if rng.random() < params.blur_prob:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(0.3, params.max_blur_sigma))
    out = out + rng.normal(0.0, rng.uniform(0, params.max_noise_std), size=out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class HomographyDataset:
    """Pairs made from photos by random homographies (keys: see datasets.common)."""

    CACHE_SIZE = 256  # decoded photos kept in memory (per worker process)

    def __init__(self, folders: Sequence[str | os.PathLike], params: HomographyParams, seed: int = 0) -> None:
        self.files = list_images(folders)
        if not self.files:
            raise FileNotFoundError(f"no images found in {', '.join(map(str, folders))}")
        self.params = params
        self.seed = seed
        self.order = KeyedOrder(len(self.files), seed)
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.files)

    def photo(self, path: Path) -> np.ndarray:
        """h x w float32 gray in [0, 1], shrunk to max_image_side; raises ImageLoadError."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        rgb = read_rgb(path)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        gray = shrink_to_max_side(gray, self.params.max_image_side).astype(np.float32) / 255.0
        self._cache[path] = gray
        if len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return gray

    def __getitem__(self, key: Key) -> dict[str, Any] | Skipped:
        path = self.files[self.order(key)]
        try:
            photo = self.photo(path)
        except ImageLoadError as exc:
            return Skipped(key, f"unreadable image: {exc}")
        p = self.params
        if min(photo.shape) < 16:
            return Skipped(key, f"{path}: image too small ({photo.shape[1]}x{photo.shape[0]})")
        rng = sample_rng(self.seed, key)
        H0, H1 = random_homography_pair(photo.shape, p, rng)
        pairs = dense_correspondences(H0, H1, photo.shape, p.crop_size)
        if len(pairs) < p.min_correspondences:
            return Skipped(key, f"{path}: too few correspondences ({len(pairs)})")
        S = (p.crop_size, p.crop_size)
        img0 = cv2.warpPerspective(photo, H0, S, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        img1 = cv2.warpPerspective(photo, H1, S, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        img0 = photometric(img0, p, rng) - 0.5
        img1 = photometric(img1, p, rng) - 0.5
        return {"img0": img0, "img1": img1, "pairs": pairs, "H01": H1 @ np.linalg.inv(H0), "path": str(path)}
