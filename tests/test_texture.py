"""Grid and every-pixel queries skip flat pixels (MatchOptions.min_texture): the texture measure,
the query points it leaves, and why: flat pixels' matches are the wrong ones on a real pair."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.datasets.posed import fundamental_matrix, read_cameras, symmetric_epipolar_px
from ucn_gui.core.checkpoint import load_model
from ucn_gui.core.filters import default_filters, filter_mask
from ucn_gui.core.image import load_image
from ucn_gui.core.keypoints import grid_points, texture_map, textured_points
from ucn_gui.core.matching import PairFeatures, match, match_images
from ucn_gui.core.model import build_model
from ucn_gui.core.settings import MatchOptions
from ucn_gui.core.zoo import default_model_path

DINO = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "posed_val" / "middlebury_dino_sparse_ring"

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest


def _made_image() -> np.ndarray:
    """96 x 192 grey in [-0.5, 0.5]: left half flat with one vertical step edge at x = 48, right half noise."""
    rng = np.random.default_rng(0)
    gray = np.full((96, 192), -0.1, np.float32)
    gray[:, 48:96] = 0.2
    gray[:, 96:] = rng.uniform(-0.5, 0.5, (96, 96)).astype(np.float32)
    return gray


def test_texture_is_high_in_noise_and_about_zero_on_flat_areas_and_along_a_straight_edge():
    tex = texture_map(_made_image())
    assert tex.shape == (96, 192) and tex.dtype == np.float32
    assert np.median(tex[10:-10, 110:-10]) > 1e-2  # texture: varies in both directions
    assert tex[10:-10, 5:40].max() < 1e-6  # flat
    assert tex[10:-10, 46:50].max() < 1e-6  # one straight edge varies in one direction only
    # uint8 input gives the same numbers (OpenCV scales uint8 by 1/255).
    as_uint8 = np.round((_made_image() + 0.5) * 255).astype(np.uint8)
    assert np.allclose(texture_map(as_uint8)[10:-10, 110:-10], tex[10:-10, 110:-10], rtol=0.02, atol=1e-4)


def test_textured_points_keep_the_noise_half_and_zero_keeps_everything():
    gray = _made_image()
    pts = grid_points(192, 96, 4)
    kept = textured_points(pts, gray, 1e-4)
    assert len(kept) and kept[:, 0].min() >= 92  # only the noise half (and its rim) is left
    assert len(kept) == np.count_nonzero(pts[:, 0] >= 94)
    assert textured_points(pts, gray, 0.0) is pts
    assert len(textured_points(np.zeros((0, 2), np.float32), gray, 1e-4)) == 0
    with pytest.raises(ValueError, match="min_texture"):
        MatchOptions(min_texture=-1.0)
    with pytest.raises(ValueError, match="min_texture"):
        MatchOptions(min_texture=float("nan"))


def test_grid_and_every_pixel_runs_query_only_textured_pixels(terrace_pair):
    image = load_image(terrace_pair[0], 160)
    torch.manual_seed(0)
    pair = PairFeatures.compute(build_model("ResUNetBN2F", 8).eval(), image, image)
    for mode, every in (("grid", grid_points(*image.size, 4)), ("all", grid_points(*image.size, 1))):
        gated = match(pair, MatchOptions(keypoints=mode, grid_stride=4, subpixel=False))
        plain = match(pair, MatchOptions(keypoints=mode, grid_stride=4, subpixel=False, min_texture=0.0))
        assert len(plain) == len(every)
        expected = image.to_original(textured_points(every, image.gray, MatchOptions.min_texture))
        assert 0.1 * len(every) < len(gated) < 0.9 * len(every)  # a photo: some of each
        assert np.allclose(gated.keypoints0, expected)


@pytest.mark.skipif(default_model_path() is None, reason="the bundled model is not installed")
def test_on_a_real_pair_the_flat_pixels_kept_matches_are_the_wrong_ones():
    """The dino: a textured figure on a black background. Matched from every 4th pixel with the
    bundled model at its card's thresholds, the kept matches of flat pixels are far less often
    on their epipolar line than those of textured pixels."""
    loaded = load_model(default_model_path())
    cams = read_cameras(DINO)
    a, b = "dinoSR0001.jpg", "dinoSR0016.jpg"  # 7.5° apart
    im0, im1 = load_image(DINO / "images" / a), load_image(DINO / "images" / b)
    _, ms = match_images(loaded.model, im0, im1, MatchOptions(keypoints="grid", grid_stride=4, min_texture=0.0))
    keep = filter_mask(ms, default_filters(loaded.card))
    tex = texture_map(im0.gray)
    xy = np.round(ms.keypoints0).astype(int)
    flat = tex[xy[:, 1], xy[:, 0]] < MatchOptions.min_texture
    err = symmetric_epipolar_px(fundamental_matrix(cams[a], cams[b]), ms.keypoints0.astype(float), ms.keypoints1.astype(float))
    right = err <= 2.0
    n_flat, n_tex = np.count_nonzero(keep & flat), np.count_nonzero(keep & ~flat)
    p_flat, p_tex = right[keep & flat].mean(), right[keep & ~flat].mean()
    print(f"kept: flat {n_flat} at precision {p_flat:.2f}, textured {n_tex} at {p_tex:.2f}")
    assert n_flat >= 30 and n_tex >= 30
    assert p_tex >= 0.85 and p_tex - p_flat >= 0.1
