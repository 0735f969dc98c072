"""Nearest-neighbour search, matching on a known shift, filters, and image loading."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ucn_gui.core.filters import FilterSettings, apply_filters, filter_mask, ransac_mask
from ucn_gui.core.image import load_image, prepare_image, read_rgb
from ucn_gui.core.keypoints import grid_points, read_points_file, sift_points
from ucn_gui.core.matching import Cancelled, MatchOptions, PairFeatures, match, match_images, prefetch_query_points, similarity_map
from ucn_gui.core.model import build_model
from ucn_gui.core.nn import _search_dense, descriptor_distance, nearest_neighbors

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _unit(n: int, c: int, seed: int, device: str = "cpu") -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, c, generator=g), dim=1).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("num_q,num_db,c,db_block", [(700, 5000, 32, 512), (3, 1, 8, 512), (50, 1300, 64, 100), (2500, 777, 16, 64)])
def test_nn_equals_brute_force(device, num_q, num_db, c, db_block):
    q, db = _unit(num_q, c, 1, device), _unit(num_db, c, 2, device)
    ref_s, ref_i = (q @ db.t()).topk(min(2, num_db), dim=1)
    for k in (1, 2):
        if k > num_db:
            continue
        s, i = nearest_neighbors(q, db, k=k, db_block=db_block)
        assert torch.equal(i, ref_i[:, :k])
        assert torch.allclose(s, ref_s[:, :k], atol=1e-5)


@pytest.mark.parametrize("num_q,num_db,query_block", [(700, 5000, 300), (3, 2, None), (64, 1300, 7)])
def test_gpu_search_form_equals_brute_force_on_any_device(num_q, num_db, query_block):
    # The CUDA path (two maxima instead of topk) is plain tensor code: check it here on the CPU too.
    q, db = _unit(num_q, 16, 3), _unit(num_db, 16, 4)
    q = torch.cat((q, db[:2]))  # these queries' best row is duplicated below: an exact tie
    db = torch.cat((db, db[:2]))
    ref_s, _ = (q @ db.t()).topk(2, dim=1)
    for k in (1, 2):
        s, i = _search_dense(q, db, k, query_block, None)
        assert torch.allclose(s, ref_s[:, :k], atol=1e-6)
        assert torch.allclose((q[:, None, :] * db[i]).sum(-1), s, atol=1e-6)  # the rows returned score what is returned
    assert (i[:, 0] != i[:, 1]).all()
    tied = i[-2:].sort(dim=1).values  # the tie's two rows are the top-2, each once
    assert tied.tolist() == [[0, num_db], [1, num_db + 1]]


BF16_COARSE_CASES = [(700, 5000, 32, 512), (3, 1, 8, 512), (50, 1300, 64, 100), (2500, 777, 16, 64), (300, 4100, 32, 512)]


@pytest.mark.parametrize("num_q,num_db,c,db_block", BF16_COARSE_CASES)
def test_nn_bf16_coarse_pass_gives_the_exact_result(num_q, num_db, c, db_block):
    q, db = _unit(num_q, c, 1), _unit(num_db, c, 2)
    ref_s, ref_i = (q @ db.t()).topk(min(2, num_db), dim=1)
    for k in (1, 2):
        if k > num_db:
            continue
        s, i = nearest_neighbors(q, db, k=k, db_block=db_block, coarse=db.bfloat16())
        assert torch.equal(i, ref_i[:, :k])
        assert torch.allclose(s, ref_s[:, :k], atol=1e-5)


def _smooth_field(h: int, w: int, c: int, seed: int) -> torch.Tensor:
    """Descriptors that vary slowly over an h x w image, like real ones: h*w x c, unit rows,
    many near-ties between neighbouring pixels (the case a bf16 score cannot order)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, c, h // 8 + 1, w // 8 + 1, generator=g)
    field = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
    field = field + 0.01 * torch.randn(c, h, w, generator=g)
    return torch.nn.functional.normalize(field.flatten(1).t(), dim=1).contiguous()


def test_nn_bf16_coarse_pass_exact_on_near_ties():
    db = _smooth_field(120, 160, 32, 3)
    q = db[torch.randperm(len(db), generator=torch.Generator().manual_seed(4))[:1500]] + 0.02 * _unit(1500, 32, 5)
    q = torch.nn.functional.normalize(q, dim=1)
    ref_s, ref_i = (q @ db.t()).topk(2, dim=1)
    s, i = nearest_neighbors(q, db, k=2, coarse=db.bfloat16())
    assert torch.equal(i, ref_i)
    # bf16 alone would get many of these wrong: the refinement is what makes it exact.
    bf16_i = (q.bfloat16() @ db.bfloat16().t()).float().argmax(1)
    assert (bf16_i != ref_i[:, 0]).sum() > 20


