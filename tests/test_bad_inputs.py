"""Bad inputs end in one line naming the culprit and exit code 2, before any work, and
never change a file the user did not name as an output (issue 16).

The CLI table runs ``ucn_gui.cli.main`` in this process (fast: torch is loaded once)
with the computation patched to fail if it ever starts; a few rows also run as real
subprocesses. The trainer table runs ``trainer.__main__.main`` the same way.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import stat
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ucn_gui import cli
from ucn_gui.core import matching
from ucn_gui.core.checkpoint import ModelOutputError, load_model, save_model
from ucn_gui.core.files import atomic_write, remove_stale_temp_files
from ucn_gui.core.match_files import load_matches
from ucn_gui.core.filters import FilterSettings, default_filters
from ucn_gui.core.image import load_image
from ucn_gui.core.keypoints import QueryPointsError, check_query_points
from ucn_gui.core.model import build_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


# --------------------------------------------------------------------------- a workspace of inputs


def _state(seed: int = 0, **kw) -> OrderedDict:
    torch.manual_seed(seed)
    return OrderedDict(build_model("ResUNetBN2F", 16, **kw).state_dict())


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """Inputs of every kind, good and bad, in one folder the tests run in."""
    d = tmp_path_factory.mktemp("ws")
    shutil.copy(DATA / "terrace0.jpg", d / "a.jpg")
    shutil.copy(DATA / "terrace1.jpg", d / "b.jpg")
    cv2.imwrite(str(d / "A.png"), cv2.imread(str(DATA / "terrace0.jpg")))
    shutil.copy(DATA / "terrace0.jpg", d / "photo.npz")  # an image whose name looks like an output
    (d / "sub").mkdir()
    (d / "dir.npz").mkdir()
    (d / "dir.png").mkdir()
    cv2.imwrite(str(d / "one-pixel.png"), np.zeros((1, 1, 3), np.uint8))
    (d / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.txt").write_text("not an image\n")
    (d / "ro.npz").write_bytes(b"keep me")
    os.chmod(d / "ro.npz", 0o444)
    os.symlink("A.png", d / "link.png")
    os.symlink("b.jpg", d / "linkout.npz")
    os.symlink("m.json", d / "m-link.png")  # dangling: points at the -o of the same command
    os.symlink("loop2.npz", d / "loop1.npz")
    os.symlink("loop1.npz", d / "loop2.npz")
    # query points
    (d / "pts.csv").write_text("10, 10\n300, 200\n")
    (d / "badpts.txt").write_text("10 10\n1 2 3\n")
    (d / "emptypts.txt").write_text("# nothing\n")
    (d / "outside.txt").write_text("-50 -50\nnan 3\n1e30 5\ninf 1\n800 10\n")
    (d / "binary.txt").write_bytes(b"\xff\xfe\x00\x81" * 8)
    # models
    good = _state()
    save_model(d / "tiny.safetensors", build_model("ResUNetBN2F", 16), {"name": "tiny"})
    torch.save(good, d / "w.npz")  # a weights file named like an output
    nan = OrderedDict((k, v.clone()) for k, v in good.items())
    nan["conv2.weight"][0, 0, 0, 0] = math.nan
    torch.save(nan, d / "nan.pth")
    inf = OrderedDict((k, v.clone()) for k, v in good.items())
    inf["final.weight"][1, 2, 0, 0] = math.inf
    torch.save(inf, d / "inf.pth")
    torch.save(OrderedDict((k, torch.zeros_like(v) if v.is_floating_point() else v) for k, v in good.items()), d / "zero.pth")
    torch.save(_state(in_channels=3), d / "rgb.pth")
    torch.save(OrderedDict(list(good.items())[:-3]), d / "shapes.pth")
    (d / "garbage.pth").write_bytes(b"PK\x03\x04 definitely not a model")
    save_model(d / "nancard.safetensors", build_model("ResUNetBN2F", 16), {"default_filters": {"reciprocity": math.nan}})
    return d


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root: content hash, permission bits, link target."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir", stat.S_IMODE(p.stat().st_mode))
        else:
            out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(), stat.S_IMODE(p.stat().st_mode))
    return out


@pytest.fixture
def in_ws(ws, monkeypatch, tmp_path):
    monkeypatch.chdir(ws)
    monkeypatch.setenv("UCN_VIEWER_CACHE", str(tmp_path / "cache"))
    return ws


@pytest.fixture
def no_compute(monkeypatch):
    """Any of the table's mistakes must be caught before the network runs."""

    def refuse(*_a, **_k):
        raise AssertionError("the computation started")

    monkeypatch.setattr(matching, "match_images", refuse)
    monkeypatch.setattr(matching.PairFeatures, "compute", classmethod(refuse))


