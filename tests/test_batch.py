"""Batch matching over a pairs list (issue 15): the pairs parser, the feature cache, restarts,
bad images, and the exports COLMAP and hloc read (a 3-image set made from tests/data)."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ucn_gui import cli
from ucn_gui.core import batch as batch_mod
from ucn_gui.core.batch import PairResult, load_result, result_path
from ucn_gui.core.camera_prior import focal_prior
from ucn_gui.core.match_files import load_matches
from ucn_gui.core.feature_cache import FeatureCache
from ucn_gui.core.pairs import PairsError, exhaustive_pairs, pairs_from_spec, read_pairs_file, sequential_pairs
from ucn_gui.core.tracks import merge, snap_cells

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
POSED = ROOT / "benchmarks" / "data" / "posed_val" / "strecha_fountain_p11"
NAMES = ["a.jpg", "b.jpg", "sub/c.jpg"]
F35 = 28  # the EXIF 35-mm focal length written into sub/c.jpg
# The exports' pairs: the first one against the image ids' order (COLMAP stores a pair once, lower id first).
EXPORT_PAIRS = [("sub/c.jpg", "a.jpg"), ("a.jpg", "b.jpg"), ("b.jpg", "sub/c.jpg")]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Three overlapping photos: the terrace pair and a warped copy of its first photo (with EXIF)."""
    d = tmp_path_factory.mktemp("images")
    shutil.copy(DATA / "terrace0.jpg", d / "a.jpg")
    shutil.copy(DATA / "terrace1.jpg", d / "b.jpg")
    (d / "sub").mkdir()
    rgb = cv2.cvtColor(cv2.imread(str(DATA / "terrace0.jpg")), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    H = np.array([[0.95, 0.05, 20], [-0.04, 0.97, 10], [0, 0, 1]], np.float64)
    warped = cv2.warpPerspective(rgb, H, (w, h), borderMode=cv2.BORDER_REFLECT)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = F35  # FocalLengthIn35mmFilm
    Image.fromarray(warped).save(d / "sub" / "c.jpg", quality=92, exif=exif)
    return d


def _pairs_file(folder: Path, lines: list[str], name: str = "pairs.txt") -> Path:
    p = folder / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _argv(images: Path, out: Path, pairs: str | Path, model: Path, *extra: str) -> list[str]:
    # All candidates kept (thresholds off): a random model's matches are few after the cycle tests.
    return ["--pairs", str(pairs), "--image-dir", str(images), "--output-dir", str(out), "--weights", str(model),
            "--max-size", "96", "--max-keypoints", "60", "--reciprocity", "-1", "--stability", "-1", *extra]


# --------------------------------------------------------------------------- pairs


def test_pairs_file_comments_extra_numbers_and_repeats(tmp_path):
    p = _pairs_file(tmp_path, ["# image0 image1 angle", "", "a.jpg b.jpg 8.8 0.18 959", "b.jpg sub/c.jpg",
                               "b.jpg a.jpg", "a.jpg b.jpg"])
    pl = read_pairs_file(p)
    assert pl.pairs == [("a.jpg", "b.jpg"), ("b.jpg", "sub/c.jpg")]
    assert pl.duplicates == 2 and pl.first_duplicate_line == 5
    assert pl.images == ["a.jpg", "b.jpg", "sub/c.jpg"]


@pytest.mark.parametrize("lines, line, words", [
    (["a.jpg b.jpg", "a.jpg"], 2, "one name"),
    (["a.jpg b.jpg c.jpg"], 1, "3 names"),
    (["a.jpg b.jpg", "", "# x", "b.jpg b.jpg"], 4, "itself"),
    (["/abs/a.jpg b.jpg"], 1, "absolute"),
    (["a.jpg ../b.jpg"], 1, "'..'"),
])
def test_pairs_parser_names_the_malformed_line(tmp_path, lines, line, words):
    with pytest.raises(PairsError) as e:
        read_pairs_file(_pairs_file(tmp_path, lines))
    assert f"pairs.txt line {line}:" in str(e.value) and words in str(e.value)


@pytest.mark.parametrize("content, words", [(b"", "holds no pairs"), (b"# only a comment\n", "holds no pairs"),
                                            (b"\xff\xfe\x00a b\n", "not a text file")])
def test_pairs_parser_refuses_empty_and_binary_files(tmp_path, content, words):
    (tmp_path / "p.txt").write_bytes(content)
    with pytest.raises(PairsError, match=words):
        read_pairs_file(tmp_path / "p.txt")


def test_pairs_generators_and_missing_images(images, tmp_path):
    assert exhaustive_pairs(list("abcd")) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert sequential_pairs(list("abcd"), 2) == [("a", "b"), ("a", "c"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert pairs_from_spec("exhaustive", images).pairs == exhaustive_pairs(NAMES)
    assert pairs_from_spec("sequential:1", images).pairs == [("a.jpg", "b.jpg"), ("b.jpg", "sub/c.jpg")]
    for bad in ("sequential:0", "sequential:x", "sequential"):
        with pytest.raises(PairsError, match="sequential:K"):
            pairs_from_spec(bad, images)
    p = _pairs_file(tmp_path, ["a.jpg b.jpg", "a.jpg nope.jpg"])
    with pytest.raises(PairsError, match=r"line 2: 'nope.jpg' is not a file in --image-dir"):
        pairs_from_spec(str(p), images)
    spaced = tmp_path / "spaced"
    spaced.mkdir()
    for name in ("x.jpg", "my photo.jpg"):
        shutil.copy(images / "a.jpg", spaced / name)
    with pytest.raises(PairsError, match="'my photo.jpg' has white space in its name"):
        pairs_from_spec("exhaustive", spaced)


# --------------------------------------------------------------------------- the cache


def test_feature_cache_keeps_what_is_needed_soonest():
    pairs = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "d"), ("c", "d")]
    computed = []
    cache = FeatureCache(2, pairs, size_of=lambda v: 1)  # room for two images
    for pair in pairs:
        for name in pair:
            cache.get(name, lambda n: computed.append(n) or n)
        cache.next_pair()
    # a is evicted at pair 2 (needed again only at pair 4, after b and c) and is not kept at pair 4
    # (never needed again): 5 computations, the optimum here; LRU would make 7.
    assert computed == ["a", "b", "c", "a", "d"]
    assert cache.stats.misses == len(computed) and cache.used_bytes == 0  # nothing needed later stays


# --------------------------------------------------------------------------- runs


def test_batch_matches_as_the_two_image_command_does(images, tmp_path, tiny_model_file, capsys):
    out = tmp_path / "out"
    assert cli.main(_argv(images, out, "exhaustive", tiny_model_file)) == 0
    stdout = capsys.readouterr().out
    assert "3 pairs: 3 matched" in stdout and "features computed 3 times, reused 3 times" in stdout
    assert (out / "pairs.txt").read_text().splitlines() == ["a.jpg b.jpg", "a.jpg sub/c.jpg", "b.jpg sub/c.jpg"]
    single = tmp_path / "single.npz"
    assert cli.main([str(images / "a.jpg"), str(images / "sub/c.jpg"), "-o", str(single), "--weights", str(tiny_model_file),
                     "--max-size", "96", "--max-keypoints", "60", "--reciprocity", "-1", "--stability", "-1", "-q"]) == 0
    one, two = load_matches(single), load_matches(result_path(out, "a.jpg", "sub/c.jpg"))
    for col in ("keypoints0", "keypoints1", "reciprocity_error_network_px", "mask"):
        assert np.array_equal(one[col], two[col]), col
    r = load_result(out, ("a.jpg", "sub/c.jpg"))
    assert r.size0 == (744, 496) and r.kept.all() and 30 < len(r.keypoints0) <= 60


def test_a_resumed_run_skips_finished_pairs(images, tmp_path, tiny_model_file, capsys, monkeypatch):
    out = tmp_path / "out"
    calls = []
    real = batch_mod.BatchRunner.match_pair

    def interrupt_second(self, f0, f1, pair):
        calls.append(pair)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, f0, f1, pair)

    monkeypatch.setattr(batch_mod.BatchRunner, "match_pair", interrupt_second)
    assert cli.main(_argv(images, out, "exhaustive", tiny_model_file)) == 130
    assert "run the same command again to continue" in capsys.readouterr().err
    first = result_path(out, "a.jpg", "b.jpg")
    assert first.is_file() and len(list((out / "matches").iterdir())) == 1  # no half-written second file
    (out / "matches" / ".a.jpg+sub%2Fc.jpg.npz.abcd1234.tmp").write_bytes(b"half a file")  # a killed write's leftover
    mtime = first.stat().st_mtime_ns
    monkeypatch.setattr(batch_mod.BatchRunner, "match_pair", real)
    assert cli.main(_argv(images, out, "exhaustive", tiny_model_file)) == 0
    stdout = capsys.readouterr().out
    assert "3 pairs: 2 matched" in stdout and "1 done by an earlier run" in stdout
    assert first.stat().st_mtime_ns == mtime  # not redone
    assert sorted(p.name for p in (out / "matches").iterdir()) == sorted(
        result_path(out, *p).name for p in exhaustive_pairs(NAMES))  # the leftover is gone
    # Everything done: nothing is computed again.
    assert cli.main(_argv(images, out, "exhaustive", tiny_model_file)) == 0
    assert "3 pairs: 0 matched (0 matches kept), 3 done by an earlier run" in capsys.readouterr().out