def test_nn_bf16_fallbacks_for_crowded_and_unmatched_queries(monkeypatch):
    from ucn_gui.core import nn

    # A nearly blank wall: every block is within the rounding margin of the best, more
    # candidates than allowed, so these queries take the fp32 search.
    monkeypatch.setattr(nn, "MAX_CANDIDATE_BLOCKS", 3)
    db = torch.nn.functional.normalize(torch.ones(3000, 16) + 0.05 * _unit(3000, 16, 6), dim=1)
    q = torch.cat([db[:40], -db[:5]])  # the last five have no positive score anywhere
    ref_s, ref_i = (q @ db.t()).topk(2, dim=1)
    calls = []
    real = nn._search_two_pass
    monkeypatch.setattr(nn, "_search_two_pass", lambda q_, *a: calls.append(len(q_)) or real(q_, *a))
    s, i = nearest_neighbors(q, db, k=2, db_block=64, coarse=db.bfloat16())
    assert calls == [45]
    assert torch.equal(i, ref_i) and torch.allclose(s, ref_s, atol=1e-6)


def test_rounding_margin_bounds_the_bf16_scores():
    from ucn_gui.core.nn import rounding_margin

    q, db = _unit(400, 32, 7), _smooth_field(40, 50, 32, 8)
    q[:10] *= 3.0  # the bound scales with the norms
    exact = q.double() @ db.double().t()
    low = (q.bfloat16() @ db.bfloat16().t()).double()
    err = (low - exact).abs().amax(1)
    margin = rounding_margin(q, db).double()
    assert (err <= margin).all()
    assert (err > margin / 8).any(), "and it is not vacuous"


@pytest.mark.parametrize("coarse", [False, True])
def test_nn_search_checks_cancel_between_blocks(coarse):
    q, db = _unit(100, 16, 1), _unit(20000, 16, 2)
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(Cancelled):
        nearest_neighbors(q, db, k=2, coarse=db.bfloat16() if coarse else None, cancel=cancel)
    assert len(calls) == 3  # stopped at the third check, long before the 40 blocks were done


def test_nn_runner_up_in_another_block():
    # Query equal to row 0; its runner-up sits in the last block, not the first.
    db = _unit(600, 8, 3)
    q = db[:1].clone()
    db[599] = torch.nn.functional.normalize(q[0] + 0.01 * db[5], dim=0)
    s, i = nearest_neighbors(q, db, k=2, db_block=100)
    assert i.tolist() == [[0, 599]]


def test_descriptor_distance_of_unit_vectors():
    a, b = _unit(10, 16, 4), _unit(10, 16, 5)
    d = descriptor_distance((a * b).sum(1))
    assert torch.allclose(d, (a - b).norm(dim=1), atol=1e-5)


@pytest.fixture(scope="module")
def shifted_pair(terrace_pair):
    """Two crops of one photo, image 1 = image 0 moved by (dx, dy) = (-16, -8): a multiple of the
    network's total stride (8), so exact matches are possible even with random weights."""
    rgb = read_rgb(terrace_pair[0])
    a = prepare_image(rgb[40:240, 60:360])
    b = prepare_image(rgb[48:248, 76:376])
    return a, b, np.array([-16.0, -8.0], np.float32)


@pytest.fixture(scope="module")
def shift_matches(shifted_pair):
    a, b, _ = shifted_pair
    torch.manual_seed(0)
    model = build_model("ResUNetBN2F", 16).eval()
    # Whole-pixel targets: random weights give no meaningful peak between pixels (refining is
    # tested with the trained model in test_subpixel.py); this checks the search itself.
    # Every grid point (min_texture=0): the tests pick the textured ones themselves.
    return match_images(model, a, b, MatchOptions(keypoints="grid", grid_stride=6, min_texture=0.0, subpixel=False))


