"""Command-line options: the seed's flag names and defaults, plus what this trainer adds.

    cfg = parse_args(["--dataset", "homography", "--data_dir", "photos", "--model", "ResUNetBN2F"])
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ucn_gui import package_version
from ucn_gui.core.devices import DeviceNameError, check_device_name
from ucn_gui.core.model import ARCHITECTURES

DATASET_ALIASES = {"yfcc": "yfcc", "yfcc100mdataset": "yfcc", "yfcc100m": "yfcc", "homography": "homography", "posed": "posed"}
# The posed scenes held out for validation by default (see data/posed/README.md's suggested split).
DEFAULT_VAL_SCENES = ["strecha_fountain_p11", "middlebury_dino_sparse_ring", "nerd_mother_child"]


class ConfigError(ValueError):
    """An option the run cannot use (a missing folder, nothing to resume...); the message names it and why."""


class _Parser(argparse.ArgumentParser):
    """An option error is one line, ``python -m trainer: error: ...`` (exit code 2), not the whole usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def str2bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes", "on"):
        return True
    if v.lower() in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {v!r}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m trainer",
        description="Train a UCN model with the hardest-contrastive loss (YFCC or any folder of photos).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    g = p.add_argument_group("output")
    g.add_argument("--out_dir", default=None,
                   help="checkpoints, logs, plots and the exported model (default: the --resume folder, else runs/ucn)")
    g.add_argument("--stat_freq", type=int, default=40, help="log the loss every this many iterations")
    g.add_argument("--save_all_ranks", action="store_true",
                   help="data-parallel check: every process also writes its final weights to final_rank<R>.pth")
    g.add_argument("--save_freq_epoch", type=int, default=0, help="also keep checkpoint_epochNNN.pth every N epochs (0: latest only)")

    g = p.add_argument_group("loss (the seed's)")
    g.add_argument("--num_pos_per_batch", type=int, default=1024, help="positives sampled per image pair")
    g.add_argument("--num_hn_samples_per_batch", type=int, default=40000, help="hardest-negative candidates per image")
    g.add_argument("--pos_thresh", type=float, default=0.1, help="margin on squared positive distances")
    g.add_argument("--neg_thresh", type=float, default=1.4, help="margin on squared negative distances")
    g.add_argument("--neg_weight", type=float, default=1.0)
    g.add_argument("--ucn_inlier_threshold_pixel", type=float, default=4.0,
                   help="pixels: negatives closer than this to the true match are excluded; validation hit radius")

    g = p.add_argument_group("loop")
    g.add_argument("--batch_size", type=int, default=2)
    g.add_argument("--val_batch_size", type=int, default=1)
    g.add_argument("--iter_size", type=int, default=1, help="accumulate gradients over this many batches")
    g.add_argument("--train_max_iter", type=int, default=2000, help="iterations per epoch")
    g.add_argument("--val_max_iter", type=int, default=400, help="validation pairs per epoch")
    g.add_argument("--max_epoch", type=int, default=100)
    g.add_argument("--max_time_min", type=float, default=0.0,
                   help="stop after this many minutes of training (0: no limit); the epoch in progress ends early, "
                        "is validated and checkpointed")
    g.add_argument("--test_valid", type=str2bool, default=True, help="validate each epoch")
    g.add_argument("--val_epoch_freq", type=int, default=1)
    g.add_argument("--best_val_metric", default="mma3",
                   choices=["mma3", "correct3", "hit_ratio", "reciprocity_ratio", "reciprocity_hit_ratio"],
                   help="mma3 / correct3: the product's matching pipeline at its default thresholds on fixed validation "
                        "pairs (share of kept matches within 3 px; correct kept matches per pair); the others are the "
                        "seed's positive-based ratios")
    g.add_argument("--val_photos", nargs="+", default=None,
                   help="photos (or folders) for synthetic validation pairs (default: --val_data_dir, else the bundled samples)")
    g.add_argument("--val_pairs_per_photo", type=int, default=1, help="synthetic validation pairs per photo and strength (3 strengths)")
    g.add_argument("--val_pairs_per_scene", type=int, default=4, help="posed validation pairs per validation scene")
    g.add_argument("--seed", type=int, default=0, help="everything random in training derives from it: a run repeats")
    g.add_argument("--val_seed", type=int, default=0,
                   help="draws the validation pairs; apart from --seed so that runs of different seeds validate on the same pairs")
    g.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    g.add_argument("--num_workers", type=int, default=None, help="data loading processes (sets both below)")
    g.add_argument("--train_num_workers", type=int, default=2)
    g.add_argument("--val_num_workers", type=int, default=1)
    g.add_argument("--use_gpu", type=str2bool, default=True, help="the seed's switch; false forces the CPU")

    g = p.add_argument_group("model")
    g.add_argument("--model", default="ResUNetBN2D2", choices=sorted(ARCHITECTURES))
    g.add_argument("--model_n_out", type=int, default=64, help="descriptor channels")
    g.add_argument("--bn_momentum", type=float, default=0.05)
    g.add_argument("--norm", default=None, choices=["per-image", "running"],
                   help="batch-norm layers: per-image statistics (train and inference alike; right for small batches) "
                        "or running statistics (open-ucn); default per-image, or what --weights' model card says")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="autocast for the network (loss terms stay fp32); auto: bf16 where the hardware runs it "
                        "natively (CPU with avx512_bf16/AMX, CUDA with bf16), else fp32")
    g.add_argument("--channels_last", type=str2bool, default=None, help="channels-last memory format (default: on with bf16/fp16 on CUDA; off on the CPU, where it slows the backward pass)")
    g.add_argument("--weights", default=None, help="start from any model file the app can load")
    g.add_argument("--resume", default=None, help="a training checkpoint (or its folder) to continue")

    g = p.add_argument_group("optimizer")
    g.add_argument("--optimizer", default="SGD", type=str.lower, choices=["sgd", "adam"])
    g.add_argument("--lr", type=float, default=None, help="default 0.1 for SGD (the seed), 1e-3 for Adam")
    g.add_argument("--momentum", type=float, default=0.8)
    g.add_argument("--weight_decay", type=float, default=1e-4)
    g.add_argument("--adam_beta1", type=float, default=0.9)
    g.add_argument("--adam_beta2", type=float, default=0.999)
    g.add_argument("--exp_gamma", type=float, default=0.99, help="learning rate x this after every epoch")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="YFCC100MDataset", type=str.lower, choices=sorted(DATASET_ALIASES),
                   help="YFCC100MDataset (the seed) or homography (any folder of photos)")
    g.add_argument("--data_dir_raw", default=None, help="YFCC: the raw data set")
    g.add_argument("--data_dir_processed", default=None, help="YFCC: output of python -m trainer.prepare_yfcc")
    g.add_argument("--train_phase", default="train")
    g.add_argument("--val_phase", default="val")
    g.add_argument("--scenes", nargs="+", default=None, help="YFCC: only scenes whose names start with these")
    g.add_argument("--obj_num_kp", type=int, default=2000, help="YFCC: SIFT keypoints per image")
    g.add_argument("--inlier_threshold_pixel", type=float, default=0.01,
                   help="YFCC: symmetric epipolar distance (normalised coordinates) below which a SIFT match is positive")
    g.add_argument("--use_ratio_test", type=str2bool, default=False, help="YFCC: ratio test on SIFT matches")
    g.add_argument("--data_dir", nargs="+", default=None, help="homography: one or more folders of photos (searched recursively)")
    g.add_argument("--val_data_dir", nargs="+", default=None, help="homography: folders for validation pairs")
    g.add_argument("--val_split", type=float, default=0.0,
                   help="homography without --val_data_dir: hold out this share of the photos for validation "
                        "(0: validate on fixed synthetic pairs of the training photos)")
    g.add_argument("--crop_size", type=int, default=256, help="homography: side of the square crops")
    g.add_argument("--max_image_side", type=int, default=None,
                   help="photos are shrunk to this long side on load (homography default 640; YFCC default: full size)")
    g.add_argument("--max_rotation", type=float, default=30.0, help="homography: degrees")
    g.add_argument("--min_scale", type=float, default=0.7, help="homography: zoom range of the second image")
    g.add_argument("--max_scale", type=float, default=1.4)
    g.add_argument("--perspective", type=float, default=0.1, help="homography: corner jitter, fraction of the side")
    g.add_argument("--posed_dir", nargs="+", default=None,
                   help="posed: scene folders with cameras.json (or folders holding such scenes)")
    g.add_argument("--val_scenes", nargs="*", default=DEFAULT_VAL_SCENES,
                   help="posed: whole scenes kept for validation only (their group, e.g. strecha_castle_*, never trains)")
    g.add_argument("--posed_ratio", type=float, default=0.5,
                   help="posed with --data_dir: share of training pairs that are real posed pairs (the rest homography)")
    g.add_argument("--estimated_share", type=float, default=None,
                   help="posed: share of the posed pairs drawn from scenes of estimated geometry (trainer.estimate_pairs; "
                        "default: every pair equally likely)")
    g.add_argument("--epipolar_threshold", type=float, default=1.5,
                   help="posed: px (at the training resolution); a SIFT match is positive below this symmetric epipolar distance")
    g.add_argument("--posed_ratio_test", type=float, default=0.9, help="posed: SIFT ratio test for candidate matches (1: none)")
    g.add_argument("--min_correspondences", type=int, default=None,
                   help="skip a sample with fewer (homography default 64, YFCC 16)")
    return p


