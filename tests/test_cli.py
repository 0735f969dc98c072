"""ucn-match end to end on a real pair, with a model made here."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ucn_gui.cli import main
from ucn_gui.core.match_files import load_matches
from ucn_gui.core.filters import FilterSettings, filter_mask
from ucn_gui.core.matching import MatchSet

COLUMNS = ("keypoints0", "keypoints1", "reciprocity_error_network_px", "stability_error_network_px",
           "reciprocity_error_original_px", "stability_error_original_px", "descriptor_distance", "mask")


def test_cli_npz_csv_json_agree(tmp_path, terrace_pair, tiny_model_file):
    outs = {}
    for ext in ("npz", "csv", "json"):
        out = tmp_path / f"m.{ext}"
        args = [*map(str, terrace_pair), "-o", str(out), "--weights", str(tiny_model_file), "--max-size", "256", "-q"]
        if ext == "npz":
            args += ["--viz", str(tmp_path / "viz.png"), "--viz-lines"]
        assert main(args) == 0
        outs[ext] = load_matches(out)
    npz = outs["npz"]
    assert npz["keypoints0"].dtype == np.float32 and npz["keypoints0"].shape[1] == 2 and len(npz["keypoints0"]) > 100
    assert npz["mask"].dtype == bool
    # Coordinates are in original pixels (744 x 496), not the 256-px copy.
    assert npz["keypoints0"][:, 0].max() > 300 and npz["keypoints1"][:, 0].max() < 744
    for ext in ("csv", "json"):
        for col in COLUMNS:  # the same numbers: text formats lose no precision
            assert np.array_equal(outs[ext][col].astype(npz[col].dtype), npz[col]), (ext, col)
    s = npz["settings"]
    assert s["max_size"] == 256 and s["filter_reciprocity"] == 4.0 and s["architecture"] == "ResUNetBN2F"
    assert "min_texture" not in s  # SIFT query points: the texture level chose nothing (grid runs record it)
    assert outs["json"]["settings"] == s == outs["csv"]["settings"]  # CSV: "# key: value" lines above the header
    # Both units, named; the thresholds are in network pixels (the 256-px copy of a 744-px photo).
    assert s["network_side"] == 256 and "network's resolution" in s["error_units"]["network_px"]
    scale = 744 / 256
    assert s["original_px_per_network_px"] == pytest.approx(scale, rel=0.01)
    big = npz["reciprocity_error_network_px"] > 0
    np.testing.assert_allclose(npz["reciprocity_error_original_px"][big] / npz["reciprocity_error_network_px"][big], scale, rtol=0.02)
    # The mask is exactly the threshold filter applied to the stored scores.
    z = np.zeros(len(npz["mask"]), np.float32)
    ms = MatchSet(npz["keypoints0"], npz["keypoints1"], npz["reciprocity_error_network_px"], npz["stability_error_network_px"], z, z)
    assert np.array_equal(npz["mask"], filter_mask(ms, FilterSettings(4.0, 4.0)))
    assert (tmp_path / "viz.png").stat().st_size > 1000


def test_cli_query_points_in_order(tmp_path, terrace_pair, tiny_model_file):
    pts = tmp_path / "pts.txt"
    pts.write_text("700 10\n5.5 480\n372 248\n")
    out = tmp_path / "q.npz"
    args = [*map(str, terrace_pair), "-o", str(out), "--weights", str(tiny_model_file), "--query-points", str(pts), "--max-size", "200", "-q"]
    assert main(args) == 0
    assert load_matches(out)["keypoints0"].tolist() == [[700, 10], [5.5, 480], [372, 248]]


def test_cli_grid_skips_flat_pixels_unless_min_texture_is_0(tmp_path, terrace_pair, tiny_model_file):
    counts = {}
    for level in ("1e-4", "0"):
        out = tmp_path / f"grid{level}.npz"
        args = [*map(str, terrace_pair), "-o", str(out), "--weights", str(tiny_model_file), "--max-size", "200",
                "--keypoints", "grid", "--grid-stride", "4", "--min-texture", level, "-q"]
        assert main(args) == 0
        m = load_matches(out)
        assert m["settings"]["min_texture"] == float(level) and m["settings"]["keypoints"] == "grid"
        counts[level] = len(m["keypoints0"])
    assert counts["0"] == len(range(2, 200, 4)) * len(range(2, round(496 * 200 / 744), 4))  # the whole grid
    assert 0.1 * counts["0"] < counts["1e-4"] < 0.9 * counts["0"]  # the terrace's flat sky and walls left out


@pytest.mark.parametrize("which", ["image", "model", "corrupt"])
def test_cli_errors_are_one_clear_line(tmp_path, terrace_pair, tiny_model_file, which):
    img0, img1 = map(str, terrace_pair)
    weights = str(tiny_model_file)
    if which == "image":
        img1 = str(tmp_path / "missing.jpg")
    elif which == "model":
        weights = str(tmp_path / "missing.pth")
    else:
        bad = tmp_path / "bad.jpg"
        bad.write_bytes(b"\xff\xd8\xff garbage")
        img0 = str(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "ucn_gui.cli", img0, img1, "-o", str(tmp_path / "o.npz"), "--weights", weights],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("ucn-match: error:")]
    assert len(lines) == 1 and ("missing" in lines[0] or "bad.jpg" in lines[0]), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.npz").exists()


def test_cli_precision_and_timing(tmp_path, terrace_pair, tiny_model_file, capsys, monkeypatch):
    from ucn_gui.core import precision

    base = [*map(str, terrace_pair), "--weights", str(tiny_model_file), "--max-size", "200", "-q", "--device", "cpu"]
    assert main([*base, "-o", str(tmp_path / "a.npz"), "--precision", "fp32", "--timing"]) == 0
    err = capsys.readouterr().err.splitlines()
    timing = [line for line in err if line.startswith("timing:")]
    assert len(timing) == 1
    for stage in ("decode", "features", "search", "tests", "total"):
        assert f" {stage} " in timing[0]
    assert "(fp32 on cpu)" in timing[0]
    assert load_matches(tmp_path / "a.npz")["settings"]["precision"] == "fp32"

    # fp16 cannot run on the CPU: a notice, and the run goes ahead in what 'auto' picks there.
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert main([*base, "-o", str(tmp_path / "b.npz"), "--precision", "fp16"]) == 0
    assert "ucn-match: fp16 runs on CUDA only; using fp32 on the CPU." in capsys.readouterr().err
    b = load_matches(tmp_path / "b.npz")
    assert b["settings"]["precision"] == "fp32"
    assert np.array_equal(b["keypoints1"], load_matches(tmp_path / "a.npz")["keypoints1"])

    with pytest.raises(SystemExit):
        main([*base, "-o", str(tmp_path / "c.npz"), "--precision", "fp64"])


def test_cli_decodes_large_photos_reduced_in_original_pixels(tmp_path, terrace_pair, tiny_model_file, monkeypatch):
    import cv2

    from ucn_gui.core import image

    monkeypatch.setattr(image, "DISPLAY_SIDE", 200)  # the terrace photos (744 px) count as huge here
    out, viz = tmp_path / "m.npz", tmp_path / "viz.png"
    args = [*map(str, terrace_pair), "-o", str(out), "--weights", str(tiny_model_file), "--max-size", "160", "-q",
            "--viz", str(viz), "--reciprocity", "-1", "--stability", "-1"]
    assert main(args) == 0
    m = load_matches(out)
    assert m["keypoints0"][:, 0].max() > 600 and m["keypoints1"][:, 1].max() > 400  # original pixels (744 x 496)
    assert cv2.imread(str(viz)).shape[:2] == (248, 744)  # both photos decoded at 1/2 (372 x 248)


def test_cli_thresholds_default_to_the_model_card(tmp_path, terrace_pair):
    """The bundled model's card names its thresholds; flags still override them, and <0 switches a test off."""
    from ucn_gui.core.checkpoint import load_card
    from ucn_gui.core.resources import models_dir

    card = load_card(models_dir() / "default.safetensors")["default_filters"]
    out = tmp_path / "d.npz"
    assert main([*map(str, terrace_pair), "-o", str(out), "--max-size", "200", "--max-keypoints", "200", "-q"]) == 0
    s = load_matches(out)["settings"]
    assert (s["filter_reciprocity"], s["filter_stability"], s["filter_max_ratio"]) == (
        card["reciprocity"], card["stability"], card["max_ratio"])
    assert main([*map(str, terrace_pair), "-o", str(out), "--max-size", "200", "--max-keypoints", "200", "-q",
                 "--reciprocity", "3", "--max-ratio", "-1"]) == 0
    s = load_matches(out)["settings"]
    assert s["filter_reciprocity"] == 3.0 and s["filter_max_ratio"] is None and s["filter_stability"] == card["stability"]


