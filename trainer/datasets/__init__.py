"""Training and validation data sets chosen by the command line."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..config import ConfigError
from .common import VALIDATION_STREAM, KeySampler, Skipped, collate_pairs
from .homography import HomographyDataset, HomographyParams, list_images
from .posed import MixedDataset, PosedDataset, PosedParams, SceneError, split_scenes
from .yfcc import YFCCDataset, YFCCParams

__all__ = [
    "VALIDATION_STREAM",
    "HomographyDataset",
    "HomographyParams",
    "KeySampler",
    "MixedDataset",
    "PosedDataset",
    "PosedParams",
    "SceneError",
    "Skipped",
    "YFCCDataset",
    "YFCCParams",
    "collate_pairs",
    "list_images",
    "make_datasets",
]


def homography_params(cfg: argparse.Namespace) -> HomographyParams:
    return HomographyParams(
        crop_size=cfg.crop_size,
        max_rotation_deg=cfg.max_rotation,
        min_scale=cfg.min_scale,
        max_scale=cfg.max_scale,
        perspective=cfg.perspective,
        max_image_side=cfg.max_image_side,
        min_correspondences=cfg.min_correspondences,
    )


def posed_params(cfg: argparse.Namespace) -> PosedParams:
    return PosedParams(
        crop_size=cfg.crop_size,
        max_image_side=cfg.max_image_side,
        epipolar_threshold=cfg.epipolar_threshold,
        ratio=cfg.posed_ratio_test,
        min_correspondences=cfg.min_correspondences,
        photometric=homography_params(cfg),
    )


def make_datasets(cfg: argparse.Namespace) -> tuple[Any, Any | None]:
    """(train, validation or None) for the options in ``cfg``."""
    if cfg.dataset == "posed":
        params = posed_params(cfg)
        train_scenes, val_scenes = split_scenes(cfg.posed_dir, cfg.val_scenes or [], params)
        if not train_scenes:
            raise SceneError("every posed scene is held out for validation: nothing left to train on")
        train: Any = PosedDataset(train_scenes, params, seed=cfg.seed)
        estimated = [sc for sc in train_scenes if not sc.cameras]
        known = [sc for sc in train_scenes if sc.cameras]
        if cfg.estimated_share is not None and estimated and known:
            # Pairs of estimated geometry (landmark photos) are few next to the camera scenes'
            # pairs; a fixed share keeps them from being drowned out by pair count.
            train = MixedDataset([PosedDataset(known, params, seed=cfg.seed), PosedDataset(estimated, params, seed=cfg.seed)],
                                 [1.0 - cfg.estimated_share, cfg.estimated_share], seed=cfg.seed + 11)
        if cfg.data_dir and cfg.posed_ratio < 1.0:
            photos = HomographyDataset(cfg.data_dir, homography_params(cfg), seed=cfg.seed)
            train = MixedDataset([train, photos], [cfg.posed_ratio, 1.0 - cfg.posed_ratio], seed=cfg.seed)
        # Validation pairs are whole images: the search covers all of the other image, as in the app.
        val_params = dataclasses.replace(params, crop_size=0)
        val = PosedDataset(val_scenes, val_params, seed=cfg.seed + 1) if val_scenes else None
        return train, val
    if cfg.dataset == "homography":
        params = homography_params(cfg)
        train = HomographyDataset(cfg.data_dir, params, seed=cfg.seed)
        if cfg.val_data_dir:
            val = HomographyDataset(cfg.val_data_dir, params, seed=cfg.seed + 1)
        elif cfg.val_split > 0:
            files = train.files
            n_val = max(1, round(len(files) * cfg.val_split))
            if n_val >= len(files):
                raise ConfigError(f"--val_split {cfg.val_split} leaves no training photos out of {len(files)}")
            # Every k-th photo, so the held-out ones spread over all folders.
            step = len(files) / n_val
            held = {files[int(i * step)] for i in range(n_val)}
            train = HomographyDataset([f for f in files if f not in held], params, seed=cfg.seed)
            val = HomographyDataset(sorted(held), params, seed=cfg.seed + 1)
        else:
            val = HomographyDataset(cfg.data_dir, params, seed=cfg.seed + 1)
        return train, val
    params = YFCCParams(
        num_keypoints=cfg.obj_num_kp,
        inlier_threshold=cfg.inlier_threshold_pixel,
        use_ratio_test=cfg.use_ratio_test,
        max_image_side=cfg.max_image_side,
        min_correspondences=cfg.min_correspondences,
    )
    train = YFCCDataset(cfg.data_dir_raw, cfg.data_dir_processed, cfg.train_phase, params, cfg.seed, cfg.scenes)
    try:
        val = YFCCDataset(cfg.data_dir_raw, cfg.data_dir_processed, cfg.val_phase, params, cfg.seed + 1, cfg.scenes)
    except FileNotFoundError:
        val = None
    return train, val
