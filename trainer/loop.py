"""The training loop: epochs of ``--train_max_iter`` iterations, validation, checkpoints, export.

    trainer = Trainer(cfg, ctx)     # builds model, optimizer, data; resumes if asked
    summary = trainer.fit()

Each iteration accumulates ``--iter_size`` batches; each batch runs the model once on
the 2B images (img0 and img1 stacked), mines hardest negatives and back-propagates.
"""
from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ucn_gui import load_model, save_model
from ucn_gui.core.allocator import keep_freed_memory
from ucn_gui.core.files import remove_stale_temp_files
from ucn_gui.core.model import build_model
from ucn_gui.core.precision import autocast, resolve_precision

from . import checkpoints as ckpt
from .config import to_plain
from .datasets import KeySampler, collate_pairs, make_datasets
from .distributed import DistContext, barrier, broadcast_buffers
from .logs import RunLog, plot_curves
from .loss import LossParams, hardest_contrastive_loss
from .validate import MATCHING_METRICS, flatten_accuracy, validate, validate_matching

log = logging.getLogger("trainer")

MAX_EMPTY_BATCHES = 100


@dataclass
class StepStats:
    loss: float = 0.0
    pos_loss: float = 0.0
    neg_loss: float = 0.0
    forward_s: float = 0.0
    mining_s: float = 0.0
    loss_s: float = 0.0  # loss terms other than mining
    backward_s: float = 0.0
    optimizer_s: float = 0.0
    skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)


def loss_params(cfg: argparse.Namespace) -> LossParams:
    return LossParams(
        pos_thresh=cfg.pos_thresh,
        neg_thresh=cfg.neg_thresh,
        neg_weight=cfg.neg_weight,
        num_pos=cfg.num_pos_per_batch,
        num_candidates=cfg.num_hn_samples_per_batch,
        inlier_threshold_pixel=cfg.ucn_inlier_threshold_pixel,
    )


