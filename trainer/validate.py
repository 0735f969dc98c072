"""The seed's three validation numbers over fixed pairs.

    metrics = validate(model, val_dataset, num_pairs=50, num_pos=1024, threshold=4.0, device=dev)
    # {'hit_ratio': ..., 'reciprocity_ratio': ..., 'reciprocity_hit_ratio': ..., 'pairs': ..., 'skipped': ...}

hit ratio: share of positives whose nearest neighbour over the WHOLE other image lies
within ``threshold`` pixels of the true match; reciprocity ratio: share whose match
maps back within ``threshold`` of where it started; reciprocity hit ratio: the hit
ratio among those. Each is averaged per pair, then over pairs (as the seed does).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ucn_gui.core.nn import nearest_neighbors

from .datasets.common import VALIDATION_STREAM, KeySampler, collate_pairs


def _nearest_by_inner_product(queries: torch.Tensor, database: torch.Tensor) -> torch.Tensor:
    """Q x C, N x C -> Q indices of the max inner product (= nearest for unit vectors), searched in blocks."""
    return nearest_neighbors(queries.contiguous(), database.contiguous(), k=1)[1][:, 0]


@torch.no_grad()
def pair_metrics(
    F0: torch.Tensor,
    F1: torch.Tensor,
    pairs: torch.Tensor,
    num_pos: int,
    threshold: float,
    size0: tuple[int, int] | None = None,
    size1: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[float, float, float]:
    """(hit, reciprocity, reciprocity-hit) ratios of one pair.

    F0: C x H0 x W0, F1: C x H1 x W1 unit descriptors; pairs: P x 4 (x0, y0, x1, y1) pixels;
    size0 / size1: (h, w) of the unpadded images (the search covers only those).
    """
    if len(pairs) == 0:
        return 0.0, 0.0, 0.0
    h0, w0 = size0 or tuple(F0.shape[1:])
    h1, w1 = size1 or tuple(F1.shape[1:])
    db0 = F0[:, :h0, :w0].reshape(F0.shape[0], -1).t()  # h0*w0 x C
    db1 = F1[:, :h1, :w1].reshape(F1.shape[0], -1).t()
    sel = torch.randperm(len(pairs), generator=generator)[: min(num_pos, len(pairs))]
    p = pairs[sel].float().to(F0.device)
    x0 = p[:, 0].round().long().clamp(0, w0 - 1)
    y0 = p[:, 1].round().long().clamp(0, h0 - 1)
    q = db0[y0 * w0 + x0]
    nn1 = _nearest_by_inner_product(q, db1)
    nx1, ny1 = (nn1 % w1).float(), torch.div(nn1, w1, rounding_mode="floor").float()
    r2 = threshold**2
    hit = (nx1 - p[:, 2]) ** 2 + (ny1 - p[:, 3]) ** 2 < r2
    nn0 = _nearest_by_inner_product(db1[nn1], db0)
    nx0, ny0 = (nn0 % w0).float(), torch.div(nn0, w0, rounding_mode="floor").float()
    recip = (nx0 - x0.float()) ** 2 + (ny0 - y0.float()) ** 2 < r2
    n = float(len(p))
    n_recip = float(recip.sum())
    return float(hit.sum()) / n, n_recip / n, float((hit & recip).sum()) / max(n_recip, 1e-12)


@torch.no_grad()
def validate(
    model: nn.Module,
    dataset: Any,
    num_pairs: int,
    num_pos: int,
    threshold: float,
    device: torch.device,
    seed: int = 0,
    num_workers: int = 0,
    batch_size: int = 1,
) -> dict[str, float]:
    """Mean metrics over the first ``num_pairs`` validation keys (the same pairs every epoch)."""
    was_training = model.training
    model.eval()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=KeySampler(VALIDATION_STREAM, limit=num_pairs),
        collate_fn=collate_pairs,
        num_workers=num_workers,
    )
    g = torch.Generator().manual_seed(seed)
    sums = [0.0, 0.0, 0.0]
    n_pairs, skipped = 0, 0
    for batch in loader:
        skipped += len(batch["skipped"])
        if batch["img0"] is None:
            continue
        B = batch["img0"].shape[0]
        feats = model(torch.cat([batch["img0"], batch["img1"]]).to(device))
        for b in range(B):
            m = pair_metrics(
                feats[b], feats[B + b], batch["pairs"][b], num_pos, threshold, batch["sizes0"][b], batch["sizes1"][b], g
            )
            sums = [s + v for s, v in zip(sums, m)]
            n_pairs += 1
    model.train(was_training)
    k = max(n_pairs, 1)
    return {
        "hit_ratio": sums[0] / k,
        "reciprocity_ratio": sums[1] / k,
        "reciprocity_hit_ratio": sums[2] / k,
        "pairs": n_pairs,
        "skipped": skipped,
    }


MATCHING_METRICS = ("mma3", "correct3")


def flatten_accuracy(result: dict, prefix: str = "") -> dict[str, float]:
    """evaluate_matcher's nested result -> flat numbers for logs: mma1/3/5, correct3, kept (mean over
    synthetic and posed), then per kind (synthetic_*, posed_*), homography accuracy and pose AUC@10."""
    out: dict[str, float] = {}
    kinds = [k for k in ("synthetic", "posed") if k in result]
    for k in kinds:
        r = result[k]
        out[f"{prefix}{k}_mma3"] = r["mma"][2]
        out[f"{prefix}{k}_correct3"] = r["correct3"]
        if "h_acc" in r:
            out[f"{prefix}h_acc"] = r["h_acc"]
        if "pose_auc" in r:
            out[f"{prefix}posed_auc10"] = r["pose_auc"][1]
    if kinds:
        for name, idx in (("mma1", 0), ("mma3", 2), ("mma5", 4)):
            out[prefix + name] = sum(result[k]["mma"][idx] for k in kinds) / len(kinds)
        out[prefix + "correct3"] = sum(result[k]["correct3"] for k in kinds) / len(kinds)
        out[prefix + "kept"] = sum(result[k]["kept"] for k in kinds) / len(kinds)
    return out


@torch.no_grad()
def validate_matching(model: nn.Module, pairs: list, device: torch.device, filters: Any = None) -> dict[str, float]:
    """The product's matching pipeline on fixed validation pairs (trainer.accuracy), at the
    product's default thresholds unless ``filters`` says otherwise. Restores the model's mode."""
    from ucn_gui import FilterSettings

    from .accuracy import evaluate_matcher, ucn_matcher

    was_training = model.training
    try:
        result = evaluate_matcher(ucn_matcher(model, filters or FilterSettings(), device=device), pairs)
    finally:
        model.train(was_training)
    return flatten_accuracy(result)
