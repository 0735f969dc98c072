"""The trainer: loss, mining, data sets (homography and a rendered YFCC tree), loop, resume, DDP."""
from __future__ import annotations

import csv
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from trainer.config import parse_args
from trainer.datasets import HomographyDataset, HomographyParams, Skipped, YFCCDataset, YFCCParams, collate_pairs
from trainer.geometry import essential_matrix, normalize_keypoints, symmetric_epipolar_distance
from trainer.loop import Trainer
from trainer.loss import LossParams, hardest_contrastive_loss, mine_hardest_negatives, pair_loss
from trainer.validate import pair_metrics
from ucn_gui.core.checkpoint import load_model

from trainer_fixtures import CAMERAS, FOCAL, HEIGHT, WIDTH, image_to_image, make_yfcc_tree, photo_folder

REPO = Path(__file__).resolve().parent.parent

# Tiny but real: ResUNetBN2F on 64 px crops, a few hundred candidates.
TINY = [
    "--dataset", "homography", "--model", "ResUNetBN2F", "--model_n_out", "16", "--crop_size", "64",
    "--num_hn_samples_per_batch", "1000", "--num_pos_per_batch", "256", "--batch_size", "1",
    "--num_workers", "0", "--device", "cpu", "--val_max_iter", "2", "--best_val_metric", "hit_ratio",
]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return photo_folder(tmp_path_factory.mktemp("photos"))


