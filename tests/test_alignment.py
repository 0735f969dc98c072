"""Align and match again (core.alignment) on a real photo turned and zoomed by a known homography."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ucn_gui.core.alignment import Alignment, WarpedImage, fit_alignment, match_aligned, warp_image1
from ucn_gui.core.checkpoint import load_model
from ucn_gui.core.filters import FilterSettings, default_filters, filter_mask
from ucn_gui.core.image import prepare_image, read_rgb
from ucn_gui.core.matching import MatchOptions, match_images, similarity_map
from ucn_gui.core.model import build_model
from ucn_gui.core.resources import models_dir

OPTIONS = MatchOptions(max_keypoints=1000)


@pytest.fixture(scope="module")
def bundled():
    return load_model(models_dir() / "default.safetensors")


@pytest.fixture(scope="module")
def turned_pair(sample_pair):
    """Image 0: a sample photo at 480 px; image 1: the same turned by 30 degrees and zoomed 1.2x about its
    centre, stored at 600 px (so its original pixels differ from its network copy's). H maps image 0 -> image 1."""
    rgb = read_rgb(sample_pair[0])
    rgb = cv2.resize(rgb, (480, round(480 * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    A = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.2)
    H = np.vstack([A, [0, 0, 1]])
    turned = cv2.warpPerspective(rgb, H, (w, h), flags=cv2.INTER_LINEAR)
    big = cv2.resize(turned, (600, round(600 * h / w)), interpolation=cv2.INTER_CUBIC)
    H = np.diag([600 / w, big.shape[0] / h, 1.0]) @ H  # into the enlarged copy's pixels (corner-aligned, close enough)
    return prepare_image(rgb, 480), prepare_image(big, 480, original_size=None), H


def _correct(ms, keep, H, px=3.0):
    truth = cv2.perspectiveTransform(ms.keypoints0[keep][None].astype(np.float64), H)[0]
    return int((np.linalg.norm(ms.keypoints1[keep] - truth, axis=1) < px).sum())


def test_the_aligned_pass_finds_many_more_correct_matches_on_a_turned_photo(bundled, turned_pair):
    img0, img1, H = turned_pair
    trust = default_filters(bundled.card)
    stages = []
    pair, ms, al = match_aligned(bundled.model, img0, img1, OPTIONS, trust, progress=lambda s, f: stages.append((s, f)))
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # one bar over both passes, never backwards
    assert "features of image 1, aligned" in [s for s, _ in stages]
    first = ms
    if al.used:
        _, first = match_images(bundled.model, img0, img1, OPTIONS)
    before = _correct(first, filter_mask(first, trust), H)
    after = _correct(ms, filter_mask(ms, trust), H)
    print(f"{al.summary()}; correct kept matches {before} -> {after}")
    assert al.used and isinstance(pair.image1, WarpedImage)
    assert after >= 2 * before and after >= 150
    kept = filter_mask(ms, trust)
    assert _correct(ms, kept, H) / kept.sum() > 0.9  # the targets are mapped back into image 1's own pixels
    # The warp is the true homography inverted (image 1 -> image 0), roughly: it is fitted to the first pass's few
    # kept matches (58 here) and only has to bring the pair close to mild; the corners are extrapolated.
    corners = np.float64([[0, 0], [479, 0], [479, 300], [0, 300]])
    back = cv2.perspectiveTransform(cv2.perspectiveTransform(corners[None], H), al.homography)[0]
    assert np.abs(back - corners).max() < 8
    truth = Alignment(np.linalg.inv(H), 0, 0, 0, False)
    assert abs(truth.rotation_deg) == pytest.approx(30, abs=0.5) and truth.scale == pytest.approx(1 / (1.2 * 600 / 480), rel=0.01)
    assert al.rotation_deg == pytest.approx(truth.rotation_deg, abs=1.5) and al.scale == pytest.approx(truth.scale, rel=0.03)


def test_click_queries_on_an_aligned_pair_answer_in_image_1s_own_pixels(bundled, turned_pair):
    img0, img1, H = turned_pair
    pair, ms, al = match_aligned(bundled.model, img0, img1, OPTIONS, default_filters(bundled.card))
    assert al.used
    x, y = 250.0, 160.0
    sim, best = similarity_map(pair, x, y, side=0)
    assert sim.shape == img1.gray.shape  # over image 1 as it lies on screen, not over its warped copy
    truth = cv2.perspectiveTransform(np.float64([[[x, y]]]), H)[0, 0]
    assert np.linalg.norm(np.array(best) - truth) < 4
    peak = np.unravel_index(np.argmax(sim), sim.shape)[::-1]  # (x, y) in image 1's network pixels
    assert np.linalg.norm(img1.to_original(np.float32([peak]))[0] - truth) < 6
    # Back from image 1: the best pixel of image 0 is where the click came from.
    _, back = similarity_map(pair, *truth, side=1)
    assert np.linalg.norm(np.array(back) - [x, y]) < 4


def test_warped_copy_maps_coordinates_both_ways_and_knows_its_border(turned_pair):
    img0, img1, H = turned_pair
    warped = warp_image1(img0, img1, np.linalg.inv(H))
    assert warped.size == img0.size and warped.original_size == img1.original_size
    pts = np.float32([[10, 20], [300.5, 100.25], [599, 300]])
    assert np.allclose(warped.to_original(warped.to_network(pts)), pts, atol=1e-3)
    # Image 1's centre lands on image 0's centre; its far corners fall outside image 0's frame.
    centre1 = cv2.perspectiveTransform(np.float64([[[240, 150]]]), H)[0]
    assert warped.covers(centre1.astype(np.float32)).all()
    assert not warped.covers(np.float32([[0, 0]])).any()


def test_no_alignment_without_enough_trusted_matches(turned_pair):
    img0, img1, _ = turned_pair
    torch.manual_seed(0)
    untrained = build_model("ResUNetBN2F", 16).eval()
    nothing = FilterSettings(max_distance=-1.0)  # trusts no match: nothing to fit a homography to
    pair, ms, al = match_aligned(untrained, img0, img1, OPTIONS, nothing)
    assert al == Alignment(None, 0, 0, 0, False)
    assert not isinstance(pair.image1, WarpedImage) and len(ms) == 1000
    assert al.summary().startswith("Second pass skipped")
    assert fit_alignment(ms, np.zeros(len(ms), bool)) == (None, 0)


@pytest.mark.parametrize("turn", [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180])
def test_photos_turned_by_quarter_turns_are_found_by_the_probes(bundled, sample_pair, turn):
    rgb = read_rgb(sample_pair[0])
    rgb = cv2.resize(rgb, (480, round(480 * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    trust = default_filters(bundled.card)
    pair, ms, al = match_aligned(bundled.model, prepare_image(rgb), prepare_image(cv2.rotate(rgb, turn)), OPTIONS, trust)
    print(al.summary())
    assert al.used and abs(al.probe_turn_deg) in (90, 180) and al.kept_first < 100  # the first pass alone fails
    keep = filter_mask(ms, trust)
    x, y = ms.keypoints0[keep].T
    truth = np.stack([h - 1 - y, x], 1) if turn == cv2.ROTATE_90_CLOCKWISE else np.stack([w - 1 - x, h - 1 - y], 1)
    correct = np.linalg.norm(ms.keypoints1[keep] - truth, axis=1) < 2
    assert keep.sum() >= 300 and correct.mean() > 0.95
