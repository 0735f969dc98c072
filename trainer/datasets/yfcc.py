"""YFCC100M pairs as the seed trains on them: SIFT matches labelled by the ground-truth epipolar geometry.

    ds = YFCCDataset(raw_dir, processed_dir, phase="train", params=YFCCParams())
    sample = ds[(1, 0)]   # img0, img1 (full images, gray in [-0.5, 0.5]); pairs: positives P x 4

At load time SIFT keypoints of both images are matched by nearest neighbour (optional
ratio test); a match is a positive when its symmetric epipolar distance under the
essential matrix of the two cameras is below ``inlier_threshold`` (normalised camera
coordinates, the seed's ``--inlier_threshold_pixel`` = 0.01).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ucn_gui import ImageLoadError, read_rgb, shrink_to_max_side

from ..geometry import essential_matrix, normalize_keypoints, parse_calibration, symmetric_epipolar_distance
from .common import Key, KeyedOrder, Skipped


@dataclass
class YFCCParams:
    num_keypoints: int = 2000  # the seed's --obj_num_kp
    inlier_threshold: float = 0.01  # the seed's --inlier_threshold_pixel (normalised coordinates)
    use_ratio_test: bool = False
    ratio: float = 0.75
    max_image_side: int = 0  # 0: full resolution, as the seed
    min_correspondences: int = 16


def list_pair_files(processed_dir: str | os.PathLike, phase: str, scenes: list[str] | None = None) -> list[Path]:
    root = Path(processed_dir)
    files = sorted(root.glob(f"*/{phase}_*.npz"))
    if scenes:
        files = [f for f in files if any(f.parent.name.startswith(s) for s in scenes)]
    return files


def sift_match(gray0: np.ndarray, gray1: np.ndarray, params: YFCCParams) -> np.ndarray:
    """M x 4 float64 (x0, y0, x1, y1) nearest-neighbour SIFT matches of two uint8 images."""
    sift = cv2.SIFT_create(nfeatures=params.num_keypoints, contrastThreshold=1e-5)
    kp0, d0 = sift.detectAndCompute(gray0, None)
    kp1, d1 = sift.detectAndCompute(gray1, None)
    if d0 is None or d1 is None or len(kp0) < 2 or len(kp1) < 2:
        return np.zeros((0, 4))
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d0, d1, k=2)  # exact and deterministic, unlike FLANN
    if params.use_ratio_test:
        matches = [m for m in matches if len(m) == 2 and m[0].distance < params.ratio * m[1].distance]
    xy0 = np.array([kp0[m[0].queryIdx].pt for m in matches], dtype=np.float64).reshape(-1, 2)
    xy1 = np.array([kp1[m[0].trainIdx].pt for m in matches], dtype=np.float64).reshape(-1, 2)
    return np.concatenate([xy0, xy1], 1)


def _shrink(gray: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    small = shrink_to_max_side(gray, max_side)
    return small, small.shape[1] / gray.shape[1]


class YFCCDataset:
    """Pair files from trainer.prepare_yfcc (or open-ucn's gen_yfcc), keyed as in datasets.common."""

    def __init__(
        self,
        raw_dir: str | os.PathLike,
        processed_dir: str | os.PathLike,
        phase: str = "train",
        params: YFCCParams | None = None,
        seed: int = 0,
        scenes: list[str] | None = None,
    ) -> None:
        self.raw_dir = Path(raw_dir)
        self.files = list_pair_files(processed_dir, phase, scenes)
        if not self.files:
            raise FileNotFoundError(f"no {phase}_*.npz pair files under {processed_dir}/*/ (run python -m trainer.prepare_yfcc)")
        self.params = params or YFCCParams()
        self.order = KeyedOrder(len(self.files), seed)

    def __len__(self) -> int:
        return len(self.files)

    def load_pair(self, path: Path) -> dict[str, Any]:
        """Everything about one pair file, before the correspondence check; raises on unusable data."""
        with np.load(path, allow_pickle=False) as data:
            paths = (str(data["img_path0"]), str(data["img_path1"]))
            calib0, calib1 = parse_calibration(data["calib0"]), parse_calibration(data["calib1"])
        grays = [cv2.cvtColor(read_rgb(self.raw_dir / p), cv2.COLOR_RGB2GRAY) for p in paths]
        matches = sift_match(grays[0], grays[1], self.params)
        E = essential_matrix(calib0, calib1)
        x0 = normalize_keypoints(matches[:, :2], calib0["K"], calib0["imsize"])
        x1 = normalize_keypoints(matches[:, 2:], calib1["K"], calib1["imsize"])
        residual = symmetric_epipolar_distance(E, x0, x1)
        labels = residual < self.params.inlier_threshold
        return {"gray0": grays[0], "gray1": grays[1], "matches": matches, "labels": labels, "residual": residual}

    def __getitem__(self, key: Key) -> dict[str, Any] | Skipped:
        path = self.files[self.order(key)]
        try:
            d = self.load_pair(path)
        except ImageLoadError as exc:
            return Skipped(key, f"{path.name}: unreadable image: {exc}")
        except (OSError, KeyError, ValueError, np.linalg.LinAlgError) as exc:
            return Skipped(key, f"{path.name}: unreadable pair file ({type(exc).__name__}: {exc})")
        pos = d["matches"][d["labels"]]
        if len(pos) < self.params.min_correspondences:
            return Skipped(key, f"{path.name}: too few correspondences ({len(pos)} of {len(d['matches'])} matches)")
        g0, f0 = _shrink(d["gray0"], self.params.max_image_side)
        g1, f1 = _shrink(d["gray1"], self.params.max_image_side)
        # Pixel centres stay aligned when shrinking: x' = (x + 0.5) f - 0.5.
        pairs = np.concatenate([(pos[:, :2] + 0.5) * f0 - 0.5, (pos[:, 2:] + 0.5) * f1 - 0.5], 1).astype(np.float32)
        return {
            "img0": g0.astype(np.float32) / 255.0 - 0.5,
            "img1": g1.astype(np.float32) / 255.0 - 0.5,
            "pairs": pairs,
            "num_matches": len(d["matches"]),
            "path": str(path),
        }