def test_other_settings_into_the_same_folder_are_refused(images, tmp_path, tiny_model_file, capsys):
    out = tmp_path / "out"
    pairs = _pairs_file(tmp_path, ["a.jpg b.jpg"])
    assert cli.main(_argv(images, out, pairs, tiny_model_file, "-q")) == 0
    rc = cli.main(_argv(images, out, pairs, tiny_model_file, "-q", "--max-keypoints", "30"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "max_keypoints: 60 there, 30 now" in err[0]


def test_a_bad_image_is_reported_skipped_and_counted(images, tmp_path, tiny_model_file, capsys):
    d = tmp_path / "imgs"
    shutil.copytree(images, d)
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    out = tmp_path / "out"
    rc = cli.main(_argv(images=d, out=out, pairs="exhaustive", model=tiny_model_file))
    captured = capsys.readouterr()
    assert rc == 1  # finished, with pairs skipped
    warnings = [line for line in captured.err.splitlines() if "broken.jpg" in line]
    assert len(warnings) == 1 and warnings[0].startswith("ucn-match: warning: skipping the pairs of broken.jpg")
    assert "6 pairs: 3 matched" in captured.out and "3 skipped for 1 bad image(s) (broken.jpg)" in captured.out
    assert "features computed 3 times" in captured.out  # a.jpg, b.jpg, c.jpg: never for a pair with broken.jpg
    assert len(list((out / "matches").iterdir())) == 3
    # Run again: the good pairs are done, and the three left each have the bad image: no network at all.
    assert cli.main(_argv(images=d, out=out, pairs="exhaustive", model=tiny_model_file)) == 1
    assert "features computed 0 times" in capsys.readouterr().out


# --------------------------------------------------------------------------- command-line mistakes


@pytest.mark.parametrize("case, culprit", [
    ("no-image-dir", "--image-dir"), ("no-output-dir", "--output-dir"), ("images-too", "IMAGE0"),
    ("with-o", "-o"), ("output-dir-is-file", "pairs.txt"), ("colmap-suffix", "db.sqlite"),
    ("colmap-is-pairs", "pairs.txt"), ("malformed", "line 2"), ("missing-image", "zzz.jpg"),
    ("image-dir-without-pairs", "--image-dir"), ("sequential-0", "sequential:K"), ("cache-negative", "--cache-mb"),
])
def test_batch_mistakes_are_one_line(images, tmp_path, tiny_model_file, capsys, case, culprit):
    pairs = _pairs_file(tmp_path, ["a.jpg b.jpg"])
    base = _argv(images, tmp_path / "out", pairs, tiny_model_file)
    argv = {
        "no-image-dir": ["--pairs", str(pairs), "--output-dir", str(tmp_path / "o")],
        "no-output-dir": ["--pairs", str(pairs), "--image-dir", str(images)],
        "images-too": [str(images / "a.jpg"), str(images / "b.jpg"), *base],
        "with-o": [*base, "-o", str(tmp_path / "m.npz")],
        "output-dir-is-file": _argv(images, pairs, pairs, tiny_model_file),
        "colmap-suffix": [*base, "--colmap", str(tmp_path / "db.sqlite")],
        "colmap-is-pairs": [*base, "--colmap", str(tmp_path / "pairs.txt")],
        "malformed": _argv(images, tmp_path / "out", _pairs_file(tmp_path, ["a.jpg b.jpg", "a.jpg"], "bad.txt"), tiny_model_file),
        "missing-image": _argv(images, tmp_path / "out", _pairs_file(tmp_path, ["a.jpg zzz.jpg"], "missing.txt"), tiny_model_file),
        "image-dir-without-pairs": [str(images / "a.jpg"), str(images / "b.jpg"), "-o", str(tmp_path / "m.npz"),
                                    "--image-dir", str(images)],
        "sequential-0": _argv(images, tmp_path / "out", "sequential:0", tiny_model_file),
        "cache-negative": [*base, "--cache-mb", "-1"],
    }[case]
    if case == "colmap-is-pairs":
        pytest.importorskip("pycolmap", reason="the sfm extra (pycolmap) is not installed")
        argv[argv.index("--colmap") + 1] = str(pairs)
    try:
        rc = cli.main(argv)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("ucn-match: error: ") and culprit in lines[0], lines[0]
    assert not (tmp_path / "out" / "matches").exists()


# --------------------------------------------------------------------------- merging and exports


def _result(n0: str, n1: str, kp0, kp1, dist, scale=(2.0, 2.0)) -> PairResult:
    kp0, kp1 = np.asarray(kp0, np.float32), np.asarray(kp1, np.float32)
    return PairResult(n0, n1, kp0, kp1, np.asarray(dist, np.float32), np.ones(len(kp0), bool), (100, 80), (100, 80),
                      scale, scale)


def test_merge_groups_points_by_network_pixel_so_tracks_connect():
    # Network pixel (10, 5) at scale 2 covers original x in [19.5, 21.5), y in [9.5, 11.5); its centre is (20.5, 10.5).
    assert snap_cells(np.array([[19.6, 9.6], [21.4, 11.4], [21.6, 11.4]]), (2.0, 2.0)).tolist() == [[10, 5], [10, 5], [11, 5]]
    ab = _result("A", "B", [[3.1, 4.2], [40.0, 30.0], [60.0, 30.0]], [[20.5, 10.5], [50.5, 50.5], [50.5, 50.5]], [0.1, 0.2, 0.4])
    cb = _result("C", "B", [[7.0, 7.0]], [[21.2, 11.0]], [0.3])  # B's point from another pair, same network pixel
    m = merge([ab, cb])
    # One keypoint per occupied cell, at the mean of what fell in it (sub-pixel positions are kept).
    assert np.allclose(m.keypoints["B"], [[20.85, 10.75], [50.5, 50.5]])
    (idx_ab, s_ab), (idx_cb, _) = m.matches[("A", "B")], m.matches[("C", "B")]
    # Two A points hit B's (50.5, 50.5): the more similar one (distance 0.2) keeps it.
    assert len(idx_ab) == 2 and m.keypoints["A"][idx_ab[1, 0]].tolist() == [40.0, 30.0]
    assert idx_ab[0, 1] == idx_cb[0, 1] == 0  # the track A - B - C runs through one keypoint of B
    assert np.allclose(s_ab, [1 - 0.01 / 2, 1 - 0.04 / 2])


def test_focal_prior_from_exif_or_default(images, tmp_path):
    assert focal_prior(images / "sub" / "c.jpg", 744, 496) == (pytest.approx(F35 / 36 * 744), True)
    assert focal_prior(images / "a.jpg", 744, 496) == (pytest.approx(1.2 * 744), False)
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    # A phone: 4 mm lens, 6.4 mm sensor for 4,000 px (6,250 px per cm); the photo was shrunk to 400 px.
    ifd.update({0x920A: 4.0, 0xA20E: 6250.0, 0xA210: 3, 0xA002: 4000, 0xA003: 3000})
    Image.new("RGB", (400, 300)).save(tmp_path / "e.jpg", exif=exif)
    assert focal_prior(tmp_path / "e.jpg", 400, 300) == (pytest.approx(4.0 * 625 * 400 / 4000), True)
    (tmp_path / "t.jpg").write_bytes(b"no image")
    assert focal_prior(tmp_path / "t.jpg", 100, 50) == (pytest.approx(120.0), False)


@pytest.fixture(scope="module")
def exported(images, tmp_path_factory, tiny_model_file):
    """One run of the 3-image set with --h5 (and --colmap when pycolmap is installed)."""
    pytest.importorskip("h5py", reason="h5py (the sfm extra) is not installed")
    out = tmp_path_factory.mktemp("run")
    extra = ["--h5", str(out / "m.h5"), "-q"]
    try:
        import pycolmap  # noqa: F401
        extra += ["--colmap", str(out / "database.db")]
    except ImportError:
        pass
    pairs = _pairs_file(out, [f"{a} {b}" for a, b in EXPORT_PAIRS])
    assert cli.main(_argv(images, out / "run", pairs, tiny_model_file, *extra)) == 0
    return out


def test_h5_has_hlocs_layout(exported):
    import h5py

    merged = merge(load_result(exported / "run", p) for p in EXPORT_PAIRS)
    with h5py.File(exported / "m.h5", "r") as f:
        for name in NAMES:
            kp = f[name]["keypoints"]
            assert kp.dtype == np.float32 and kp.shape == (len(merged.keypoints[name]), 2) and kp.shape[0] > 30
            assert f[name]["image_size"][()].tolist() == [744, 496]
        for a, b in EXPORT_PAIRS:
            g = f[f"{a.replace('/', '-')}/{b.replace('/', '-')}"]  # hloc's names_to_pair
            m0, s0 = g["matches0"][()], g["matching_scores0"][()]
            assert m0.dtype == np.int32 and m0.shape == (f[a]["keypoints"].shape[0],) and s0.shape == m0.shape
            valid = m0 > -1
            assert valid.sum() == len(merged.matches[(a, b)][0]) > 0
            assert m0[valid].max() < f[b]["keypoints"].shape[0] and len(set(m0[valid])) == valid.sum()
            assert (s0[valid] > 0).all() and (s0[~valid] == 0).all()
            # The matched coordinates are the stored pair's, snapped to the grid (<= half a network pixel).
            r = load_result(exported / "run", (a, b))
            kp0 = f[a]["keypoints"][()][np.flatnonzero(valid)]
            d = np.abs(kp0[:, None, :] - r.keypoints0[None]).max(axis=2).min(axis=1)
            assert (d <= 0.5 * max(r.scale0) + 1e-4).all()


def test_colmap_database_reads_back_through_pycolmap(exported):
    pycolmap = pytest.importorskip("pycolmap", reason="the sfm extra (pycolmap) is not installed")
    import h5py

    with pycolmap.Database.open(str(exported / "database.db")) as db, h5py.File(exported / "m.h5", "r") as f:
        assert db.num_images() == db.num_cameras() == db.num_rigs() == db.num_frames() == 3
        ids = {im.name: im.image_id for im in db.read_all_images()}
        assert sorted(ids) == sorted(NAMES)
        for name, image_id in ids.items():
            kp = db.read_keypoints(image_id)
            assert np.allclose(kp[:, :2] - 0.5, f[name]["keypoints"][()])  # COLMAP's pixel centres are at +0.5
            cam = db.read_camera(db.read_image(image_id).camera_id)
            assert (cam.width, cam.height) == (744, 496)
            exif = name == "sub/c.jpg"
            assert cam.has_prior_focal_length == exif
            assert cam.focal_length == pytest.approx(F35 / 36 * 744 if exif else 1.2 * 744)
        pair_ids, _ = db.read_all_matches()
        expected = {pycolmap.image_pair_to_pair_id(ids[a], ids[b]) for a, b in EXPORT_PAIRS}
        assert set(pair_ids) == expected and ids["sub/c.jpg"] > ids["a.jpg"]
        total = 0
        for a, b in EXPORT_PAIRS:
            m0 = f[f"{a.replace('/', '-')}/{b.replace('/', '-')}"]["matches0"][()]
            want = np.stack([np.flatnonzero(m0 > -1), m0[m0 > -1]], axis=1)
            got = db.read_matches(ids[a], ids[b]).astype(np.int64)  # in the order asked for, whatever the ids
            assert np.array_equal(got[np.argsort(got[:, 0])], want)
            back = db.read_matches(ids[b], ids[a]).astype(np.int64)
            assert np.array_equal(np.sort(back[:, ::-1], axis=0), np.sort(want, axis=0))
            total += len(want)
        assert db.num_matches() == total
        assert db.num_keypoints() == sum(f[n]["keypoints"].shape[0] for n in NAMES)


@pytest.mark.parametrize("flag, missing", [("--colmap", "pycolmap"), ("--h5", "h5py")])
def test_a_missing_extra_is_one_line_before_any_work(images, tmp_path, tiny_model_file, capsys, monkeypatch, flag, missing):
    import sys

    monkeypatch.setitem(sys.modules, missing, None)  # import fails as when it is not installed
    suffix = ".db" if flag == "--colmap" else ".h5"
    rc = cli.main(_argv(images, tmp_path / "out", "exhaustive", tiny_model_file, flag, str(tmp_path / f"x{suffix}")))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"ucn-match: error: {flag}: {missing} is not installed")
    assert "ucn-viewer[sfm]" in err[0] and not (tmp_path / "out").exists()


def test_reconstruct_registers_a_real_scene(tmp_path, capsys):
    """The bundled model on four views of a held-out real scene (in the repository), end to end."""
    pytest.importorskip("pycolmap", reason="the sfm extra (pycolmap) is not installed")
    d = tmp_path / "images"
    d.mkdir()
    for name in ("0003.jpg", "0004.jpg", "0005.jpg", "0006.jpg"):
        shutil.copy(POSED / "images" / name, d / name)
    out = tmp_path / "out"
    rc = cli.main(["--pairs", "exhaustive", "--image-dir", str(d), "--output-dir", str(out), "--max-size", "320",
                   "--reconstruct", str(out / "sparse")])
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    assert "colmap: 4 images" in stdout and "6 pairs verified" in stdout
    line = next(line for line in stdout.splitlines() if line.startswith("reconstruction model 0:"))
    assert "4 of 4 images registered" in line
    assert (out / "database.db").is_file() and (out / "sparse" / "0" / "images.bin").is_file()


def test_an_output_folder_refuses_matches_made_with_other_settings(tmp_path):
    from ucn_gui.core.batch import BatchSettingsError, check_manifest

    assert check_manifest(tmp_path, {"max_size": 640, "subpixel": True}) is False  # a new run writes its settings
    assert check_manifest(tmp_path, {"max_size": 640, "subpixel": True}) is True  # the same settings continue it
    with pytest.raises(BatchSettingsError, match=r"subpixel: True there, False now"):
        check_manifest(tmp_path, {"max_size": 640, "subpixel": False})
    old = tmp_path / "old"
    check_manifest(old, {"max_size": 640})  # a folder from before the setting existed
    with pytest.raises(BatchSettingsError, match=r"subpixel: not recorded there \(an older version made them\), True now"):
        check_manifest(old, {"max_size": 640, "subpixel": True})


def test_batch_align_gives_the_two_image_align_result_and_more_matches_on_a_turned_photo(tmp_path, capsys):
    # The bundled model on a real photo and a copy turned by 30 degrees, at 320 px: one pass keeps few
    # matches, the alignment pass many; a batch pair must get exactly what `ucn-match A B --align` writes.
    d = tmp_path / "images"
    d.mkdir()
    rgb = cv2.imread(str(DATA / "terrace0.jpg"))
    h, w = rgb.shape[:2]
    cv2.imwrite(str(d / "a.jpg"), rgb)
    turned = cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)
    cv2.imwrite(str(d / "t.jpg"), turned)
    pairs = _pairs_file(tmp_path, ["a.jpg t.jpg"])
    common = ["--max-size", "320", "--max-keypoints", "500", "-q"]
    kept = {}
    for flag in ([], ["--align"]):
        out = tmp_path / f"out{len(flag)}"
        assert cli.main(["--pairs", str(pairs), "--image-dir", str(d), "--output-dir", str(out), *common, *flag]) == 0
        kept[bool(flag)] = load_result(out, ("a.jpg", "t.jpg"))
    single = tmp_path / "single.npz"
    assert cli.main([str(d / "a.jpg"), str(d / "t.jpg"), "-o", str(single), *common, "--align"]) == 0
    one, batch = load_matches(single), load_matches(result_path(tmp_path / "out1", "a.jpg", "t.jpg"))
    for col in ("keypoints0", "keypoints1", "mask"):
        assert np.array_equal(one[col], batch[col]), col
    assert batch["settings"]["alignment"].startswith("Second pass shown")
    assert np.allclose(batch["settings"]["alignment_homography"], one["settings"]["alignment_homography"])
    n_one, n_aligned = int(kept[False].kept.sum()), int(kept[True].kept.sum())
    print(f"kept: one pass {n_one}, with the alignment pass {n_aligned}")
    assert n_aligned >= 2 * n_one
    # A folder made without --align refuses a run with it (the settings differ), and says so.
    assert cli.main(["--pairs", str(pairs), "--image-dir", str(d), "--output-dir", str(tmp_path / "out0"), *common, "--align"]) == 2
    assert "align" in capsys.readouterr().err