def finalize(cfg: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill defaults that depend on other options and check the combination."""
    cfg.dataset = DATASET_ALIASES[cfg.dataset]
    if cfg.out_dir is None:
        if cfg.resume:
            r = Path(cfg.resume)
            cfg.out_dir = str(r if r.is_dir() else r.parent)
        else:
            cfg.out_dir = "runs/ucn"
    if cfg.lr is None:
        cfg.lr = 0.1 if cfg.optimizer == "sgd" else 1e-3
    if cfg.num_workers is not None:
        cfg.train_num_workers = cfg.val_num_workers = cfg.num_workers
    if not cfg.use_gpu and cfg.device == "auto":
        cfg.device = "cpu"
    if cfg.dataset == "posed":
        if not cfg.posed_dir:
            parser.error("--dataset posed needs --posed_dir FOLDER [FOLDER ...]")
        if cfg.max_image_side is None:
            cfg.max_image_side = 640
        if cfg.min_correspondences is None:
            cfg.min_correspondences = 32
        if not 0.0 <= cfg.posed_ratio <= 1.0:
            parser.error("--posed_ratio must be between 0 and 1")
        if cfg.estimated_share is not None and not 0.0 <= cfg.estimated_share <= 1.0:
            parser.error("--estimated_share must be between 0 and 1")
    elif cfg.dataset == "homography":
        if not cfg.data_dir:
            parser.error("--dataset homography needs --data_dir FOLDER [FOLDER ...]")
        if cfg.max_image_side is None:
            cfg.max_image_side = 640
        if cfg.min_correspondences is None:
            cfg.min_correspondences = 64
    else:
        if not cfg.data_dir_raw or not cfg.data_dir_processed:
            parser.error("YFCC training needs --data_dir_raw and --data_dir_processed (or use --dataset homography --data_dir ...)")
        if cfg.max_image_side is None:
            cfg.max_image_side = 0
        if cfg.min_correspondences is None:
            cfg.min_correspondences = 16
    for name in ("batch_size", "iter_size", "train_max_iter", "max_epoch", "num_pos_per_batch", "num_hn_samples_per_batch",
                 "model_n_out", "stat_freq", "val_epoch_freq", "val_batch_size", "obj_num_kp"):
        if getattr(cfg, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(cfg, name)}")
    for name in ("seed", "save_freq_epoch", "val_max_iter", "train_num_workers", "val_num_workers", "val_pairs_per_photo",
                 "val_pairs_per_scene"):
        if getattr(cfg, name) < 0:
            parser.error(f"--{name} must not be negative, got {getattr(cfg, name)}")
    if cfg.dataset in ("homography", "posed") and cfg.crop_size < 32:
        parser.error(f"--crop_size must be at least 32 pixels, got {cfg.crop_size}")
    if cfg.max_image_side < 0 or 0 < cfg.max_image_side < 32:
        parser.error(f"--max_image_side must be 0 (full size) or at least 32, got {cfg.max_image_side}")
    for name in ("lr", "exp_gamma", "pos_thresh", "neg_thresh", "min_scale", "max_scale", "epipolar_threshold",
                 "ucn_inlier_threshold_pixel", "inlier_threshold_pixel"):
        value = getattr(cfg, name)
        if not (math.isfinite(value) and value > 0):
            parser.error(f"--{name} must be a positive number, got {value}")
    for name in ("momentum", "weight_decay", "neg_weight", "max_time_min", "max_rotation", "perspective", "bn_momentum"):
        value = getattr(cfg, name)
        if not (math.isfinite(value) and value >= 0):
            parser.error(f"--{name} must be a number of at least 0, got {value}")
    if cfg.min_scale > cfg.max_scale:
        parser.error(f"--min_scale {cfg.min_scale} is above --max_scale {cfg.max_scale}")
    if not 0.0 <= cfg.val_split < 1.0:
        parser.error(f"--val_split must be at least 0 and below 1, got {cfg.val_split}")
    try:
        cfg.device = check_device_name(cfg.device)
    except DeviceNameError as exc:
        parser.error(f"--device: {exc}")
    return cfg


def _folders(option: str, paths: Sequence[str] | None) -> None:
    for path in map(Path, paths or []):
        if not path.exists():
            raise ConfigError(f"{option} {path}: no such folder")


def check_inputs(cfg: argparse.Namespace) -> None:
    """ConfigError naming the option when a file or folder the run needs is missing or unusable.

    Run before any work starts (``python -m trainer`` does); cheap: it lists folders and
    opens nothing large. The data sets check the content of what they find themselves.
    """
    from .checkpoints import LATEST
    from .datasets.common import IMAGE_SUFFIXES
    from .datasets.homography import list_images

    for option, paths in (("--data_dir", cfg.data_dir), ("--val_data_dir", cfg.val_data_dir), ("--val_photos", cfg.val_photos)):
        _folders(option, paths)
        for path in map(Path, paths or []):
            if path.is_dir() and not list_images([path]):
                raise ConfigError(f"{option} {path}: no images in this folder (or below it)")
            if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ConfigError(f"{option} {path}: neither a folder nor an image")
    _folders("--posed_dir", cfg.posed_dir)
    if cfg.dataset == "yfcc":
        _folders("--data_dir_raw", [cfg.data_dir_raw])
        _folders("--data_dir_processed", [cfg.data_dir_processed])
    if cfg.weights is not None and not Path(cfg.weights).is_file():
        raise ConfigError(f"--weights {cfg.weights}: no such file")
    if cfg.resume is not None:
        resume = Path(cfg.resume)
        if not resume.exists():
            raise ConfigError(f"--resume {resume}: no such file or folder")
        if resume.is_dir() and not (resume / LATEST).is_file():
            raise ConfigError(f"--resume {resume}: the folder has no {LATEST} yet, so there is nothing to resume "
                              "(a run writes it at the end of its first epoch); start without --resume")
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out_dir {out}: exists and is not a folder")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    return finalize(parser.parse_args(argv), parser)


def to_plain(cfg: argparse.Namespace) -> dict[str, Any]:
    """The options as plain types only, for checkpoints that torch.load(weights_only=True) opens."""
    out: dict[str, Any] = {}
    for k, v in vars(cfg).items():
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [str(x) for x in v]
        else:
            out[k] = str(v)
    return out