# --------------------------------------------------------------------------- the CLI table

PAIR = ["a.jpg", "b.jpg", "-o", "out.npz"]
TINY = ["--weights", "tiny.safetensors"]

# (id, argv, text the one error line must contain)
CASES = [
    # sizes and counts, at parse time
    ("max-size-0", PAIR + ["--max-size", "0"], "--max-size"),
    ("max-size-1", PAIR + ["--max-size", "1"], "--max-size"),
    ("max-size-negative", PAIR + ["--max-size=-5"], "--max-size"),
    ("max-size-31", PAIR + ["--max-size", "31"], "at least 32"),
    ("max-size-text", PAIR + ["--max-size", "big"], "--max-size"),
    ("grid-stride-0", PAIR + ["--keypoints", "grid", "--grid-stride", "0"], "--grid-stride"),
    ("grid-stride-negative", PAIR + ["--grid-stride=-4"], "--grid-stride"),
    ("max-keypoints-0", PAIR + ["--max-keypoints", "0"], "--max-keypoints"),
    ("seed-negative", PAIR + ["--seed=-1"], "--seed"),
    ("seed-fraction", PAIR + ["--seed", "1.5"], "--seed"),
    # thresholds: NaN would silently switch a test off
    ("reciprocity-nan", PAIR + ["--reciprocity", "nan"], "--reciprocity"),
    ("stability-nan", PAIR + ["--stability=-nan"], "--stability"),
    ("max-ratio-nan", PAIR + ["--max-ratio", "NaN"], "--max-ratio"),
    ("ransac-threshold-0", PAIR + ["--ransac", "homography", "--ransac-threshold", "0"], "--ransac-threshold"),
    ("ransac-threshold-nan", PAIR + ["--ransac-threshold", "nan"], "--ransac-threshold"),
    ("ransac-threshold-inf", PAIR + ["--ransac-threshold", "inf"], "--ransac-threshold"),
    ("card-threshold-nan", PAIR + ["--weights", "nancard.safetensors"], "nancard"),
    # names
    ("device-meta", PAIR + ["--device", "meta"], "--device"),
    ("device-xpu", PAIR + ["--device", "xpu"], "--device"),
    ("device-gpu", PAIR + ["--device", "gpu"], "--device"),
    ("device-cuda-letter", PAIR + ["--device", "cuda:x"], "--device"),
    ("keypoints-unknown", PAIR + ["--keypoints", "orb"], "--keypoints"),
    ("ransac-unknown", PAIR + ["--ransac", "affine"], "--ransac"),
    ("stability-mode-unknown", PAIR + ["--stability-mode", "all4"], "--stability-mode"),
    ("no-output", ["a.jpg", "b.jpg"], "-o"),
    # outputs that would destroy something
    ("output-suffix", ["a.jpg", "b.jpg", "-o", "out.txt"], "out.txt"),
    ("output-is-image0", ["photo.npz", "b.jpg", "-o", "photo.npz"], "photo.npz"),
    ("viz-is-image0", ["A.png", "b.jpg", "-o", "out.npz", "--viz", "A.png"], "A.png"),
    ("viz-is-image1-dot-slash", PAIR + ["--viz", "./b.jpg"], "b.jpg"),
    ("viz-is-image0-dot-dot", PAIR + ["--viz", "sub/../a.jpg"], "a.jpg"),
    ("viz-is-image0-absolute", PAIR + ["--viz", "{ws}/a.jpg"], "a.jpg"),
    ("viz-symlink-to-input", ["A.png", "b.jpg", "-o", "out.npz", "--viz", "link.png"], "link.png"),
    ("output-symlink-to-input", ["a.jpg", "b.jpg", "-o", "linkout.npz"], "linkout.npz"),
    ("output-is-viz", PAIR[:2] + ["-o", "same.npz", "--viz", "same.npz"], "same.npz"),
    ("output-is-viz-through-link", PAIR[:2] + ["-o", "m.json", "--viz", "m-link.png"], "m-link.png"),
    ("output-is-query-points", PAIR[:2] + ["-o", "pts.csv", "--query-points", "pts.csv"], "pts.csv"),
    ("output-is-model-card", PAIR[:2] + ["-o", "tiny.json"] + TINY, "tiny.json"),
    ("output-is-weights", PAIR[:2] + ["-o", "w.npz", "--weights", "w.npz"], "w.npz"),
    ("viz-gif", PAIR + ["--viz", "x.gif"], "x.gif"),
    ("viz-no-suffix", PAIR + ["--viz", "picture"], "picture"),
    ("output-is-folder", PAIR[:2] + ["-o", "dir.npz"], "dir.npz"),
    ("viz-is-folder", PAIR + ["--viz", "dir.png"], "dir.png"),
    ("output-read-only", PAIR[:2] + ["-o", "ro.npz"], "ro.npz"),
    ("output-parent-is-a-file", PAIR[:2] + ["-o", "a.jpg/m.npz"], "a.jpg"),
    ("output-symlink-loop", PAIR[:2] + ["-o", "loop1.npz"], "loop1.npz"),
    # inputs
    ("image0-missing", ["missing.jpg", "b.jpg", "-o", "out.npz"], "missing.jpg"),
    ("image1-folder", ["a.jpg", "sub", "-o", "out.npz"], "sub"),
    ("image0-corrupt", ["bad.jpg", "b.jpg", "-o", "out.npz"], "bad.jpg"),
    ("image0-empty", ["empty.jpg", "b.jpg", "-o", "out.npz"], "empty.jpg"),
    ("image1-text", ["a.jpg", "notes.txt", "-o", "out.npz"], "notes.txt"),
    ("image1-one-pixel", ["a.jpg", "one-pixel.png", "-o", "out.npz"], "one-pixel.png: 1x1 px is too small to match"),
    ("weights-missing", PAIR + ["--weights", "nope.pth"], "nope.pth"),
    ("weights-garbage", PAIR + ["--weights", "garbage.pth"], "garbage.pth"),
    ("weights-nan", PAIR + ["--weights", "nan.pth"], "nan.pth"),
    ("weights-inf", PAIR + ["--weights", "inf.pth"], "inf.pth"),
    ("weights-all-zero", PAIR + ["--weights", "zero.pth"], "zero.pth"),
    ("weights-three-channels", PAIR + ["--weights", "rgb.pth"], "rgb.pth"),
    ("weights-wrong-keys", PAIR + ["--weights", "shapes.pth"], "shapes.pth"),
    ("weights-unknown-name", PAIR + ["--weights", "no-such-model"], "no-such-model"),
    ("zoo-entry-without-pinned-hash", PAIR + ["--weights", "open-ucn-yfcc"], "open-ucn-yfcc"),
    ("points-missing", PAIR + TINY + ["--query-points", "nopts.txt"], "nopts.txt"),
    ("points-malformed", PAIR + TINY + ["--query-points", "badpts.txt"], "badpts.txt"),
    ("points-empty", PAIR + TINY + ["--query-points", "emptypts.txt"], "emptypts.txt"),
    ("points-binary", PAIR + TINY + ["--query-points", "binary.txt"], "binary.txt"),
    ("points-all-outside", PAIR + TINY + ["--query-points", "outside.txt"], "5 of 5 query points"),
]