def read_losses(out_dir: Path) -> list[float]:
    with open(out_dir / "train.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


# --------------------------------------------------------------------------- mining and loss


def brute_force_hardest(q, c, match_xy, cand_xy, radius):
    d2 = ((q[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    near = ((match_xy[:, None, :] - cand_xy[None, :, :]) ** 2).sum(-1) <= radius**2
    d2[near] = float("inf")
    dmin, idx = d2.min(1)
    return idx, torch.isfinite(dmin)


@pytest.mark.parametrize("chunk", [1 << 22, 97])  # one block, and many ragged blocks
def test_hardest_negatives_equal_brute_force(chunk: int) -> None:
    g = torch.Generator().manual_seed(1)
    P, N, C = 70, 400, 8
    q, c = torch.randn(P, C, generator=g), torch.randn(N, C, generator=g)
    cand_xy = torch.randint(0, 20, (N, 2), generator=g).float()
    match_xy = torch.rand(P, 2, generator=g) * 20
    match_xy[0] = cand_xy[0]  # a query whose nearest candidate might be its own match
    idx, ok = mine_hardest_negatives(q, c, match_xy, cand_xy, 4.0, chunk_elements=chunk)
    ref_idx, ref_ok = brute_force_hardest(q, c, match_xy, cand_xy, 4.0)
    assert torch.equal(ok, ref_ok) and ok.all()
    assert torch.equal(idx, ref_idx)
    # Excluding everything leaves no valid negative.
    _, none_ok = mine_hardest_negatives(q, c, match_xy, cand_xy, 1000.0)
    assert not none_ok.any()


def test_hardest_negatives_when_no_candidate_is_near_any_match() -> None:
    # Candidates with repeated pixels (the bucketed path) all far from every true match: nothing is excluded.
    g = torch.Generator().manual_seed(3)
    cand_xy = torch.randint(0, 10, (400, 2), generator=g).float()
    match_xy = torch.full((20, 2), 50.0)
    q, c = torch.randn(20, 8, generator=g), torch.randn(400, 8, generator=g)
    idx, ok = mine_hardest_negatives(q, c, match_xy, cand_xy, 4.0)
    ref_idx, ref_ok = brute_force_hardest(q, c, match_xy, cand_xy, 4.0)
    assert ok.all() and torch.equal(idx, ref_idx)


def test_hardest_negatives_like_training_equal_brute_force() -> None:
    # Distinct candidate pixels of a 100 x 80 image, as the loss draws them; matches near the borders too.
    g = torch.Generator().manual_seed(2)
    flat = torch.randperm(100 * 80, generator=g)[:3000]
    cand_xy = torch.stack([flat % 100, flat // 100], 1).float()
    match_xy = torch.rand(300, 2, generator=g) * torch.tensor([100.0, 80.0]) - 1
    q, c = torch.randn(300, 16, generator=g), torch.randn(3000, 16, generator=g)
    for radius in (1.0, 4.0, 6.5):
        idx, ok = mine_hardest_negatives(q, c, match_xy, cand_xy, radius, chunk_elements=50_000)
        ref_idx, ref_ok = brute_force_hardest(q, c, match_xy, cand_xy, radius)
        assert torch.equal(ok, ref_ok) and torch.equal(idx, ref_idx)


@pytest.mark.parametrize("n", [50, 128, 300, 1000])  # one partial group, one whole group, whole + partial
def test_bf16_argmin_equals_a_plain_argmin(n: int) -> None:
    from trainer.loss import _bf16_argmin

    g = torch.Generator().manual_seed(n)
    # Coarse values so that ties are common, as among bf16 distances.
    d2 = (torch.randint(0, 40, (64, n), generator=g).float() / 8).bfloat16()
    d2[0] = float("inf")  # every candidate excluded
    d2[1] = 2.0
    d2[1, -1] = 0.0  # the minimum in the last (maybe partial) group
    d2[2, :] = 1.0  # all tied: the first column wins
    d2[3, n // 2 :] = float("inf")
    idx, found = _bf16_argmin(d2)
    ref_val, ref_idx = d2.float().min(1)
    assert torch.equal(found, torch.isfinite(ref_val))
    assert torch.equal(idx[found], ref_idx[found])  # ties go to the first column, as with min
    assert idx[1] == n - 1 and idx[2] == 0


def test_mining_memory_does_not_scale_with_positives_candidates_channels() -> None:
    # A broadcast difference tensor would need 1024 x 40000 x 64 x 4 bytes = 10 GB.
    q, c = torch.randn(1024, 64), torch.randn(40000, 64)
    xy_c = torch.rand(40000, 2) * 256
    xy_m = torch.rand(1024, 2) * 256
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    idx, ok = mine_hardest_negatives(q, c, xy_m, xy_c, 4.0)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert ok.all() and idx.shape == (1024,)
    assert grown_mb < 400


def shifted_pairs(h: int, w: int, dx: int = 2, dy: int = 1) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h - dy), torch.arange(w - dx), indexing="ij")
    xy0 = torch.stack([xs.ravel(), ys.ravel()], 1).float()
    return torch.cat([xy0, xy0 + torch.tensor([dx, dy]).float()], 1)


def test_gradient_flows_only_through_selected_pairs() -> None:
    g = torch.Generator().manual_seed(0)
    C, H, W = 8, 12, 14
    F0 = torch.nn.functional.normalize(torch.randn(C, H, W, generator=g), dim=0).requires_grad_()
    F1 = torch.nn.functional.normalize(torch.randn(C, H, W, generator=g), dim=0).requires_grad_()
    params = LossParams(num_pos=20, num_candidates=60, inlier_threshold_pixel=1.5)
    out = pair_loss(F0, F1, shifted_pairs(H, W), params, generator=torch.Generator().manual_seed(3))
    out.loss.backward()
    for grad, selected in ((F0.grad, out.selected0[0]), (F1.grad, out.selected1[0])):
        touched = set(torch.nonzero(grad.abs().sum(0).ravel()).ravel().tolist())
        allowed = set(selected.tolist())
        assert touched, "no gradient at all"
        assert touched <= allowed, f"gradient reached {len(touched - allowed)} unselected pixels"
    assert out.num_pos == 20


def test_loss_zero_when_separated_positive_otherwise() -> None:
    H, W = 6, 7
    # Each pixel its own one-hot code: d2 = 0 for every true match and 2 (> 1.4) for everything else.
    codes = torch.eye(H * W).reshape(H * W, H, W)
    pairs = shifted_pairs(H, W, 0, 0)
    params = LossParams(num_pos=1000, num_candidates=1000, inlier_threshold_pixel=0.5)
    out = pair_loss(codes, codes.clone(), pairs, params, generator=torch.Generator().manual_seed(0))
    assert out.num_pos == H * W and float(out.loss) == 0.0
    # Random unit features violate both margins.
    g = torch.Generator().manual_seed(0)
    R0 = torch.nn.functional.normalize(torch.randn(16, H, W, generator=g), dim=0)
    R1 = torch.nn.functional.normalize(torch.randn(16, H, W, generator=g), dim=0)
    out = pair_loss(R0, R1, pairs, params, generator=torch.Generator().manual_seed(0))
    assert float(out.pos_loss) > 0 and float(out.neg_loss) > 0 and float(out.loss) > 0


def test_batch_loss_is_mean_and_handles_no_positives() -> None:
    g = torch.Generator().manual_seed(0)
    F = torch.nn.functional.normalize(torch.randn(2, 8, 10, 10, generator=g), dim=1).requires_grad_()
    pairs = [shifted_pairs(10, 10), torch.zeros(0, 4)]
    out = hardest_contrastive_loss(F, F.flip(0), pairs, LossParams(num_pos=50, num_candidates=50), generator=g)
    out.loss.backward()  # the empty pair still leaves a connected graph
    assert torch.isfinite(out.loss) and F.grad is not None


# --------------------------------------------------------------------------- data


def test_homography_pairs_are_true_correspondences(photos: Path) -> None:
    p = HomographyParams(crop_size=96, gain=(1.0, 1.0), bias=0.0, blur_prob=0.0, max_noise_std=0.0)
    ds = HomographyDataset([photos], p, seed=5)
    for i in range(3):
        s = ds[(1, i)]
        assert not isinstance(s, Skipped)
        assert s["img0"].shape == s["img1"].shape == (96, 96)
        pairs = s["pairs"]
        assert len(pairs) > 500
        v0 = s["img0"][pairs[:, 1].astype(int), pairs[:, 0].astype(int)]
        v1 = cv2.remap(s["img1"], pairs[:, 2:3].reshape(-1, 1), pairs[:, 3:4].reshape(-1, 1), cv2.INTER_LINEAR).ravel()
        inner = (pairs[:, 2] > 2) & (pairs[:, 2] < 93) & (pairs[:, 3] > 2) & (pairs[:, 3] < 93)
        assert np.median(np.abs(v0 - v1)[inner]) < 0.03
    # Same key, same sample; another key, another sample.
    assert np.array_equal(ds[(1, 0)]["img1"], ds[(1, 0)]["img1"])
    assert not np.array_equal(ds[(1, 0)]["img1"], ds[(2, 0)]["img1"])


def test_epipolar_distance_of_true_and_shifted_points() -> None:
    rng = np.random.default_rng(0)
    X = np.c_[rng.uniform(-2, 2, 50), rng.uniform(-1.5, 1.5, 50), rng.uniform(4, 8, 50)]
    calib = [{"K": np.diag([FOCAL, FOCAL, 1.0]), "R": c.R, "T": c.T, "imsize": np.array([WIDTH, HEIGHT])} for c in CAMERAS[:2]]

    def project(c):
        x = (X @ c["R"].T + c["T"]) @ np.diag([FOCAL, FOCAL, 1.0]).T
        return x[:, :2] / x[:, 2:] + np.array([WIDTH, HEIGHT]) / 2

    px0, px1 = project(calib[0]), project(calib[1])
    E = essential_matrix(calib[0], calib[1])
    n0 = normalize_keypoints(px0, calib[0]["K"], calib[0]["imsize"])
    d_true = symmetric_epipolar_distance(E, n0, normalize_keypoints(px1, calib[1]["K"], calib[1]["imsize"]))
    d_off = symmetric_epipolar_distance(E, n0, normalize_keypoints(px1 + [0, 15], calib[1]["K"], calib[1]["imsize"]))
    assert d_true.max() < 1e-9
    assert np.median(d_off) > 0.03


@pytest.fixture(scope="module")
def yfcc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[np.ndarray]]:
    from trainer.prepare_yfcc import main as prepare_main

    root = tmp_path_factory.mktemp("yfcc")
    Hs = make_yfcc_tree(root / "raw")
    assert prepare_main(["--source", str(root / "raw"), "--target", str(root / "processed")]) == 0
    return root / "raw", root / "processed", Hs


def test_yfcc_prepare_keeps_visible_pairs(yfcc) -> None:
    _, processed, _ = yfcc
    names = sorted(p.name for p in (processed / "plane_scene").glob("train_*.npz"))
    # Visibility 500 and 300 pass the threshold of 100; the pair (1, 2) with 50 does not.
    assert names == [f"train_{i:06d}_{j:06d}.npz" for i, j in [(0, 1), (0, 2), (1, 0), (2, 0)]]
    with np.load(processed / "plane_scene" / names[0], allow_pickle=False) as d:
        assert str(d["img_path0"]) == "plane_scene/train/images/img_0.jpg"
        assert d["calib0"].shape == (32,)


def test_yfcc_loading_labels_match_ground_truth(yfcc) -> None:
    raw, processed, Hs = yfcc
    ds = YFCCDataset(raw, processed, "train", YFCCParams(num_keypoints=1000), seed=0)
    assert len(ds) == 4
    checked = 0
    for path in ds.files:
        i, j = (int(x) for x in path.stem.split("_")[1:])
        d = ds.load_pair(path)
        m, labels = d["matches"], d["labels"]
        err = np.linalg.norm(cv2.perspectiveTransform(m[None, :, :2], image_to_image(Hs, i, j))[0] - m[:, 2:], axis=1)
        correct = err < 1.5
        assert correct.sum() > 100
        assert labels[correct].mean() > 0.95  # true matches are positives
        assert (err[labels] < 4.0).mean() > 0.9  # positives are (almost all) true matches
        if (err > 20).sum() >= 10:
            assert labels[err > 20].mean() < 0.3
        checked += 1
    assert checked == 4
    s = ds[(1, 0)]
    assert not isinstance(s, Skipped)
    assert s["img0"].shape == (HEIGHT, WIDTH) and -0.5 <= s["img0"].min() and s["img0"].max() <= 0.5
    assert s["pairs"].shape[1] == 4 and len(s["pairs"]) >= 16


def test_seed_command_trains_on_yfcc(yfcc, tmp_path: Path) -> None:
    raw, processed, _ = yfcc
    from trainer.__main__ import main

    argv = [
        "--batch_size", "1", "--iter_size", "2", "--data_dir_raw", str(raw), "--data_dir_processed", str(processed),
        "--num_hn_samples_per_batch", "4000", "--model_n_out", "8",
        # keep it tiny here: the light model, two iterations, one epoch
        "--model", "ResUNetBN2F", "--max_image_side", "160", "--train_max_iter", "2", "--max_epoch", "1", "--val_max_iter", "2",
        "--best_val_metric", "hit_ratio", "--num_workers", "0", "--device", "cpu", "--out_dir", str(tmp_path / "run"),
    ]
    assert main(argv) == 0
    ck = torch.load(tmp_path / "run" / "checkpoint.pth", weights_only=True)
    assert ck["epoch"] == 1 and ck["step"] == 2 and ck["config"]["iter_size"] == 2
    with open(tmp_path / "run" / "val.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["hit_ratio"]) <= 1.0 and int(rows[0]["pairs"]) == 2


def test_bad_samples_are_skipped_and_counted(photos: Path, tmp_path: Path, yfcc) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(photos / "terrace0.jpg", folder / "a_good.jpg")
    (folder / "b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cv2.imwrite(str(folder / "c_tiny.png"), np.zeros((8, 8), np.uint8))
    ds = HomographyDataset([folder], HomographyParams(crop_size=64), seed=0)
    results = [ds[(1, i)] for i in range(3)]
    reasons = sorted(r.reason for r in results if isinstance(r, Skipped))
    assert len(reasons) == 2 and any("unreadable" in r for r in reasons) and any("too small" in r for r in reasons)
    batch = collate_pairs(results)
    assert len(batch["skipped"]) == 2 and batch["img0"].shape[0] == 1

    cfg = parse_args(TINY + ["--data_dir", str(folder), "--train_max_iter", "6", "--max_epoch", "1",
                             "--test_valid", "false", "--out_dir", str(tmp_path / "run")])
    summary = Trainer(cfg).fit()
    assert summary["iterations"] == 6 and summary["skipped"] >= 4  # two of every three samples are bad

    # YFCC: a pair whose image is missing, and one with too few correspondences.
    raw, processed, _ = yfcc
    broken = tmp_path / "processed"
    shutil.copytree(processed, broken)
    files = sorted((broken / "plane_scene").glob("train_*.npz"))
    with np.load(files[0]) as d:
        np.savez(files[0], **{**{k: d[k] for k in d.files}, "img_path0": np.str_("plane_scene/train/images/missing.jpg")})
    (broken / "plane_scene" / "train_000009_000000.npz").write_bytes(b"garbage")
    ys = YFCCDataset(raw, broken, "train", YFCCParams(min_correspondences=100000))
    out = [ys[(1, i)] for i in range(len(ys))]
    assert all(isinstance(o, Skipped) for o in out)
    text = " | ".join(o.reason for o in out)
    assert "unreadable image" in text and "unreadable pair file" in text and "too few correspondences" in text


# --------------------------------------------------------------------------- loop


def test_short_cpu_run_lowers_the_loss(photos: Path, tmp_path: Path) -> None:
    cfg = parse_args(TINY + ["--data_dir", str(photos), "--optimizer", "adam", "--train_max_iter", "40", "--max_epoch", "1",
                             "--test_valid", "false", "--out_dir", str(tmp_path)])
    Trainer(cfg).fit()
    losses = read_losses(tmp_path)
    assert len(losses) == 40
    first, last = np.mean(losses[:8]), np.mean(losses[-8:])
    assert last < first - 0.05, (first, last)
    assert (tmp_path / "training.png").stat().st_size > 0


def test_resume_continues_where_it_stopped(photos: Path, tmp_path: Path) -> None:
    common = TINY + ["--data_dir", str(photos), "--train_max_iter", "3", "--seed", "7"]
    # Uninterrupted: two epochs.
    full = parse_args(common + ["--max_epoch", "2", "--out_dir", str(tmp_path / "full")])
    Trainer(full).fit()
    # Interrupted after epoch 1, then resumed.
    Trainer(parse_args(common + ["--max_epoch", "1", "--out_dir", str(tmp_path / "part")])).fit()
    ck_path = tmp_path / "part" / "checkpoint.pth"
    ck = torch.load(ck_path, weights_only=True)  # plain types only
    assert ck["epoch"] == 1 and ck["step"] == 3
    resumed = Trainer(parse_args(common + ["--max_epoch", "2", "--resume", str(ck_path), "--out_dir", str(tmp_path / "part")]))
    assert resumed.start_epoch == 2 and resumed.step == 3
    assert resumed.scheduler.last_epoch == 1
    opt_state = resumed.optimizer.state_dict()["state"]
    for k, v in ck["optimizer"]["state"].items():
        assert torch.equal(opt_state[k]["momentum_buffer"], v["momentum_buffer"])
    resumed.fit()
    a = torch.load(tmp_path / "full" / "checkpoint.pth", weights_only=True)
    b = torch.load(tmp_path / "part" / "checkpoint.pth", weights_only=True)
    assert b["epoch"] == 2 and b["step"] == 6
    for k in a["state_dict"]:
        assert torch.allclose(a["state_dict"][k].float(), b["state_dict"][k].float(), atol=1e-6), k
    # Every checkpoint opens in the app as it is.
    for name in ("checkpoint.pth", "best_val_checkpoint.pth", "best.safetensors", "final.safetensors"):
        lm = load_model(tmp_path / "part" / name)
        assert (lm.arch, lm.n_out) == ("ResUNetBN2F", 16)
    card = load_model(tmp_path / "part" / "best.safetensors").card
    assert card["command"].startswith("python -m trainer") or card["command"] == ""
    assert "hit_ratio" in card["metrics"] and card["iterations"] in (3, 6)


def test_weights_start_from_any_loadable_model(tmp_path: Path) -> None:
    src = REPO / "tests" / "data" / "open-ucn-format-ResUNetBN2D2-random.pth"
    cfg = parse_args(["--dataset", "homography", "--data_dir", str(tmp_path), "--weights", str(src), "--device", "cpu",
                      "--out_dir", str(tmp_path / "run")])
    t = Trainer(cfg, build_data=False)
    ref = load_model(src).model.state_dict()
    assert all(torch.equal(t.model.state_dict()[k], v) for k, v in ref.items())


def test_seed_defaults_and_options() -> None:
    cfg = parse_args(["--batch_size", "1", "--iter_size", "2", "--data_dir_raw", "r", "--data_dir_processed", "p",
                      "--num_hn_samples_per_batch", "40000", "--model_n_out", "96"])
    assert (cfg.dataset, cfg.model, cfg.model_n_out, cfg.optimizer, cfg.lr, cfg.momentum) == ("yfcc", "ResUNetBN2D2", 96, "sgd", 0.1, 0.8)
    assert (cfg.weight_decay, cfg.exp_gamma, cfg.pos_thresh, cfg.neg_thresh, cfg.num_pos_per_batch) == (1e-4, 0.99, 0.1, 1.4, 1024)
    cfg = parse_args(["--dataset", "homography", "--data_dir", "a", "b", "--optimizer", "adam"])
    assert cfg.lr == 1e-3 and cfg.data_dir == ["a", "b"]
    cfg = parse_args(["--dataset", "homography", "--data_dir", "a", "--resume", "runs/x/checkpoint.pth"])
    assert Path(cfg.out_dir) == Path("runs/x")  # a resumed run keeps writing where it was
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "homography"])


def test_validation_metrics_perfect_and_shifted() -> None:
    H = W = 10
    C = H * W
    F = torch.eye(C).reshape(C, H, W)
    pairs = shifted_pairs(H, W, 0, 0)
    assert pair_metrics(F, F, pairs, 1000, 1.0) == (1.0, 1.0, 1.0)
    wrong = pairs.clone()
    wrong[:, 2] += 5  # ground truth says 5 px right of where the features match
    hit, recip, recip_hit = pair_metrics(F, F, wrong, 1000, 1.0)
    assert hit == 0.0 and recip == 1.0 and recip_hit == 0.0


# --------------------------------------------------------------------------- data parallel


def test_two_process_gloo_run_has_identical_weights(photos: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    cmd += ["--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000), "-m", "trainer"] + TINY + [
        "--data_dir", str(photos), "--crop_size", "48", "--iter_size", "2", "--train_max_iter", "3", "--max_epoch", "2",
        "--save_all_ranks", "--out_dir", str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    w0 = torch.load(tmp_path / "final_rank0.pth", weights_only=True)["state_dict"]
    w1 = torch.load(tmp_path / "final_rank1.pth", weights_only=True)["state_dict"]
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    ck = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert ck["world_size"] == 2 and ck["step"] == 6
    assert ck["command"].startswith("torchrun --nproc_per_node 2 -m trainer")
