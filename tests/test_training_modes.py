"""Training the way the product runs: per-image normalisation, bf16 parity, a mixed posed run, overfitting one pair."""
from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.accuracy import match_errors, synthetic_pairs
from trainer.config import parse_args
from trainer.datasets import HomographyDataset, HomographyParams, collate_pairs
from trainer.distributed import DistContext
from trainer.loop import Trainer
from trainer.loss import LossParams, hardest_contrastive_loss
from trainer.validate import validate_matching
from ucn_gui.core.checkpoint import load_model, save_model
from ucn_gui.core.features import extract_features
from ucn_gui.core.filters import FilterSettings
from ucn_gui.core.image import prepare_image
from ucn_gui.core.model import build_model
from ucn_gui.core.nn import nearest_neighbors
from ucn_gui.core.precision import autocast
from ucn_gui.core.resources import models_dir, samples_dir

from trainer_fixtures import photo_folder

REPO = Path(__file__).resolve().parent.parent
POSED = REPO / "benchmarks" / "data" / "posed_val"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest


def test_per_image_norm_makes_an_image_independent_of_its_batch() -> None:
    torch.manual_seed(0)
    model = build_model("ResUNetBN2F", 8, norm="per-image").train()
    a, b = torch.rand(1, 1, 48, 48) - 0.5, torch.rand(1, 1, 48, 48) * 0.2
    alone = model(a)
    together = model(torch.cat([a, b]))[:1]
    assert torch.allclose(alone, together, atol=1e-5)
    assert torch.allclose(model.eval()(a), alone, atol=1e-5)  # eval == train: no running statistics involved
    running = build_model("ResUNetBN2F", 8).train()
    assert not torch.allclose(running(a), running(torch.cat([a, b]))[:1], atol=1e-3)


def test_norm_mode_travels_in_the_model_card(tmp_path: Path) -> None:
    model = build_model("ResUNetBN2F", 8, norm="per-image")
    path = save_model(tmp_path / "m.safetensors", model, {"name": "m"})
    loaded = load_model(path)
    assert loaded.card["norm"] == "per-image" and loaded.model.norm_mode == "per-image"
    card = json.loads((tmp_path / "m.json").read_text())
    card["norm"] = "sometimes"
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(Exception, match="m.json.*unknown \"norm\""):
        load_model(path)


def test_bundled_model_runs_per_image() -> None:
    assert load_model(models_dir() / "default.safetensors").model.norm_mode == "per-image"


def test_validation_measures_the_model_the_app_runs() -> None:
    """Raw nearest-neighbour accuracy of the bundled model on a synthetic pair: the window's worker path
    (prepare_image + PairFeatures.compute + match) and the validation path agree within 0.02."""
    from ucn_gui.core.matching import MatchOptions, PairFeatures, match

    loaded = load_model(models_dir() / "default.safetensors")
    pair = synthetic_pairs([samples_dir() / "sacre_coeur1.jpg"], 1, seed=5, max_side=640)[0]
    # The worker's way.
    img0, img1 = prepare_image(pair.img0, 640), prepare_image(pair.img1, 640)
    features = PairFeatures.compute(loaded.model, img0, img1, "cpu", None, threading.Event().is_set)
    ms = match(features, MatchOptions())
    app_acc = float((match_errors(pair, ms.keypoints0, ms.keypoints1) <= 3).mean())
    # The validation's way, raw candidates (no thresholds), with the model left in training mode as during a run.
    loaded.model.train()
    val_acc = validate_matching(loaded.model, [pair], torch.device("cpu"), FilterSettings(reciprocity=None, stability=None))["mma3"]
    assert loaded.model.training  # validation restores the mode it found
    assert abs(app_acc - val_acc) <= 0.02
    assert app_acc > 0.2  # and it is a real model, not noise


def test_bf16_step_loss_matches_fp32(tmp_path: Path) -> None:
    photos = photo_folder(tmp_path / "photos")
    ds = HomographyDataset([photos], HomographyParams(crop_size=96), seed=0)
    batch = collate_pairs([ds[(1, 0)], ds[(1, 1)]])
    torch.manual_seed(0)
    model = build_model("ResUNetBN2F", 16, norm="per-image").train()
    params = LossParams(num_pos=256, num_candidates=2000)
    images = torch.cat([batch["img0"], batch["img1"]])
    B = batch["img0"].shape[0]

    def loss(precision: str) -> float:
        m = model.to(memory_format=torch.channels_last if precision != "fp32" else torch.contiguous_format)
        with autocast(precision, "cpu"):
            f = m(images.contiguous(memory_format=torch.channels_last) if precision != "fp32" else images)
        f = f.float()
        g = torch.Generator().manual_seed(3)
        return float(hardest_contrastive_loss(f[:B], f[B:], batch["pairs"], params, batch["sizes0"], batch["sizes1"], g).loss.detach())

    ref, low = loss("fp32"), loss("bf16")
    assert abs(low - ref) / ref < 0.02


