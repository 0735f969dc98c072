"""Sub-pixel targets (core.subpixel): exact on made-up scores, closer to the truth on a real photo."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ucn_gui.core.checkpoint import load_model
from ucn_gui.core.filters import default_filters, filter_mask
from ucn_gui.core.image import prepare_image, read_rgb
from ucn_gui.core.matching import MatchOptions, match_images
from ucn_gui.core.resources import models_dir
from ucn_gui.core.subpixel import parabola_peak, quadratic_peak, refine_targets, sample_descriptors


def test_the_parabola_vertex_is_found_and_a_flat_or_rising_row_is_left_whole():
    xs = torch.tensor([-1.0, 0.0, 1.0])
    for vertex in (-0.45, -0.2, 0.0, 0.3):
        s = -((xs - vertex) ** 2) + 0.9
        assert float(parabola_peak(s[0:1], s[1:2], s[2:3])) == pytest.approx(vertex, abs=1e-6)
    flat = torch.ones(1)
    assert float(parabola_peak(flat, flat, flat)) == 0.0
    assert float(parabola_peak(torch.tensor([0.1]), torch.tensor([0.5]), torch.tensor([0.9]))) == 0.0  # a slope, no peak


def test_bilinear_descriptors_match_the_pixels_at_pixel_centres_and_are_unit_length():
    desc = torch.nn.functional.normalize(torch.randn(8, 5, 7), dim=0)
    at = torch.tensor([[0.0, 0.0], [6.0, 4.0], [3.0, 2.0]])
    assert torch.allclose(sample_descriptors(desc, at), desc[:, [0, 4, 2], [0, 6, 3]].t(), atol=1e-6)
    between = sample_descriptors(desc, torch.tensor([[2.5, 1.25]]))
    assert torch.allclose(between.norm(dim=1), torch.ones(1), atol=1e-6)


def test_the_peak_of_a_tilted_quadratic_is_found_and_a_saddle_falls_back_to_the_axes():
    y, x = torch.meshgrid(torch.tensor([-1.0, 0.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0]), indexing="ij")
    x0, y0 = 0.2, -0.35
    bowl = -(1.0 * (x - x0) ** 2 + 0.6 * (y - y0) ** 2 + 0.5 * (x - x0) * (y - y0))  # elongated and tilted
    assert torch.allclose(quadratic_peak(bowl[None])[0], torch.tensor([x0, y0]), atol=1e-5)
    saddle = -(x - 0.3) ** 2 + 0.5 * y**2
    assert torch.allclose(quadratic_peak(saddle[None])[0], torch.tensor([0.3, 0.0]), atol=1e-5)  # y: no peak, left whole


def test_targets_on_the_border_are_left_whole_and_others_stay_near_their_pixel():
    desc = torch.nn.functional.normalize(torch.randn(8, 5, 7), dim=0)
    targets = torch.tensor([[0, 2], [3, 4], [3, 2], [5, 1]])
    out = refine_targets(desc, desc, targets.float() + 0.3, targets)
    assert torch.equal(out[:2], targets[:2].float())
    assert (out - targets).abs().max() <= 1.5  # recentred by at most one pixel, then at most half a pixel


@pytest.mark.parametrize("shift", [(0.4, -0.3), (-0.25, 0.45), (1.0, 0.0), (0.5, 0.5)])
def test_refined_targets_land_closer_to_a_known_sub_pixel_shift(sample_pair, shift):
    """Image 1 is image 0 moved by a fraction of a pixel: every true target lies between pixels."""
    model = load_model(models_dir() / "default.safetensors")
    rgb = read_rgb(sample_pair[0])
    rgb = cv2.resize(rgb, (480, round(480 * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    moved = cv2.warpAffine(rgb, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), rgb.shape[1::-1],
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    img0, img1 = prepare_image(rgb, 480), prepare_image(moved, 480)
    errors = {}
    for subpixel in (False, True):
        _, ms = match_images(model.model, img0, img1, MatchOptions(max_keypoints=500, subpixel=subpixel))
        keep = filter_mask(ms, default_filters(model.card))
        truth = ms.keypoints0[keep] + np.float32(shift)
        errors[subpixel] = np.linalg.norm(ms.keypoints1[keep] - truth, axis=1)
    assert len(errors[True]) >= 200
    whole, refined = np.median(errors[False]), np.median(errors[True])
    print(f"median target error: whole pixels {whole:.3f} px, refined {refined:.3f} px")
    assert refined < 0.6 * whole


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu_check.sh runs it)")
def test_refining_on_cuda_gives_the_cpu_result():
    g = torch.Generator().manual_seed(0)
    desc0 = torch.nn.functional.normalize(torch.randn(16, 40, 60, generator=g), dim=0)
    desc1 = torch.nn.functional.normalize(torch.randn(16, 40, 60, generator=g), dim=0)
    points = torch.rand(200, 2, generator=g) * torch.tensor([59.0, 39.0])
    targets = points.round().long()
    on_cpu = refine_targets(desc0, desc1, points, targets)
    on_cuda = refine_targets(desc0.cuda(), desc1.cuda(), points.cuda(), targets.cuda())
    assert on_cuda.device.type == "cpu" and torch.allclose(on_cuda, on_cpu, atol=1e-4)