def test_known_shift_recovered_on_textured_regions(shifted_pair, shift_matches):
    a, b, shift = shifted_pair
    pair, ms = shift_matches
    # Points whose true match is inside image 1, away from the borders (the crop changes them).
    expected = ms.keypoints0 + shift
    inside = (expected[:, 0] >= 16) & (expected[:, 1] >= 16) & (expected[:, 0] < 284) & (expected[:, 1] < 184)
    gray = a.gray
    texture = np.array([gray[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4].std() for x, y in ms.keypoints0])
    sel = inside & (texture > 0.03)
    assert sel.sum() > 200
    err = np.linalg.norm(ms.keypoints1[sel] - expected[sel], axis=1)
    assert np.median(err) == 0.0
    assert (err <= 1.0).mean() > 0.9
    # Correct matches come back to where they started: small reciprocity errors.
    assert np.median(ms.reciprocity_error[sel]) == 0.0
    keep = filter_mask(ms, FilterSettings(reciprocity=1.0, stability=2.0))
    kept_err = np.linalg.norm(ms.keypoints1[keep] - (ms.keypoints0[keep] + shift), axis=1)
    assert keep.sum() > 100 and (kept_err <= 1.0).mean() > 0.97


def test_stability_all8_is_worst_of_neighbours(shifted_pair, shift_matches):
    pair, ms = shift_matches
    ms8 = match(pair, MatchOptions(keypoints="grid", grid_stride=6, min_texture=0.0, stability="all8", subpixel=False))
    assert np.array_equal(ms8.keypoints1, ms.keypoints1)
    assert np.all(ms8.stability_error >= ms.stability_error - 1e-5)
    again = match(pair, MatchOptions(keypoints="grid", grid_stride=6, min_texture=0.0, subpixel=False))
    assert np.array_equal(again.stability_error, ms.stability_error), "seeded: results repeat"


def test_sift_points_detected_ahead_on_a_gpu_give_the_same_matches(shift_matches):
    pair, ms = shift_matches
    options = MatchOptions(keypoints="sift", max_keypoints=300)
    assert prefetch_query_points(pair.image0, options, "cpu") is None  # a CPU has no idle cores to overlap with
    assert prefetch_query_points(pair.image0, MatchOptions(keypoints="grid"), "cuda") is None  # nothing to detect
    ahead = prefetch_query_points(pair.image0, options, "cuda")  # no GPU needed: only the device type decides
    assert np.array_equal(ahead.result(), sift_points(pair.image0.gray, 300))
    serial, overlapped = match(pair, options), match(pair, options, prefetched=ahead)
    assert len(serial) > 50
    assert np.array_equal(serial.keypoints0, overlapped.keypoints0) and np.array_equal(serial.keypoints1, overlapped.keypoints1)


def test_with_image1_reuses_image_0_and_matches_like_a_fresh_pair(shifted_pair, shift_matches):
    pair, ms = shift_matches
    a, b, _ = shifted_pair
    torch.manual_seed(0)
    model = build_model("ResUNetBN2F", 16).eval()  # the fixture's weights, made again
    again = pair.with_image1(model, b)
    assert again.desc0 is pair.desc0 and again.flat0 is pair.flat0  # image 0's features and search copy are not redone
    assert torch.allclose(again.desc1, pair.desc1, atol=1e-5)
    redo = match(again, MatchOptions(keypoints="grid", grid_stride=6, min_texture=0.0, subpixel=False))
    assert np.array_equal(redo.keypoints1, ms.keypoints1)


def test_given_points_in_order_and_original_pixels(terrace_pair, tiny_model_file):
    from ucn_gui.core.checkpoint import load_model

    model = load_model(tiny_model_file).model
    a, b = load_image(terrace_pair[0], max_side=200), load_image(terrace_pair[1], max_side=200)
    assert a.original_size == (744, 496) and a.size == (200, 133)
    pts = np.array([[700.0, 10.0], [5.5, 480.0], [372.0, 248.0]], np.float32)
    _, ms = match_images(model, a, b, points0=pts)
    assert np.array_equal(ms.keypoints0, pts)
    assert ms.keypoints1[:, 0].max() < 744 and ms.keypoints1[:, 1].max() < 496
    assert ms.keypoints1.min() >= -0.5


def test_similarity_map_agrees_with_match(shift_matches):
    pair, ms = shift_matches
    x, y = ms.keypoints0[100]
    sim, best = similarity_map(pair, float(x), float(y))
    assert sim.shape == (pair.image1.size[1], pair.image1.size[0])
    assert np.allclose(best, ms.keypoints1[100])
    assert sim.max() <= 1.0001


def test_cancel_between_stages(shifted_pair):
    a, b, _ = shifted_pair
    stages = []
    with pytest.raises(Cancelled):
        match_images(build_model("ResUNetBN2F", 8), a, b, progress=lambda s, f: stages.append(s), cancel=lambda: len(stages) >= 1)
    assert stages == ["features image 0"]


