"""Posed training data: cameras, the epipolar positive rule, bad scenes, mixing, and matching validation."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.accuracy import EvalPair, evaluate_matcher, pose_auc, pose_error_deg, posed_pairs, synthetic_pairs, ucn_matcher
from trainer.datasets import MixedDataset, PosedDataset, PosedParams, SceneError, Skipped
from trainer.datasets.posed import fundamental_matrix, load_scene, read_cameras, split_scenes, symmetric_epipolar_px

REPO = Path(__file__).resolve().parent.parent
POSED = REPO / "benchmarks" / "data" / "posed_val"  # three real scenes, 640 px, K rescaled
FOUNTAIN = POSED / "strecha_fountain_p11"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest


def copy_scene(tmp_path: Path, src: Path = FOUNTAIN) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_cameras_follow_the_opencv_convention() -> None:
    cams = read_cameras(FOUNTAIN)
    assert len(cams) == 11
    c = cams["0000.jpg"]
    assert (c.width, c.height) == (640, 427)
    assert np.allclose(c.R @ c.R.T, np.eye(3), atol=1e-6)
    # The principal point lies inside the image it describes.
    assert 0 < c.K[0, 2] < c.width and 0 < c.K[1, 2] < c.height
    # A world point in front of both cameras projects to pixels whose F-residual is ~0.
    a, b = cams["0000.jpg"], cams["0001.jpg"]
    centre = -a.R.T @ a.t
    X = centre + a.R.T @ np.array([0.1, -0.2, 1.0]) * 8.0  # 8 m ahead of camera 0
    def project(cam, X):
        x = cam.K @ (cam.R @ X + cam.t)
        return x[:2] / x[2]
    p0, p1 = project(a, X), project(b, X)
    assert symmetric_epipolar_px(fundamental_matrix(a, b), p0[None], p1[None])[0] < 1e-6
    assert symmetric_epipolar_px(fundamental_matrix(a, b), p0[None], (p1 + [0, 5])[None])[0] > 1.0


def test_epipolar_positives_agree_with_the_cameras_and_a_wrong_pairing_gives_almost_none(tmp_path: Path) -> None:
    params = PosedParams(crop_size=0, epipolar_threshold=1.5)
    scene = load_scene(FOUNTAIN, params)
    ds = PosedDataset([scene], params)
    a, b = scene.pairs[0]
    right = ds.positives(scene, a, b)
    assert len(right["pairs"]) >= 100
    F = fundamental_matrix(scene.cameras[a], scene.cameras[b])
    res = symmetric_epipolar_px(F, right["pairs"][:, :2].astype(float), right["pairs"][:, 2:].astype(float))
    assert res.max() < 1.5

    # The same cameras, but image b replaced by a photo of another scene: SIFT still
    # proposes matches, and the epipolar test must reject nearly all of them.
    wrong = copy_scene(tmp_path)
    other = next((POSED / "nerd_mother_child" / "images").glob("*.jpg"))
    shutil.copy(other, wrong / "images" / b)
    wscene = load_scene(wrong, params)
    bad = PosedDataset([wscene], params).positives(wscene, a, b)
    assert bad["matches"] > 50
    assert len(bad["pairs"]) < 0.1 * len(right["pairs"])


def test_posed_samples_are_crops_holding_their_positives() -> None:
    params = PosedParams(crop_size=256)
    ds = PosedDataset([load_scene(FOUNTAIN, params)], params, seed=3)
    got = [ds[(1, i)] for i in range(6)]
    samples = [s for s in got if not isinstance(s, Skipped)]
    assert len(samples) >= 4
    for s in samples:
        assert s["img0"].shape == (256, 256) and s["img1"].shape == (256, 256)
        p = s["pairs"]
        assert len(p) >= 8 and p.min() >= 0 and p.max() <= 255


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "cameras.json").unlink(), "no cameras.json"),
        (lambda d: (d / "cameras.json").write_text("{\"images\": {\"0000.jpg\": {\"K\": [1, 2]}}}"), "malformed cameras.json"),
        (lambda d: (d / "images" / "0003.jpg").unlink(), "missing from images/"),
        (lambda d: (d / "pairs.txt").write_text("0000.jpg 0001.jpg 9 0.001 300 200\n"), "no overlapping pairs"),
    ],
)
def test_bad_scenes_get_one_clear_line(tmp_path: Path, breakage, message: str) -> None:
    scene = copy_scene(tmp_path)
    breakage(scene)
    with pytest.raises(SceneError, match=message) as info:
        load_scene(scene, PosedParams())
    assert "strecha_fountain_p11" in str(info.value)


def test_a_corrupt_image_is_skipped_not_fatal(tmp_path: Path) -> None:
    scene_dir = copy_scene(tmp_path)
    scene = load_scene(scene_dir, PosedParams())
    a, b = scene.pairs[0]
    (scene_dir / "images" / a).write_bytes(b"\xff\xd8\xff not really a jpeg")
    ds = PosedDataset([scene], PosedParams())
    results = [ds[(1, i)] for i in range(len(ds))]
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert skipped and all("unreadable image" in r.reason or "too few" in r.reason for r in skipped)
    assert any("unreadable image" in r.reason and a in r.reason for r in skipped)
    assert any(not isinstance(r, Skipped) for r in results)


def test_validation_scenes_and_their_group_never_train(tmp_path: Path) -> None:
    root = tmp_path / "posed"
    root.mkdir()
    for name in ("strecha_castle_p19", "strecha_castle_p30", "strecha_fountain_p11"):
        shutil.copytree(FOUNTAIN, root / name)
    train, val = split_scenes([root], ["strecha_castle_p19"], PosedParams())
    assert [s.name for s in val] == ["strecha_castle_p19"]
    assert [s.name for s in train] == ["strecha_fountain_p11"]  # castle_p30 is the same place
    with pytest.raises(SceneError, match="not found"):
        split_scenes([root], ["no_such_scene"], PosedParams())


def test_mixing_follows_the_ratio() -> None:
    class Const:
        def __init__(self, tag):
            self.tag = tag

        def __len__(self):
            return 10

        def __getitem__(self, key):
            return self.tag

    mixed = MixedDataset([Const("posed"), Const("homography")], [0.25, 0.75], seed=0)
    tags = [mixed[(1, i)] for i in range(2000)]
    assert abs(tags.count("posed") / len(tags) - 0.25) < 0.04
    assert [mixed[(1, i)] for i in range(50)] == tags[:50]  # keyed: repeatable


def test_pose_auc_and_pose_error() -> None:
    assert pose_auc([0.0, 0.0]) == pytest.approx([1.0, 1.0, 1.0])
    assert pose_auc([180.0]) == [0.0, 0.0, 0.0]
    # The usual (SuperGlue) curve: recall ramps linearly from (0, 0) to (5 deg, 0.5), then stays.
    assert pose_auc([5.0, 180.0])[1] == pytest.approx((0.5 * 5 / 2 + 0.5 * 5) / 10)
    # Exact correspondences of a real pair recover its pose.
    scene = load_scene(FOUNTAIN, PosedParams())
    a, b = scene.pairs[0]
    ca, cb = scene.cameras[a], scene.cameras[b]
    rng = np.random.default_rng(0)
    X = (-ca.R.T @ ca.t) + (ca.R.T @ np.c_[rng.uniform(-0.5, 0.5, (200, 2)), np.ones(200)].T).T * rng.uniform(6, 12, (200, 1))
    def project(cam):
        x = (cam.K @ (cam.R @ X.T + cam.t[:, None])).T
        return x[:, :2] / x[:, 2:]
    pair = EvalPair("exact", scene.name, np.zeros((427, 640, 3), np.uint8), np.zeros((427, 640, 3), np.uint8), cam0=ca, cam1=cb)
    assert pose_error_deg(pair, project(ca), project(cb)) < 0.5


def test_validation_runs_the_products_pipeline_on_synthetic_and_posed_pairs() -> None:
    from ucn_gui.core.checkpoint import load_model
    from ucn_gui.core.filters import FilterSettings
    from ucn_gui.core.resources import models_dir, samples_dir

    model = load_model(models_dir() / "default.safetensors").model
    pairs = synthetic_pairs([samples_dir() / "DSC_0410.jpg"], 1, seed=1, max_side=320)[:1]
    pairs += posed_pairs([load_scene(FOUNTAIN, PosedParams())], 1)
    result = evaluate_matcher(ucn_matcher(model, FilterSettings(), max_side=320, max_keypoints=300), pairs)
    assert set(result) >= {"synthetic", "posed"}
    assert result["synthetic"]["pairs"] == 1 and result["posed"]["pairs"] == 1
    # The bundled model is far from random on an easy pair: most kept matches land within 3 px.
    assert result["synthetic:mild"]["mma"][2] > 0.5
    assert result["posed"]["kept"] > 10


def test_precomputed_positives_are_read_back_and_ignored_when_settings_differ(tmp_path: Path) -> None:
    scene_dir = copy_scene(tmp_path)
    params = PosedParams(crop_size=0)
    scene = load_scene(scene_dir, params)
    fresh = PosedDataset([scene], params)
    assert fresh.cached_pairs == 0
    fresh.save_positive_cache(scene)
    cached = PosedDataset([load_scene(scene_dir, params)], params)
    assert cached.cached_pairs == len(scene.pairs)
    a, b = scene.pairs[1]
    assert np.array_equal(cached.positives(scene, a, b)["pairs"], fresh.positives(scene, a, b)["pairs"])
    # Samples (either image first) are the same whether positives came from the cache or SIFT.
    for i in range(4):
        s0, s1 = fresh[(1, i)], cached[(1, i)]
        assert np.array_equal(s0["pairs"], s1["pairs"]) and np.array_equal(s0["img0"], s1["img0"])
    # Other settings, other positives: the cache is not used.
    other = PosedParams(crop_size=0, epipolar_threshold=0.5)
    assert PosedDataset([load_scene(scene_dir, other)], other).cached_pairs == 0
    # A damaged cache is ignored, not trusted.
    (scene_dir / "positives.npz").write_bytes(b"PK\x03\x04 broken")
    assert PosedDataset([load_scene(scene_dir, params)], params).cached_pairs == 0


def test_estimated_geometry_recovers_the_cameras_epipolar_test(tmp_path: Path) -> None:
    """trainer.estimate_pairs on a real scene's photos (cameras hidden) gives an F whose positives
    agree with the ground-truth cameras; the scene is read through the same --posed_dir path."""
    from trainer.estimate_pairs import main as estimate

    photos = tmp_path / "fountain"
    shutil.copytree(FOUNTAIN / "images", photos)
    for extra in sorted(photos.glob("*.jpg"))[4:]:  # four views keep the test short
        extra.unlink()
    assert estimate(["--photos", str(photos), "--out", str(tmp_path / "est"), "--sift-side", "640", "--keypoints", "4000"]) == 0
    params = PosedParams(crop_size=0, max_image_side=480)  # read smaller than stored: F is rescaled
    (est,) = split_scenes([tmp_path / "est"], [], params)[0]
    assert est.name == "est_fountain" and not est.cameras and len(est.pairs) >= 3
    truth = load_scene(FOUNTAIN, params)
    ds = PosedDataset([est], params)
    for a, b in est.pairs:
        got = ds.positives(est, b, a)  # the reverse order uses F transposed
        assert len(got["pairs"]) >= 50
        s0, s1 = ds.image(est.image_path(b))[1], ds.image(est.image_path(a))[1]
        F_true = truth.fundamental(b, a, s0, s1)
        res = symmetric_epipolar_px(F_true, got["pairs"][:, :2].astype(float), got["pairs"][:, 2:].astype(float))
        assert np.median(res) < 1.0 and np.mean(res < 2.0) > 0.9


def test_a_scene_of_unrelated_photos_gets_no_pairs(tmp_path: Path) -> None:
    from trainer.estimate_pairs import main as estimate

    photos = tmp_path / "mixed"
    photos.mkdir()
    for scene in ("strecha_fountain_p11", "nerd_mother_child", "middlebury_dino_sparse_ring"):
        shutil.copy(next((POSED / scene / "images").glob("*.jpg")), photos / f"{scene}.jpg")
    estimate(["--photos", str(photos), "--out", str(tmp_path / "est"), "--sift-side", "640"])
    doc = json.loads((tmp_path / "est" / "est_mixed" / "fundamentals.json").read_text())
    assert doc["pairs"] == [] and sum(doc["rejected"].values()) == 3
    with pytest.raises(SceneError, match="est_mixed.*lists no pairs"):
        load_scene(tmp_path / "est" / "est_mixed", PosedParams())


def test_estimated_share_draws_that_share_of_posed_pairs_from_estimated_scenes(tmp_path: Path) -> None:
    from trainer.config import parse_args
    from trainer.datasets import make_datasets

    # An estimated-geometry twin of a camera scene: its F written out, its cameras withheld.
    cams_scene = load_scene(POSED / "nerd_mother_child", PosedParams())
    est = tmp_path / "scenes" / "est_twin"
    shutil.copytree(POSED / "nerd_mother_child" / "images", est / "images")
    pairs = [{"image0": a, "image1": b, "F": cams_scene.fundamental(a, b).tolist()} for a, b in cams_scene.pairs[:2]]
    (est / "fundamentals.json").write_text(json.dumps({"pairs": pairs}))
    shutil.copytree(POSED / "strecha_fountain_p11", tmp_path / "scenes" / "strecha_fountain_p11")
    cfg = parse_args(["--dataset", "posed", "--posed_dir", str(tmp_path / "scenes"), "--val_scenes",
                      "--estimated_share", "0.5", "--crop_size", "128", "--model", "ResUNetBN2F"])
    train, _ = make_datasets(cfg)
    assert sorted(train.scene_names) == ["est_twin", "strecha_fountain_p11"]
    drawn = [s["path"].split("/")[0] for s in (train[(0, i)] for i in range(60)) if not isinstance(s, Skipped)]
    # 2 estimated pairs against 30 camera pairs: without the share, about 6 % would be estimated.
    assert 0.3 < drawn.count("est_twin") / len(drawn) < 0.7
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "posed", "--posed_dir", "x", "--estimated_share", "1.5"])
