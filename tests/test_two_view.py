"""core.two_view: epipolar lines, their clipping, and a homography's alignment pictures."""
from __future__ import annotations

import numpy as np
import pytest

from ucn_gui.core.two_view import clip_line, composite, epipolar_line, line_distance, warp_onto


def test_epipolar_lines_of_a_sideways_camera_are_rows():
    """A camera moved sideways (t = x): F = [t]x, every epipolar line is the pixel's own row."""
    F = np.array([[0, 0, 0], [0, 0, -1], [0, 1, 0]], float)
    line = epipolar_line(F, (120.0, 35.0), side=0)
    assert line_distance(line, (400.0, 35.0)) == pytest.approx(0.0)
    assert line_distance(line, (10.0, 38.0)) == pytest.approx(3.0)
    back = epipolar_line(F, (7.0, 80.0), side=1)
    assert line_distance(back, (300.0, 80.0)) == pytest.approx(0.0)
    a, b = clip_line(line, (640, 480))
    assert sorted([a[0], b[0]]) == [-0.5, 639.5] and a[1] == pytest.approx(35.0) and b[1] == pytest.approx(35.0)
    assert clip_line(line, (640, 20)) is None  # row 35 is below a 20-px image


def test_warp_onto_undoes_a_known_homography():
    rng = np.random.default_rng(0)
    rgb0 = rng.integers(0, 255, (60, 80, 3)).astype(np.uint8)
    shift = np.array([[1, 0, 5], [0, 1, 3], [0, 0, 1]], float)  # x1 = x0 + (5, 3)
    rgb1 = np.zeros_like(rgb0)
    rgb1[3:, 5:] = rgb0[:-3, :-5]
    warped = warp_onto(rgb1, shift, rgb0.shape)
    assert np.array_equal(warped[:-3, :-5], rgb0[:-3, :-5])
    # The same through reduced copies: photos twice as large as the arrays warped (display copies).
    big1 = np.zeros_like(rgb0)
    big1[6:, 10:] = rgb0[:-6, :-10]
    big_shift = np.array([[1, 0, 10], [0, 1, 6], [0, 0, 1]], float)  # in the photos' pixels
    small = warp_onto(big1[::2, ::2], big_shift, rgb0[::2, ::2].shape, (2.0, 2.0), (2.0, 2.0))
    assert np.array_equal(small[:-3, :-5], rgb0[::2, ::2][:-3, :-5])
    assert np.array_equal(composite(rgb0, warped, "blend", 0.0), rgb0)
    assert np.array_equal(composite(rgb0, warped, "blend", 1.0), warped)
    assert composite(rgb0, warped, "difference")[:-3, :-5].max() == 0
    board = composite(rgb0, warped * 0, "checkerboard", tile=10)
    assert (board[:10, :10] == rgb0[:10, :10]).all() and (board[:10, 10:20] == 0).all()
    with pytest.raises(ValueError, match="unknown composite mode"):
        composite(rgb0, warped, "sepia")