def test_filters_pure_and_switchable(shift_matches):
    _, ms = shift_matches
    off = FilterSettings(reciprocity=None, stability=None)
    assert filter_mask(ms, off).all()
    loose, tight = filter_mask(ms, FilterSettings(4, 4)), filter_mask(ms, FilterSettings(1, 1))
    assert tight.sum() <= loose.sum() and not (tight & ~loose).any()
    ratio = filter_mask(ms, FilterSettings(None, None, max_ratio=0.8))
    assert np.array_equal(ratio, ms.ratio <= 0.8)


def test_ransac_removes_outliers():
    rng = np.random.default_rng(0)
    from ucn_gui.core.matching import MatchSet

    p0 = rng.uniform(0, 500, (300, 2)).astype(np.float32)
    H = np.array([[0.9, 0.1, 20], [-0.05, 1.1, 5], [1e-4, 0, 1]])
    p1h = np.c_[p0, np.ones(300)] @ H.T
    p1 = (p1h[:, :2] / p1h[:, 2:]).astype(np.float32)
    p1[:60] = rng.uniform(0, 500, (60, 2))
    z = np.zeros(300, np.float32)
    ms = MatchSet(p0, p1, z, z, z, z)
    inl = ransac_mask(ms, np.ones(300, bool), "homography", 2.0)
    assert inl[60:].mean() > 0.98 and inl[:60].mean() < 0.1
    assert apply_filters(ms, FilterSettings(ransac="fundamental")).sum() >= 240


def test_keypoint_sources(terrace_pair):
    img = load_image(terrace_pair[0])
    pts = sift_points(img.gray, 500)
    assert 100 < len(pts) <= 500
    assert len(np.unique(np.round(pts), axis=0)) == len(pts)
    g = grid_points(20, 10, 4)
    assert g.shape == (10, 2) and g[0].tolist() == [2, 2]