def _argv(argv: list[str], ws: Path) -> list[str]:
    return [a.replace("{ws}", str(ws)) for a in argv]


def _check_one_line(stderr: str, culprit: str, prog: str = "ucn-match") -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{prog}: error: "), stderr
    assert culprit in lines[0], (culprit, lines[0])
    return lines[0]


def test_the_table_is_long_enough():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, culprit", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_bad_input(in_ws, no_compute, capsys, argv, culprit):
    before = snapshot(in_ws)
    try:
        rc = cli.main(_argv(argv, in_ws))
    except SystemExit as exc:  # argparse's errors
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    _check_one_line(err, culprit)
    assert snapshot(in_ws) == before, "a file changed"


SUBPROCESS_CASES = ["max-size-0", "viz-is-image0", "output-is-viz", "weights-nan", "points-all-outside", "device-meta"]


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_cli_bad_input_in_a_real_process(in_ws, tmp_path, case):
    argv, culprit = next(c[1:] for c in CASES if c[0] == case)
    before = snapshot(in_ws)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "ucn_gui.cli", *_argv(argv, in_ws)], cwd=in_ws, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    _check_one_line(proc.stderr, culprit)
    assert snapshot(in_ws) == before


# --------------------------------------------------------------------------- what the CLI does write


def _run(argv: list[str], capsys) -> tuple[int, str]:
    rc = cli.main(argv)
    return rc, capsys.readouterr().err