def test_cli_align_keeps_more_matches_on_a_turned_photo_and_records_the_warp(tmp_path, sample_pair, capsys):
    import cv2

    rgb = cv2.imread(str(sample_pair[0]))
    rgb = cv2.resize(rgb, (480, round(480 * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    H = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.2), [0, 0, 1]])  # image 0 -> image 1
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(a), rgb)
    cv2.imwrite(str(b), cv2.warpPerspective(rgb, H, (w, h)))
    base = [str(a), str(b), "--max-keypoints", "1000"]
    assert main([*base, "-o", str(tmp_path / "one.json"), "-q"]) == 0
    assert main([*base, "-o", str(tmp_path / "two.json"), "--align"]) == 0
    assert "Second pass shown" in capsys.readouterr().out
    # The output's thresholds do not change how the warp is fitted and the passes compared (the card's do).
    assert main([*base, "-o", str(tmp_path / "all.json"), "--align", "--reciprocity", "-1", "--stability", "-1",
                 "--max-ratio", "-1"]) == 0
    assert "Second pass shown" in capsys.readouterr().out
    one, two = load_matches(tmp_path / "one.json"), load_matches(tmp_path / "two.json")
    assert "alignment" not in one["settings"]
    assert len(two["keypoints0"]) + two["settings"]["alignment_dropped"] == len(one["keypoints0"])  # same queries
    fitted = np.array(two["settings"]["alignment_homography"])  # image 1 -> image 0
    centre = np.float64([[[w / 2, h / 2], [w / 3, h / 3]]])
    assert np.abs(cv2.perspectiveTransform(centre, fitted) - cv2.perspectiveTransform(centre, np.linalg.inv(H))).max() < 3
    def correct(m):
        truth = cv2.perspectiveTransform(np.asarray(m["keypoints0"])[np.asarray(m["mask"], bool)][None].astype(np.float64), H)[0]
        return int((np.linalg.norm(np.asarray(m["keypoints1"])[np.asarray(m["mask"], bool)] - truth, axis=1) < 3).sum())
    assert correct(two) >= 3 * max(correct(one), 30)