def test_points_file(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("# x y\n10 20\n3.5, 4\n\n")
    assert read_points_file(str(f)).tolist() == [[10, 20], [3.5, 4]]
    f.write_text("10 20 30\n")
    with pytest.raises(ValueError, match="p.txt:1"):
        read_points_file(str(f))


def test_no_query_points_gives_empty_matchset(shift_matches):
    pair, _ = shift_matches
    for mode in ("diagonal", "all8"):
        ms = match(pair, MatchOptions(stability=mode), points0=np.zeros((0, 2), np.float32))
        assert len(ms) == 0 and ms.stability_error.shape == (0,) and ms.keypoints1.shape == (0, 2)


def test_repeated_query_points_are_searched_once_and_answered_alike(shift_matches, monkeypatch):
    from ucn_gui.core import matching

    pair, ms = shift_matches
    pts = ms.keypoints0[:50]
    sizes = []
    real = matching.nearest_neighbors
    monkeypatch.setattr(matching, "nearest_neighbors", lambda q, *a, **k: sizes.append(len(q)) or real(q, *a, **k))
    whole = MatchOptions(subpixel=False)  # the searched pixels themselves
    once = match(pair, whole, points0=pts)
    thrice = match(pair, whole, points0=np.concatenate([pts, pts[::-1], pts]))
    assert sizes[0] == sizes[2] == 50  # forward searches: 50 distinct pixels each time
    for column in ("keypoints1", "reciprocity_error", "descriptor_distance", "ratio"):
        a, b = getattr(once, column), getattr(thrice, column)
        assert np.array_equal(b[:50], a) and np.array_equal(b[50:100], a[::-1]) and np.array_equal(b[100:], a)


def test_cancel_stops_an_every_pixel_search_quickly(shifted_pair):
    """'Every pixel' query points: Cancel during the search must stop it within a fraction of a second."""
    import threading
    import time

    a, b, _ = shifted_pair
    pair = PairFeatures.compute(build_model("ResUNetBN2F", 8).eval(), a, b)
    stop = threading.Event()
    stages = []
    timer = []

    def progress(stage, _fraction):
        stages.append(stage)
        if stage == "forward search":  # ask to stop 0.2 s into the search of 60,000 queries
            threading.Timer(0.2, lambda: (timer.append(time.perf_counter()), stop.set())).start()

    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        match(pair, MatchOptions(keypoints="all", min_texture=0.0), progress=progress, cancel=stop.is_set)
    end = time.perf_counter()
    assert stages[-1] == "forward search" and timer
    print(f"stopped {end - timer[0]:.3f} s after the cancel, {end - t0:.2f} s after the start")
    assert end - timer[0] < 0.5


def test_sift_in_tiles_finds_the_same_points_and_can_be_cancelled(terrace_pair, monkeypatch):
    from ucn_gui.core import keypoints

    gray = load_image(terrace_pair[0]).gray  # 744 x 496
    whole = sift_points(gray, 800)
    monkeypatch.setattr(keypoints, "SIFT_TILE_ABOVE", 100_000)
    monkeypatch.setattr(keypoints, "SIFT_TILE", 200)
    tiled = sift_points(gray, 800)
    assert 700 <= len(tiled) <= 800
    common = set(map(tuple, np.round(whole).astype(int).tolist())) & set(map(tuple, np.round(tiled).astype(int).tolist()))
    assert len(common) > 0.8 * len(whole)
    checks = []
    with pytest.raises(Cancelled):
        sift_points(gray, 800, cancel=lambda: checks.append(1) or len(checks) > 3)
    assert len(checks) == 4  # one before, then between tiles (12 tiles here)


def test_nn_bf16_gives_way_to_fp32_when_it_cannot_separate_anything(monkeypatch):
    from ucn_gui.core import nn

    # Near-constant descriptors (an untrained network): the probe block falls back entirely,
    # so the other queries go straight to the fp32 search, with the same results.
    db = torch.nn.functional.normalize(torch.ones(6000, 16) + 0.003 * _unit(6000, 16, 9), dim=1)
    q = db[torch.randperm(6000, generator=torch.Generator().manual_seed(1))[:1000]]
    low_calls = []
    real = nn._search_low_precision
    monkeypatch.setattr(nn, "_search_low_precision", lambda q_, *a: low_calls.append(len(q_)) or real(q_, *a))
    s, i = nearest_neighbors(q, db, k=1, coarse=db.bfloat16())
    assert low_calls == [nn.PROBE_QUERIES]
    ref_s, ref_i = nearest_neighbors(q, db, k=1)
    assert torch.equal(i, ref_i) and torch.equal(s, ref_s)
    # Distinctive descriptors: the bf16 pass carries on after the probe.
    low_calls.clear()
    q2, db2 = _unit(1000, 16, 3), _unit(6000, 16, 4)
    nearest_neighbors(q2, db2, k=1, coarse=db2.bfloat16())
    assert low_calls == [nn.PROBE_QUERIES, 1000 - nn.PROBE_QUERIES]


def test_thresholds_mean_the_same_on_a_4x_upscaled_pair():
    """Issue 14: the 4096-px copy of DSC_0410/0411 kept 8 of 2,000 matches where the 1024-px
    photos kept 267, because errors were measured in original pixels. They are measured at
    the network's resolution now, so the same thresholds keep (nearly) the same matches."""
    import cv2

    from ucn_gui.core.checkpoint import load_model
    from ucn_gui.core.filters import default_filters
    from ucn_gui.core.image import prepare_image, read_rgb
    from ucn_gui.core.resources import models_dir, sample_pair

    loaded = load_model(models_dir() / "default.safetensors")
    filters = default_filters(loaded.card)  # reciprocity 1, stability 4: chosen at 640-px matching
    photos = [read_rgb(p) for p in sample_pair()]
    options = MatchOptions(max_keypoints=1000)
    kept = []
    for factor in (1, 4):
        rgb = [cv2.resize(p, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC) for p in photos]
        _, ms = match_images(loaded.model, *(prepare_image(p, 640) for p in rgb), options, precision="fp32")
        assert ms.network_side == 640 and ms.error_scale == pytest.approx(max(rgb[0].shape[:2]) / 640, rel=0.01)
        kept.append(filter_mask(ms, filters))
    n1, n4 = int(kept[0].sum()), int(kept[1].sum())
    print(f"kept {n1} at 1x, {n4} at 4x")
    assert n1 > 50 and abs(n4 - n1) <= 0.05 * n1


def test_similarity_map_queries_both_ways(shift_matches):
    """Issue 14: a click in the right image queries back into the left with the backward features."""
    pair, ms = shift_matches
    sim0, best1 = similarity_map(pair, 100.0, 80.0)
    sim1, best0 = similarity_map(pair, *best1, side=1)
    assert sim0.shape == pair.desc1.shape[1:] and sim1.shape == pair.desc0.shape[1:]
    w0 = pair.image0.size[0]
    q = pair.desc1[:, int(round(best1[1])), int(round(best1[0]))]
    expected = int(torch.einsum("c,chw->hw", q, pair.desc0).argmax())
    assert best0 == (float(expected % w0), float(expected // w0))
