"""What a run leaves behind besides weights: CSV logs, TensorBoard events, a PNG of the curves.

    log = RunLog(out_dir)                       # only on the main process
    log.train(step=1, epoch=1, loss=..., ...)   # one row per iteration in train.csv
    log.val(epoch=1, step=100, metrics)         # one row per validation in val.csv
    log.close(); plot_curves(out_dir)           # -> training.png
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("trainer")

TRAIN_FIELDS = ["step", "epoch", "loss", "pos_loss", "neg_loss", "lr", "it_per_s", "skipped"]
VAL_FIELDS = [
    "epoch", "step", "mma1", "mma3", "mma5", "correct3", "kept", "synthetic_mma3", "synthetic_correct3", "h_acc",
    "posed_mma3", "posed_correct3", "posed_auc10", "sift_mma3", "sift_correct3",
    "hit_ratio", "reciprocity_ratio", "reciprocity_hit_ratio", "pairs", "skipped",
]


class RunLog:
    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._train_f, self._train = self._open("train.csv", TRAIN_FIELDS)
        self._val_f, self._val = self._open("val.csv", VAL_FIELDS)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))
            except Exception as exc:  # tensorboard is optional (the [train] extra)
                log.info("TensorBoard events off (%s)", exc)

    def _open(self, name: str, fields: list[str]) -> tuple[Any, csv.DictWriter]:
        path = self.out_dir / name
        new = not path.exists() or path.stat().st_size == 0
        f = open(path, "a", newline="")  # a resumed run appends
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        return f, w

    def train(self, tb: bool = False, **row: Any) -> None:
        self._train.writerow(row)
        self._train_f.flush()
        if tb and self.writer is not None:
            for k in ("loss", "pos_loss", "neg_loss", "lr", "it_per_s"):
                self.writer.add_scalar(f"train/{k}", row[k], row["step"])

    def val(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        self._val.writerow({"epoch": epoch, "step": step, **metrics})
        self._val_f.flush()
        if self.writer is not None:
            for k, v in metrics.items():
                if isinstance(v, float):
                    self.writer.add_scalar(f"val/{k}", v, epoch)

    def close(self) -> None:
        self._train_f.close()
        self._val_f.close()
        if self.writer is not None:
            self.writer.close()


def read_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows as floats; for a resumed run the later row of a repeated step/epoch wins."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]
    key = "step" if rows and "step" in rows[0] and "hit_ratio" not in rows[0] else "epoch"
    dedup = {r.get(key): r for r in rows}
    return [dedup[k] for k in sorted(dedup)]


def plot_curves(out_dir: str | Path, name: str = "training.png") -> Path | None:
    """Loss (raw and smoothed) and validation curves as a PNG; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("no matplotlib: skipping the plot")
        return None
    out_dir = Path(out_dir)
    train = read_csv(out_dir / "train.csv")
    val = read_csv(out_dir / "val.csv")
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        steps = [r["step"] for r in train]
        loss = [r["loss"] for r in train]
        ax0.plot(steps, loss, color="0.75", lw=0.6, label="loss")
        k = max(1, len(loss) // 50)
        smooth = [sum(loss[max(0, i - k + 1) : i + 1]) / len(loss[max(0, i - k + 1) : i + 1]) for i in range(len(loss))]
        ax0.plot(steps, smooth, color="C0", label=f"mean of {k}")
        ax0.set_xlabel("iteration")
        ax0.set_ylabel("hardest-contrastive loss")
        ax0.legend()
    if val:
        ep = [r["epoch"] for r in val]
        for key in ("mma3", "synthetic_mma3", "posed_mma3", "hit_ratio", "reciprocity_hit_ratio"):
            if any(key in r for r in val):
                ax1.plot(ep, [r.get(key, float("nan")) for r in val], marker="o", label=key)
        if val and "sift_mma3" in val[0]:
            ax1.axhline(val[0]["sift_mma3"], color="k", ls="--", lw=0.8, label="SIFT mma3")
        ax1.set_xlabel("epoch")
        ax1.set_ylim(0, 1)
        ax1.legend()
    ax1.set_title("validation")
    fig.tight_layout()
    path = out_dir / name
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