FAST = TINY + ["--max-size", "64", "--max-keypoints", "50", "-q"]


def test_points_outside_are_dropped_with_a_count_never_clamped(in_ws, tmp_path, capsys):
    pts = tmp_path / "pts.txt"
    pts.write_text("10 10\n-50 -50\nnan 3\n700 400\n1e30 5\n743.5 495.5\n-0.5 0\n")
    out = tmp_path / "q.npz"
    rc, err = _run(["a.jpg", "b.jpg", "-o", str(out), "--query-points", str(pts), *FAST], capsys)
    assert rc == 0
    assert "3 of 7 query points outside the 744x496 image (or not finite) were dropped" in err and "pts.txt" in err
    m = load_matches(out)
    assert m["keypoints0"].tolist() == [[10, 10], [700, 400], [743.5, 495.5], [-0.5, 0]]
    assert m["settings"]["query_points_dropped"] == 3


def test_match_refuses_points_outside_the_image(ws):
    img0 = load_image(ws / "a.jpg", 64)
    img1 = load_image(ws / "b.jpg", 64)
    model = load_model(ws / "tiny.safetensors").model
    pair = matching.PairFeatures.compute(model, img0, img1)
    with pytest.raises(QueryPointsError, match="1 of 3 query points outside the 744x496 image"):
        matching.match(pair, points0=np.array([[10, 10], [-50, -50], [20, 20]], np.float32))
    with pytest.raises(QueryPointsError, match="2 of 2"):
        matching.match(pair, points0=np.array([[np.nan, 1], [np.inf, 2]]))
    ok = matching.match(pair, points0=np.array([[-0.5, -0.5], [743.5, 495.5]]))
    assert ok.keypoints0.tolist() == [[-0.5, -0.5], [743.5, 495.5]]


def test_check_query_points_counts_what_it_drops():
    pts = np.concatenate([np.full((297, 2), 5.0), [[-50, -50], [np.nan, 1], [1e30, 2]]])
    kept, notice = check_query_points(pts, 100, 80, drop=True)
    assert len(kept) == 297 and notice.startswith("3 of 300 query points outside the 100x80 image")
    with pytest.raises(QueryPointsError, match="3 of 300"):
        check_query_points(pts, 100, 80)


@pytest.mark.parametrize("name, magic", [("v.jpg", b"\xff\xd8\xff"), ("v.JPEG", b"\xff\xd8\xff"), ("v.png", b"\x89PNG")])
def test_viz_is_encoded_as_its_suffix_says(in_ws, tmp_path, capsys, name, magic):
    viz = tmp_path / name
    rc, _ = _run(["a.jpg", "b.jpg", "-o", str(tmp_path / "m.npz"), "--viz", str(viz), *FAST], capsys)
    assert rc == 0 and viz.read_bytes().startswith(magic)
    assert cv2.imread(str(viz)).shape == (496, 744 * 2, 3)