def make_optimizer(cfg: argparse.Namespace, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        params = list(params)
        kwargs = dict(lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.weight_decay)
        try:  # one fused kernel for all tensors: the step of this model takes 4.7 ms instead of 10 on 2 CPU cores
            return torch.optim.Adam(params, fused=True, **kwargs)
        except (RuntimeError, TypeError):  # a device (or an older torch) without the fused kernel
            return torch.optim.Adam(params, **kwargs)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    def __init__(self, cfg: argparse.Namespace, ctx: DistContext | None = None, command: str = "", build_data: bool = True) -> None:
        self.cfg = cfg
        self.ctx = ctx or DistContext()
        self.device = self.ctx.device
        self.command = command
        self.out_dir = Path(cfg.out_dir)
        torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts them)
        if self.device.type == "cpu" and keep_freed_memory():
            log.debug("glibc malloc keeps freed blocks in the heap (ucn_gui.core.allocator)")

        resume = ckpt.load_checkpoint(cfg.resume) if cfg.resume else None
        if resume is not None:
            saved = resume.get("config", {})
            cfg.model = saved.get("model", cfg.model)
            cfg.model_n_out = int(saved.get("model_n_out", cfg.model_n_out))
            cfg.norm = cfg.norm or saved.get("norm")
        loaded = load_model(cfg.weights) if cfg.weights and resume is None else None
        if loaded is not None:
            if (loaded.arch, loaded.n_out) != (cfg.model, cfg.model_n_out):
                log.info("--weights is a %s with %d outputs: using that instead of --model", loaded.arch, loaded.n_out)
                cfg.model, cfg.model_n_out = loaded.arch, loaded.n_out
            cfg.norm = cfg.norm or loaded.card.get("norm")
        # Batch-1 training gives batch norm the statistics of one pair only; per-image
        # statistics make training and inference normalise alike at any batch size.
        cfg.norm = cfg.norm or "per-image"
        self.model = build_model(cfg.model, cfg.model_n_out, bn_momentum=cfg.bn_momentum, norm=cfg.norm)
        if loaded is not None:
            self.model.load_state_dict(loaded.model.state_dict())
        self.precision = resolve_precision(cfg.precision, self.device)
        # channels_last speeds the forward pass, but on the CPU the training step's backward pays it
        # back in layout copies: bf16 alone ran 1.58 pairs/s at 256 px, bf16 + channels_last 1.50
        # (bench_training, 2 cores). On CUDA it is what tensor cores want.
        if cfg.channels_last is not None:
            self.channels_last = cfg.channels_last
        else:
            self.channels_last = self.precision != "fp32" and self.device.type == "cuda"
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=self.memory_format).train()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # crops have one size: pick the fastest kernels once
        # fp16 needs loss scaling; bf16 has fp32's range and does not.
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.net: torch.nn.Module = self.model
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)

        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=cfg.exp_gamma)
        self.loss_params = loss_params(cfg)
        if self.precision == "bf16":
            self.loss_params.mining_dtype = torch.bfloat16
        self.start_epoch, self.step = 1, 0
        self.best_val, self.best_epoch = -math.inf, 0
        self.best_metrics: dict[str, float] = {}
        self.wall_time = 0.0
        self.skipped_total = 0
        if resume is not None:
            self.model.load_state_dict(resume["state_dict"])
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])
            self.start_epoch = int(resume["epoch"]) + 1
            self.step = int(resume.get("step", 0))
            self.best_val = float(resume.get("best_val", -math.inf))
            self.best_epoch = int(resume.get("best_val_epoch", 0))
            self.best_metrics = dict(resume.get("best_metrics", {}))
            self.wall_time = float(resume.get("wall_time", 0.0))
            self.skipped_total = int(resume.get("skipped", 0))
            if self.ctx.is_main:
                log.info("resuming %s after epoch %d (iteration %d)", cfg.resume, self.start_epoch - 1, self.step)

        self.train_set = self.val_set = None
        if build_data:
            self.train_set, self.val_set = make_datasets(cfg)
        if self.ctx.is_main and build_data:
            # Writes killed mid-way (kill -9, power cut) leave hidden temporary files; the
            # run starting in this folder now is the only writer, so they can go.
            stale = remove_stale_temp_files(self.out_dir)
            if stale:
                log.info("removed %d temporary file(s) left by an interrupted run in %s", len(stale), self.out_dir)
        self.runlog = RunLog(self.out_dir) if self.ctx.is_main and build_data else None
        self.val_pairs: list = []
        self.sift_reference: dict[str, float] = {}
        if build_data and self.ctx.is_main and cfg.test_valid and cfg.best_val_metric in MATCHING_METRICS:
            self.val_pairs = self._matching_pairs()

    def _matching_pairs(self) -> list:
        """Fixed validation pairs for the matching metric, and SIFT's figures on them (computed once)."""
        from ucn_gui.core.resources import samples_dir

        from .accuracy import evaluate_matcher, opencv_matcher, posed_pairs, synthetic_pairs
        from .datasets.homography import list_images

        cfg = self.cfg
        photos = list_images(cfg.val_photos or cfg.val_data_dir or [samples_dir()])
        pairs = synthetic_pairs(photos, cfg.val_pairs_per_photo, seed=cfg.val_seed + 2024)
        val = self.val_set
        if val is not None and hasattr(val, "scenes"):
            pairs += posed_pairs(val.scenes, cfg.val_pairs_per_scene)
        ref = flatten_accuracy(evaluate_matcher(opencv_matcher("SIFT", max_side=640), pairs))
        self.sift_reference = {"sift_mma3": ref["mma3"], "sift_correct3": ref["correct3"]}
        log.info("validation: %d pairs (%d synthetic from %d photos, %d posed); SIFT on them: MMA@3 %.3f, %.0f correct / pair",
                 len(pairs), sum(not p.posed for p in pairs), len(photos), sum(p.posed for p in pairs),
                 ref["mma3"], ref["correct3"])
        return pairs

    # ------------------------------------------------------------------ one iteration

    def train_step(self, batches: list[dict[str, Any]], generator: torch.Generator | None = None) -> StepStats:
        """One optimizer step over ``iter_size`` collated, non-empty batches."""
        st = StepStats()
        n = len(batches)
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(batches):
            # DDP averages gradients only on the last accumulated batch.
            sync = self.net.no_sync() if self.ctx.enabled and i < n - 1 else nullcontext()
            with sync:
                B = batch["img0"].shape[0]
                _sync(self.device)
                t0 = time.perf_counter()
                images = torch.cat([batch["img0"], batch["img1"]]).to(self.device, non_blocking=True)
                with autocast(self.precision, self.device):
                    feats = self.net(images.contiguous(memory_format=self.memory_format))
                feats = feats.float()  # mining and loss terms in fp32
                _sync(self.device)
                t1 = time.perf_counter()
                out = hardest_contrastive_loss(
                    feats[:B], feats[B:], batch["pairs"], self.loss_params, batch["sizes0"], batch["sizes1"], generator
                )
                loss = out.loss / n
                if not torch.isfinite(loss):  # keep every rank's backward in step; contribute nothing
                    log.warning("non-finite loss at iteration %d; batch ignored", self.step + 1)
                    loss = feats.sum() * 0.0
                _sync(self.device)
                t2 = time.perf_counter()
                (self.scaler.scale(loss) if self.scaler else loss).backward()
                _sync(self.device)
                t3 = time.perf_counter()
            st.loss += float(out.loss.detach()) / n
            st.pos_loss += float(out.pos_loss.detach()) / n
            st.neg_loss += float(out.neg_loss.detach()) / n
            st.forward_s += t1 - t0
            st.mining_s += out.mining_seconds
            st.loss_s += (t2 - t1) - out.mining_seconds
            st.backward_s += t3 - t2
        t4 = time.perf_counter()
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        _sync(self.device)
        st.optimizer_s = time.perf_counter() - t4
        return st

    # ------------------------------------------------------------------ data

    def _batches(self, epoch: int) -> Iterator[dict[str, Any]]:
        """Endless non-empty batches of this epoch's key stream; skipped samples are counted."""
        cfg = self.cfg
        loader = DataLoader(
            self.train_set,
            batch_size=cfg.batch_size,
            sampler=KeySampler(epoch, self.ctx.rank, self.ctx.world_size),
            collate_fn=collate_pairs,
            num_workers=cfg.train_num_workers,
            pin_memory=self.device.type == "cuda",
        )
        empty = 0
        for batch in loader:
            if batch["skipped"]:
                self._pending_skips.extend(batch["skipped"])
            if batch["img0"] is None:
                empty += 1
                if empty >= MAX_EMPTY_BATCHES:
                    reasons = "; ".join(batch["skipped"][-3:])
                    raise RuntimeError(f"{MAX_EMPTY_BATCHES} batches in a row had no usable sample (last: {reasons})")
                continue
            empty = 0
            yield batch

    # ------------------------------------------------------------------ epochs

    def fit(self) -> dict[str, Any]:
        cfg, ctx = self.cfg, self.ctx
        self._pending_skips: list[str] = []
        if ctx.is_main:
            log.info(
                "training %s (%d outputs) on %s, %d process(es), %s lr %g; output in %s",
                cfg.model, cfg.model_n_out, self.device, ctx.world_size, cfg.optimizer, cfg.lr, self.out_dir,
            )
        self._deadline = time.perf_counter() + cfg.max_time_min * 60.0 if cfg.max_time_min > 0 else math.inf
        self.stopped_early = False
        self.last_epoch = self.start_epoch - 1  # the last epoch trained (this run or the resumed one)
        for epoch in range(self.start_epoch, cfg.max_epoch + 1):
            t_epoch = time.perf_counter()
            self.train_epoch(epoch)
            broadcast_buffers(self.model, ctx)
            self.scheduler.step()
            self.wall_time += time.perf_counter() - t_epoch
            metrics: dict[str, float] = {}
            if ctx.is_main:
                if cfg.test_valid and epoch % cfg.val_epoch_freq == 0:
                    metrics = self.validate_epoch(epoch)
                self.end_of_epoch(epoch, metrics)
            barrier(ctx)
            self.last_epoch = epoch
            if self.stopped_early:
                log.info("--max_time_min %g reached after epoch %d", cfg.max_time_min, epoch)
                break
        return self.finish()

    def validate_epoch(self, epoch: int) -> dict[str, float]:
        """Matching accuracy (the product's pipeline) and the seed's hit ratios; logged and returned."""
        cfg = self.cfg
        metrics: dict[str, float] = {}
        t = time.perf_counter()
        if self.val_pairs:
            metrics.update(validate_matching(self.model, self.val_pairs, self.device))
            metrics.update(self.sift_reference)
            log.info(
                "epoch %d validation (%d pairs, %.0f s): MMA@1/3/5 %.3f / %.3f / %.3f, %.0f correct / pair (SIFT: %.3f, %.0f)",
                epoch, len(self.val_pairs), time.perf_counter() - t, metrics["mma1"], metrics["mma3"], metrics["mma5"],
                metrics["correct3"], metrics["sift_mma3"], metrics["sift_correct3"],
            )
        if self.val_set is not None and cfg.val_max_iter > 0:
            hits = validate(
                self.model, self.val_set, cfg.val_max_iter, cfg.num_pos_per_batch, cfg.ucn_inlier_threshold_pixel,
                self.device, seed=cfg.val_seed, num_workers=cfg.val_num_workers, batch_size=cfg.val_batch_size,
            )
            metrics.update(hits)
            log.info("epoch %d hit ratios: hit %.3f, reciprocity %.3f, reciprocity hit %.3f (%d pairs, %d skipped)",
                     epoch, hits["hit_ratio"], hits["reciprocity_ratio"], hits["reciprocity_hit_ratio"], hits["pairs"], hits["skipped"])
        if metrics:
            self.runlog.val(epoch, self.step, metrics)
        return metrics

    def train_epoch(self, epoch: int) -> None:
        cfg, ctx = self.cfg, self.ctx
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch * 7919 + ctx.rank)
        batches = self._batches(epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        bar = tqdm(total=cfg.train_max_iter, desc=f"epoch {epoch}/{cfg.max_epoch}", disable=not ctx.is_main, dynamic_ncols=True, leave=False)
        t_last = time.perf_counter()
        smooth = None
        try:
            for _ in range(cfg.train_max_iter):
                if time.perf_counter() > self._deadline:
                    self.stopped_early = True
                    break
                st = self.train_step([next(batches) for _ in range(cfg.iter_size)], gen)
                self.step += 1
                skipped = len(self._pending_skips)
                for reason in self._pending_skips:
                    log.debug("skipped: %s", reason)
                if skipped and ctx.is_main and self.skipped_total < 20:
                    log.warning("skipped sample: %s", self._pending_skips[0])
                self.skipped_total += skipped
                self._pending_skips.clear()
                now = time.perf_counter()
                it_s = 1.0 / max(now - t_last, 1e-9)
                t_last = now
                smooth = st.loss if smooth is None else 0.95 * smooth + 0.05 * st.loss
                if ctx.is_main:
                    self.runlog.train(
                        tb=self.step % cfg.stat_freq == 0, step=self.step, epoch=epoch, loss=st.loss, pos_loss=st.pos_loss,
                        neg_loss=st.neg_loss, lr=lr, it_per_s=it_s, skipped=self.skipped_total,
                    )
                    bar.set_postfix(loss=f"{smooth:.3f}", pos=f"{st.pos_loss:.3f}", neg=f"{st.neg_loss:.3f}", skipped=self.skipped_total)
                    bar.update(1)
        finally:
            bar.close()
            batches.close()  # stops the loader's workers

    def _state(self, epoch: int) -> dict[str, Any]:
        cfg = to_plain(self.cfg)
        return {
            "state_dict": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "best_val": self.best_val,
            "best_val_epoch": self.best_epoch,
            "best_metrics": self.best_metrics,
            "wall_time": self.wall_time,
            "skipped": self.skipped_total,
            "world_size": self.ctx.world_size,
            "command": self.command,
            "config": cfg,
            "model": self.cfg.model,
            "model_n_out": self.cfg.model_n_out,
        }

    def card(self, metrics: dict[str, float], epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        if cfg.dataset == "homography":
            data = {"kind": "homography", "train": list(map(str, cfg.data_dir)), "validation": list(map(str, cfg.val_data_dir or []))}
        elif cfg.dataset == "posed":
            train = self.train_set
            posed = train.datasets[0] if hasattr(train, "datasets") else train
            data = {"kind": "posed" if not cfg.data_dir else "posed+homography",
                    "posed_dirs": list(map(str, cfg.posed_dir)),
                    "train_scenes": posed.scene_names if posed is not None else [],
                    "validation_scenes": list(cfg.val_scenes or []),
                    "homography_photos": list(map(str, cfg.data_dir or [])),
                    "posed_ratio": cfg.posed_ratio if cfg.data_dir else 1.0,
                    "estimated_share": cfg.estimated_share,
                    "epipolar_threshold_px": cfg.epipolar_threshold}
        else:
            data = {"kind": "yfcc", "raw": str(cfg.data_dir_raw), "processed": str(cfg.data_dir_processed)}
        return {
            "name": f"{cfg.model}-{cfg.model_n_out}-{cfg.dataset}",
            "command": self.command,
            "training_data": data,
            "epoch": epoch,
            "iterations": self.step,
            "processes": self.ctx.world_size,
            "wall_time_s": round(self.wall_time, 1),
            "metrics": {k: v for k, v in metrics.items()},
            "loss": {"pos_thresh": cfg.pos_thresh, "neg_thresh": cfg.neg_thresh, "num_pos": cfg.num_pos_per_batch,
                     "num_candidates": cfg.num_hn_samples_per_batch, "inlier_threshold_pixel": cfg.ucn_inlier_threshold_pixel},
            "optimizer": {"name": cfg.optimizer, "lr": cfg.lr, "exp_gamma": cfg.exp_gamma, "iter_size": cfg.iter_size, "batch_size": cfg.batch_size},
            "crop_size": cfg.crop_size if cfg.dataset in ("homography", "posed") else None,
            "norm": cfg.norm,
            "precision": self.precision,
            "seed": cfg.seed,
        }

    def end_of_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Main process: latest checkpoint, optional numbered copy, best checkpoint + export."""
        cfg = self.cfg
        key = metrics.get(cfg.best_val_metric) if metrics else None
        improved = key is not None and key > self.best_val
        if improved:
            self.best_val, self.best_epoch, self.best_metrics = float(key), epoch, dict(metrics)
        state = self._state(epoch)
        ckpt.save_checkpoint(self.out_dir / ckpt.LATEST, state)
        if cfg.save_freq_epoch and epoch % cfg.save_freq_epoch == 0:
            ckpt.save_checkpoint(self.out_dir / f"checkpoint_epoch{epoch:03d}.pth", state)
        if improved:
            ckpt.save_checkpoint(self.out_dir / ckpt.BEST, state)
            save_model(self.out_dir / ckpt.BEST_EXPORT, self.model, self.card(metrics, epoch))
            log.info("epoch %d: best %s so far (%.4f); exported %s", epoch, cfg.best_val_metric, key, self.out_dir / ckpt.BEST_EXPORT)

    def finish(self) -> dict[str, Any]:
        """Export the final weights (and best.safetensors when validation never ran); plot; close logs."""
        summary = {"iterations": self.step, "best_val": self.best_val, "best_epoch": self.best_epoch, "skipped": self.skipped_total,
                   "wall_time_s": self.wall_time}
        if self.cfg.save_all_ranks:
            state = {"state_dict": self.model.state_dict(), "model": self.cfg.model, "model_n_out": self.cfg.model_n_out}
            ckpt.save_checkpoint(self.out_dir / f"final_rank{self.ctx.rank}.pth", state)
        if not self.ctx.is_main:
            return summary
        final_card = self.card(self.best_metrics if self.best_epoch == self.last_epoch else {}, self.last_epoch)
        save_model(self.out_dir / ckpt.FINAL_EXPORT, self.model, final_card)
        if self.best_epoch == 0:  # no validation: the final weights are the best we know
            save_model(self.out_dir / ckpt.BEST_EXPORT, self.model, final_card)
        if self.runlog is not None:
            self.runlog.close()
        summary["plot"] = str(plot_curves(self.out_dir))
        log.info("done: %d iterations in %.0f s, %d samples skipped; best %s %.4f at epoch %d",
                 self.step, self.wall_time, self.skipped_total, self.cfg.best_val_metric, self.best_val, self.best_epoch)
        return summary