def test_a_mixed_posed_run_trains_and_validates_by_matching(tmp_path: Path) -> None:
    photos = photo_folder(tmp_path / "photos")
    out = tmp_path / "run"
    cfg = parse_args([
        "--dataset", "posed", "--posed_dir", str(POSED), "--val_scenes", "middlebury_dino_sparse_ring",
        "--data_dir", str(photos), "--posed_ratio", "0.5", "--model", "ResUNetBN2F", "--model_n_out", "16",
        "--crop_size", "128", "--num_hn_samples_per_batch", "2000", "--num_pos_per_batch", "256", "--batch_size", "2",
        "--train_max_iter", "3", "--max_epoch", "1", "--val_max_iter", "1", "--num_workers", "0", "--device", "cpu",
        "--optimizer", "adam", "--val_photos", str(samples_dir() / "DSC_0410.jpg"), "--val_pairs_per_scene", "1",
        "--out_dir", str(out),
    ])
    summary = Trainer(cfg, DistContext()).fit()
    assert summary["iterations"] == 3
    rows = list(csv.DictReader(open(out / "val.csv")))
    assert len(rows) == 1
    for key in ("mma3", "correct3", "synthetic_mma3", "posed_mma3", "sift_mma3", "hit_ratio"):
        assert 0.0 <= float(rows[0][key]) and rows[0][key] != ""
    assert float(rows[0]["sift_mma3"]) > 0.5  # the reference line is SIFT on the same pairs
    card = json.loads((out / "best.json").read_text())
    assert card["norm"] == "per-image"
    assert "middlebury_dino_sparse_ring" not in card["training_data"]["train_scenes"]
    assert card["training_data"]["validation_scenes"] == ["middlebury_dino_sparse_ring"]
    assert load_model(out / "best.safetensors").model.norm_mode == "per-image"


def test_runs_of_different_seeds_validate_on_the_same_pairs(tmp_path: Path) -> None:
    """--seed changes training only; the validation pairs come from --val_seed, so val.csv figures of two
    runs compare."""
    photos = photo_folder(tmp_path / "photos")

    def validation_images(*flags: str) -> list[np.ndarray]:
        cfg = parse_args([
            "--dataset", "homography", "--data_dir", str(photos), "--model", "ResUNetBN2F", "--model_n_out", "16",
            "--num_workers", "0", "--device", "cpu", "--val_photos", str(samples_dir() / "DSC_0410.jpg"),
            "--out_dir", str(tmp_path / "run"), *flags,
        ])
        return [p.img1 for p in Trainer(cfg, DistContext()).val_pairs]

    first, other_seed = validation_images("--seed", "1"), validation_images("--seed", "7")
    assert len(first) >= 2 and all(np.array_equal(a, b) for a, b in zip(first, other_seed, strict=True))
    other_val_seed = validation_images("--seed", "1", "--val_seed", "5")
    assert not all(np.array_equal(a, b) for a, b in zip(first, other_val_seed, strict=True))


def test_overfitting_one_pair_reaches_a_high_hit_ratio_through_the_product_path(tmp_path: Path) -> None:
    """Steps on one fixed pair, from the bundled model: its positives' nearest neighbours over the whole
    other image (features from ucn_gui.core.features, eval mode) land within 4 px for > 90 % of them,
    and clearly more than before training."""
    photos = photo_folder(tmp_path / "photos")
    ds = HomographyDataset([photos], HomographyParams(crop_size=96, max_rotation_deg=30, min_scale=0.8, max_scale=1.25), seed=2)
    sample = ds[(1, 0)]
    batch = collate_pairs([sample])
    pairs = torch.from_numpy(sample["pairs"])
    rgb = lambda a: np.repeat(((a + 0.5) * 255).round().astype(np.uint8)[..., None], 3, axis=2)  # noqa: E731

    def hit_ratio(model: torch.nn.Module) -> float:
        d0 = extract_features(model, prepare_image(rgb(sample["img0"])))
        d1 = extract_features(model, prepare_image(rgb(sample["img1"])))
        assert not model.training  # the product path runs the model in eval mode
        idx = pairs[:, 1].round().long() * 96 + pairs[:, 0].round().long()
        nn = nearest_neighbors(d0.flatten(1).t()[idx].contiguous(), d1.flatten(1).t().contiguous(), k=1)[1][:, 0]
        xy = torch.stack([nn % 96, nn // 96], 1).float()
        return float(((xy - pairs[:, 2:]).norm(dim=1) <= 4).float().mean())

    model = load_model(models_dir() / "default.safetensors").model
    before = hit_ratio(model)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    params = LossParams(num_pos=4096, num_candidates=96 * 96)
    g = torch.Generator().manual_seed(0)
    images = torch.cat([batch["img0"], batch["img1"]])
    for _ in range(150):
        f = model(images)
        out = hardest_contrastive_loss(f[:1], f[1:], batch["pairs"], params, batch["sizes0"], batch["sizes1"], g)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    after = hit_ratio(model)
    assert after > 0.9
    assert after > before + 0.03


def test_bf16_mining_finds_a_negative_as_hard_as_fp32s() -> None:
    from trainer.loss import mine_hardest_negatives

    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(300, 32), dim=1)
    c = torch.nn.functional.normalize(torch.randn(5000, 32), dim=1)
    cxy = torch.stack([torch.randint(0, 100, (5000,)), torch.randint(0, 100, (5000,))], 1).float()
    mxy = torch.rand(300, 2) * 99
    i32, ok32 = mine_hardest_negatives(q, c, mxy, cxy, 4.0)
    i16, ok16 = mine_hardest_negatives(q, c, mxy, cxy, 4.0, dtype=torch.bfloat16)
    assert torch.equal(ok32, ok16)
    d32 = ((q - c[i32]) ** 2).sum(1)
    d16 = ((q - c[i16]) ** 2).sum(1)
    assert (d16 - d32).max() < 0.03  # as hard, up to bf16 rounding
    assert (i16 == i32).float().mean() > 0.5
    # and never a candidate inside the exclusion disc
    assert ((cxy[i16] - mxy).norm(dim=1) > 4.0)[ok16].all()
    # every candidate excluded: no negative, in bf16 as in fp32
    _, none16 = mine_hardest_negatives(q, c, mxy, cxy, 1000.0, dtype=torch.bfloat16)
    assert not none16.any()