def test_output_through_a_symlink_updates_its_target_and_keeps_modes(in_ws, tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    target = real / "target.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.npz"
    os.symlink(target, link)
    before = snapshot(in_ws)
    rc, _ = _run(["a.jpg", "b.jpg", "-o", str(link), *FAST], capsys)
    assert rc == 0
    assert link.is_symlink() and os.readlink(link) == str(target), "the link stays a link"
    assert len(load_matches(target)["keypoints0"]) > 0, "the target got the matches"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640, "an existing file keeps its permission bits"
    assert sorted(p.name for p in real.iterdir()) == ["target.npz"], "no temporary file left"
    assert snapshot(in_ws) == before


def test_new_output_gets_the_usual_mode_not_mkstemps(in_ws, tmp_path, capsys):
    umask = os.umask(0)  # the only portable way to read it
    os.umask(umask)
    rc, _ = _run(["a.jpg", "b.jpg", "-o", str(tmp_path / "new.csv"), *FAST], capsys)
    assert rc == 0
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o666 & ~umask != 0o600


def test_non_finite_descriptors_are_an_error_not_an_answer(in_ws, tmp_path, capsys):
    """Finite weights whose forward pass is NaN (a negative running variance) pass the load check."""
    state = _state()
    state["norm1.running_var"].fill_(-1.0)
    weights = tmp_path / "negvar.pth"
    torch.save(state, weights)
    loaded = load_model(weights)
    assert loaded.card["norm"] == "running"
    img = load_image(in_ws / "a.jpg", 64)
    with pytest.raises(ModelOutputError, match="negvar.pth: the model gave non-finite descriptors"):
        matching.PairFeatures.compute(loaded.model, img, img)
    out = tmp_path / "m.npz"
    rc, err = _run(["a.jpg", "b.jpg", "-o", str(out), "--weights", str(weights), "--max-size", "64"], capsys)
    assert rc == 2 and not out.exists()
    _check_one_line(err, "non-finite descriptors")


# --------------------------------------------------------------------------- library pieces


def test_filter_settings_refuse_nan():
    for name in ("reciprocity", "stability", "max_distance", "max_ratio"):
        with pytest.raises(ValueError, match=name):
            FilterSettings(**{name: math.nan})
    with pytest.raises(ValueError, match="ransac_threshold"):
        FilterSettings(ransac_threshold=math.nan)
    with pytest.raises(ValueError, match="reciprocity"):
        default_filters({"default_filters": {"reciprocity": math.nan}})
    assert FilterSettings(reciprocity=np.float32(2.0), stability=None).reciprocity == 2.0


def test_atomic_write_follows_symlinks_and_keeps_modes(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    link = tmp_path / "l.txt"
    os.symlink("t.txt", link)
    atomic_write(link, lambda tmp: tmp.write_text("new"))
    assert link.is_symlink() and target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600
    dangling = tmp_path / "d.txt"
    os.symlink("made.txt", dangling)
    atomic_write(dangling, lambda tmp: tmp.write_text("x"))
    assert dangling.is_symlink() and (tmp_path / "made.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.txt", "l.txt", "made.txt", "t.txt"]


def _killed_write(path: Path) -> None:
    """atomic_write in a child process that dies mid-write (as kill -9 would leave it)."""
    pid = os.fork()
    if pid == 0:  # child: no cleanup, no atexit
        try:
            atomic_write(path, lambda tmp: (tmp.write_bytes(b"half a checkpoint"), os._exit(0)))
        finally:
            os._exit(1)
    os.waitpid(pid, 0)


def test_stale_temp_files_of_killed_writes_are_removed(tmp_path):
    _killed_write(tmp_path / "checkpoint.pth")
    _killed_write(tmp_path / "best.safetensors")
    stale = sorted(p.name for p in tmp_path.iterdir())
    assert len(stale) == 2 and all(n.startswith(".") and n.endswith(".tmp") for n in stale), stale
    (tmp_path / "notes.tmp").write_text("not ours")
    (tmp_path / ".hidden.tmp").write_text("not ours either")
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == stale
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "notes.tmp"]


# --------------------------------------------------------------------------- the trainer


@pytest.fixture(scope="module")
def trainer_main():
    from trainer.__main__ import main

    return main


@pytest.fixture(scope="module")
def tws(tmp_path_factory, ws) -> Path:
    d = tmp_path_factory.mktemp("tws")
    (d / "photos").mkdir()
    shutil.copy(DATA / "terrace0.jpg", d / "photos" / "p0.jpg")
    shutil.copy(DATA / "terrace1.jpg", d / "photos" / "p1.jpg")
    (d / "empty").mkdir()
    (d / "run_without_checkpoint").mkdir()
    (d / "run_without_checkpoint" / "train.csv").write_text("step,epoch\n")
    (d / "afile").write_text("x")
    shutil.copy(ws / "nan.pth", d / "nan.pth")
    torch.save(_state(), d / "plain_weights.pth")
    return d


T = ["--dataset", "homography", "--data_dir", "photos", "--device", "cpu", "--model", "ResUNetBN2F", "--model_n_out", "16",
     "--num_workers", "0", "--out_dir", "run"]

TRAINER_CASES = [
    ("data-dir-missing", ["--dataset", "homography", "--data_dir", "nope", "--device", "cpu"], "--data_dir nope"),
    ("data-dir-empty", ["--dataset", "homography", "--data_dir", "empty", "--device", "cpu"], "--data_dir empty"),
    ("data-dir-a-file", ["--dataset", "homography", "--data_dir", "afile", "--device", "cpu"], "--data_dir afile"),
    ("data-dir-absent", ["--dataset", "homography"], "--data_dir"),
    ("val-data-dir-missing", T + ["--val_data_dir", "nope"], "--val_data_dir nope"),
    ("val-photos-missing", T + ["--val_photos", "nope.jpg"], "--val_photos nope.jpg"),
    ("posed-dir-missing", ["--dataset", "posed", "--posed_dir", "nope", "--device", "cpu"], "--posed_dir nope"),
    ("yfcc-raw-missing", ["--data_dir_raw", "raw", "--data_dir_processed", "empty", "--device", "cpu"], "--data_dir_raw raw"),
    ("resume-folder-without-checkpoint", T + ["--resume", "run_without_checkpoint"], "run_without_checkpoint"),
    ("resume-missing", T + ["--resume", "nope/checkpoint.pth"], "--resume nope"),
    ("resume-not-a-checkpoint", T + ["--resume", "photos/p0.jpg"], "--resume photos/p0.jpg"),
    ("resume-plain-weights", T + ["--resume", "plain_weights.pth"], "--resume plain_weights.pth"),
    ("weights-missing", T + ["--weights", "nope.pth"], "--weights nope.pth"),
    ("weights-nan", T + ["--weights", "nan.pth"], "nan.pth"),
    ("device-meta", T + ["--device", "meta"], "--device"),
    ("crop-size-tiny", T + ["--crop_size", "8"], "--crop_size"),
    ("lr-nan", T + ["--lr", "nan"], "--lr"),
    ("lr-negative", T + ["--lr=-0.1"], "--lr"),
    ("stat-freq-0", T + ["--stat_freq", "0"], "--stat_freq"),
    ("seed-negative", T + ["--seed=-1"], "--seed"),
    ("val-split-1", T + ["--val_split", "1"], "--val_split"),
    ("scales-swapped", T + ["--min_scale", "2", "--max_scale", "1"], "--min_scale"),
    ("max-image-side-tiny", T + ["--max_image_side", "10"], "--max_image_side"),
    ("out-dir-is-a-file", T[:-1] + ["afile"], "--out_dir afile"),
]


@pytest.mark.parametrize("argv, culprit", [c[1:] for c in TRAINER_CASES], ids=[c[0] for c in TRAINER_CASES])
def test_trainer_bad_input(tws, trainer_main, monkeypatch, capsys, argv, culprit):
    monkeypatch.chdir(tws)
    before = snapshot(tws)
    try:
        rc = trainer_main(argv)
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    line = _check_one_line(err, culprit, prog="python -m trainer")
    assert "weights_only=False" not in err
    assert snapshot(tws) == before, "a file or folder changed"


def test_trainer_start_removes_temp_files_of_a_killed_run(tmp_path):
    from trainer.config import parse_args
    from trainer.loop import Trainer

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DATA / "terrace0.jpg", photos / "p0.jpg")
    run = tmp_path / "run"
    run.mkdir()
    _killed_write(run / "checkpoint.pth")
    (run / "keep.tmp").write_text("not ours")
    assert len(list(run.glob(".checkpoint.pth.*.tmp"))) == 1
    cfg = parse_args(["--dataset", "homography", "--data_dir", str(photos), "--model", "ResUNetBN2F", "--model_n_out", "16",
                      "--device", "cpu", "--num_workers", "0", "--test_valid", "false", "--out_dir", str(run)])
    Trainer(cfg)
    assert not list(run.glob(".*.tmp")) and (run / "keep.tmp").exists()
