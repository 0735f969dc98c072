"""Reconstruction from UCN matches and from SIFT matches on real scenes with ground-truth cameras.

    python benchmarks/bench_sfm.py                                   # two held-out scenes, exhaustive pairs
    python benchmarks/bench_sfm.py --scenes strecha_fountain_p11 --pairs exhaustive --max-size 640
    python benchmarks/bench_sfm.py --cells 1 2                       # also the snapping grid's cell size

Same pipeline for both, only the matches differ: the same pairs, the same cameras (one per
image, focal length from EXIF or 1.2 x the long side, ucn_gui.core.colmap_export.write_images),
COLMAP's geometric verification with its default options, and COLMAP's incremental mapper
(pycolmap, fixed seed). UCN: ``ucn-match --pairs`` with the bundled model and its card's
thresholds, merged into per-image keypoints (ucn_gui.core.tracks). SIFT: COLMAP's own SIFT
(pycolmap.extract_features at full resolution, 8,192 features) and matcher (ratio 0.8, cross
check; pycolmap.match_image_pairs on the same pairs file).

The largest model is aligned to the ground truth by a similarity (rotation: the chordal mean
of the registered images' rotation offsets that agree within 5 degrees; scale and translation:
least squares on their camera centres, trimmed once; see align()). Rotation error: the angle between an image's aligned
and true camera rotation. Camera-centre error: the distance between aligned and true centre
in units of the scene's camera baseline (the median distance from a true camera centre to
the nearest other one). Median, 90th percentile and worst over all registered images
(the images left out of the fit included).

Scenes come from --posed-dir (default ../shared/data/posed, the layout of its README:
images/, cameras.json with K, R, t in OpenCV's convention x_cam = R X + t). The defaults are
scenes no bundled model was trained on (validation scenes of its card).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ucn_gui.core.threads import configure_threads, thread_count  # noqa: E402

configure_threads()

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ucn_gui import cli  # noqa: E402
from ucn_gui.core.batch import load_result  # noqa: E402
from ucn_gui.core.colmap_export import import_pycolmap, write_database, write_images  # noqa: E402
from ucn_gui.core.pairs import pairs_from_spec, write_pairs_file  # noqa: E402
from ucn_gui.core.sfm import reconstruct  # noqa: E402
from ucn_gui.core.tracks import merge  # noqa: E402

DEFAULT_SCENES = ("strecha_fountain_p11", "middlebury_dino_sparse_ring")


OUTLIER_DEG = 5.0  # an image whose rotation offset differs more from the consensus leaves the alignment fit


def align(R_est: list[np.ndarray], C_est: np.ndarray, R_gt: list[np.ndarray], C_gt: np.ndarray):
    """(s, R, t) with C_gt ~ s R C_est + t, robust to a few badly placed images.

    Rotation: each image gives its own estimate R_gt_i^T R_est_i of the world rotation; the one
    with the smallest median angle to all others is the consensus, and R is the chordal mean of
    the estimates within OUTLIER_DEG of it. Defined even when the camera centres are nearly
    collinear (a short walk), where a fit to the centres alone leaves a rotation free; one
    image placed 50 degrees off (it happens) does not tilt everyone else. Scale and translation:
    least squares on the centres of those images, refitted once without centres whose error is
    above 3x the median.
    """
    cand = [Rg.T @ Re for Rg, Re in zip(R_gt, R_est)]
    angles = np.array([[rotation_angle_deg(a.T @ b) for b in cand] for a in cand])
    centre = int(np.argmin(np.median(angles, axis=1)))
    inliers = np.flatnonzero(angles[centre] <= OUTLIER_DEG)
    U, _, Vt = np.linalg.svd(sum(cand[i] for i in inliers))
    R = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    use = inliers
    for _ in range(2):
        mu_e, mu_g = C_est[use].mean(0), C_gt[use].mean(0)
        xe, xg = (C_est[use] - mu_e) @ R.T, C_gt[use] - mu_g
        s = float((xe * xg).sum() / max((xe ** 2).sum(), 1e-12))
        t = mu_g - s * R @ mu_e
        err = np.linalg.norm(s * C_est[inliers] @ R.T + t - C_gt[inliers], axis=1)
        keep = inliers[err <= 3 * np.median(err) + 1e-12]
        if len(keep) < 3:
            break
        use = keep
    return s, R, t


def rotation_angle_deg(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))


def evaluate(rec, gt: dict[str, dict]) -> dict:
    """Errors of a pycolmap Reconstruction against ground-truth cameras {name: {R, t}}."""
    names, R_est, C_est = [], [], []
    for im in rec.images.values():
        if im.has_pose and im.name in gt:
            names.append(im.name)
            R_est.append(im.cam_from_world().rotation.matrix())
            C_est.append(im.projection_center())
    R_gt = {n: np.asarray(gt[n]["R"], float) for n in gt}
    C_gt = {n: -R_gt[n].T @ np.asarray(gt[n]["t"], float) for n in gt}
    centres = np.stack(list(C_gt.values()))
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=2) + np.diag(np.full(len(centres), np.inf))
    baseline = float(np.median(dist.min(axis=1)))
    out = {"registered": len(names), "images": len(gt)}
    if len(names) < 3:
        return {**out, "rot_med": np.nan, "rot_p90": np.nan, "rot_max": np.nan, "ctr_med": np.nan, "ctr_p90": np.nan}
    s, Rs, ts = align(R_est, np.stack(C_est), [R_gt[n] for n in names], np.stack([C_gt[n] for n in names]))
    rot = [rotation_angle_deg(R_gt[n] @ (R @ Rs.T).T) for n, R in zip(names, R_est)]
    ctr = [np.linalg.norm(s * Rs @ c + ts - C_gt[n]) / baseline for n, c in zip(names, C_est)]
    return {**out, "rot_med": np.median(rot), "rot_p90": np.percentile(rot, 90), "rot_max": np.max(rot),
            "ctr_med": np.median(ctr), "ctr_p90": np.percentile(ctr, 90)}


def image_sizes(image_dir: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    sizes = {}
    for n in names:
        with Image.open(image_dir / n) as im:
            sizes[n] = im.size
    return sizes


def sift_database(db_path: Path, image_dir: Path, names: list[str], pairs_file: Path) -> None:
    """COLMAP's SIFT and matcher (with its geometric verification) on the same cameras and pairs."""
    pycolmap = import_pycolmap()
    with pycolmap.Database.open(str(db_path)) as db:
        write_images(db, image_sizes(image_dir, names), image_dir)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = thread_count()
    pycolmap.extract_features(str(db_path), str(image_dir), image_names=names, extraction_options=extraction,
                              device=pycolmap.Device.cpu)
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = thread_count()
    pycolmap.match_image_pairs(str(db_path), matching_options=matching,
                               pairing_options=pycolmap.ImportedPairingOptions(match_list_path=str(pairs_file)),
                               device=pycolmap.Device.cpu)


def database_counts(db_path: Path) -> tuple[int, int]:
    """(verified pairs, inlier matches)."""
    pycolmap = import_pycolmap()
    with pycolmap.Database.open(str(db_path)) as db:
        _, inliers = db.read_two_view_geometry_num_inliers()
    return sum(1 for n in inliers if n > 0), int(sum(inliers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posed-dir", type=Path, default=ROOT.parent / "shared/data/posed")
    ap.add_argument("--scenes", nargs="+", default=list(DEFAULT_SCENES))
    ap.add_argument("--pairs", default="exhaustive", help="exhaustive | sequential:K | a pairs file name inside each scene")
    ap.add_argument("--max-size", type=int, default=640, help="UCN's network resolution (SIFT runs at full resolution)")
    ap.add_argument("--max-keypoints", type=int, default=2000, help="UCN's SIFT query points per image")
    ap.add_argument("--cells", type=int, nargs="+", default=[1], help="snapping grid cell sizes, network pixels")
    ap.add_argument("--ucn-args", default="", help="further ucn-match options, e.g. '--keypoints grid --grid-stride 4'")
    ap.add_argument("--methods", nargs="+", default=["ucn", "sift"], choices=["ucn", "sift"])
    ap.add_argument("--keep", type=Path, help="keep the work folders here (default: a temporary folder, removed); "
                    "UCN matches already there are reused (their time is then not a matching time)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_sfm_"))
    rows = []
    try:
        for scene in args.scenes:
            sdir = args.posed_dir / scene
            image_dir = sdir / "images"
            gt = json.loads((sdir / "cameras.json").read_text())["images"]
            spec = args.pairs if args.pairs in ("exhaustive",) or args.pairs.startswith("sequential") else str(sdir / args.pairs)
            pair_list = pairs_from_spec(spec, image_dir)
            names = sorted(pair_list.images)
            wdir = work / scene
            wdir.mkdir(parents=True, exist_ok=True)  # with --keep, matches of an earlier run are reused
            pairs_file = wdir / "pairs.txt"
            write_pairs_file(pairs_file, pair_list.pairs)
            label = f"{scene} ({len(names)} images, {len(pair_list.pairs)} pairs)"
            if "ucn" in args.methods:
                t = time.perf_counter()
                # One output folder per set of options (a folder holds matches of one setting).
                ucn_dir = wdir / ("ucn_" + hashlib.sha1(args.ucn_args.encode()).hexdigest()[:8] if args.ucn_args else "ucn")
                rc = cli.main(["--pairs", str(pairs_file), "--image-dir", str(image_dir), "--output-dir", str(ucn_dir),
                               "--max-size", str(args.max_size), "--max-keypoints", str(args.max_keypoints), "-q",
                               *args.ucn_args.split()])
                assert rc == 0, rc
                t_match = time.perf_counter() - t
                results = [load_result(ucn_dir, p) for p in pair_list.pairs]
                for cell in args.cells:
                    db = ucn_dir / f"cell{cell}.db"
                    t = time.perf_counter()
                    write_database(db, merge(results, cell=cell), image_dir, threads=thread_count())
                    t_export = time.perf_counter() - t
                    method = f"UCN {args.max_size} px" + (f" {args.ucn_args}" if args.ucn_args else "")
                    rows.append(_reconstruct_row(label, method + (f", cell {cell}" if len(args.cells) > 1 else ""),
                                                 db, image_dir, ucn_dir / f"sparse{cell}", gt, t_match + t_export))
            if "sift" in args.methods:
                db = wdir / "sift.db"
                db.unlink(missing_ok=True)
                t = time.perf_counter()
                sift_database(db, image_dir, names, pairs_file)
                rows.append(_reconstruct_row(label, "SIFT (COLMAP), full resolution", db, image_dir, wdir / "sparse_sift", gt,
                                             time.perf_counter() - t))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{thread_count()} threads; errors over the registered images of the largest model\n")
    print("| scene | matches | registered | rot. err. median | rot. err. p90 | rot. err. max | centre err. median | centre err. p90 "
          "| points | mean track length | reproj. err. | verified pairs | inlier matches | match + verify s | mapping s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scene']} | {r['method']} | {r['registered']} / {r['images']} | {r['rot_med']:.2f}° | {r['rot_p90']:.2f}° "
              f"| {r['rot_max']:.2f}° "
              f"| {r['ctr_med']:.3f} | {r['ctr_p90']:.3f} | {r['points']:,} | {r['track']:.2f} | {r['reproj']:.2f} px "
              f"| {r['verified']} | {r['inliers']:,} | {r['t_match']:.0f} | {r['t_map']:.0f} |")


def _reconstruct_row(scene: str, method: str, db: Path, image_dir: Path, out: Path, gt: dict, t_match: float) -> dict:
    verified, inliers = database_counts(db)
    t = time.perf_counter()
    stats, models = reconstruct(db, image_dir, out, threads=thread_count())
    t_map = time.perf_counter() - t
    row = {"scene": scene, "method": method, "verified": verified, "inliers": inliers, "t_match": t_match, "t_map": t_map}
    if not stats:
        return {**row, "registered": 0, "images": len(gt), "rot_med": np.nan, "rot_p90": np.nan, "rot_max": np.nan, "ctr_med": np.nan,
                "ctr_p90": np.nan, "points": 0, "track": np.nan, "reproj": np.nan}
    best = stats[0]
    row.update(evaluate(models[best.index], gt))
    row.update(points=best.points, track=best.mean_track_length, reproj=best.mean_reprojection_error)
    print(f"{scene}, {method}: {row['registered']} of {row['images']} registered, median rotation error "
          f"{row['rot_med']:.2f}°, {len(stats)} model(s)", flush=True)
    return row


if __name__ == "__main__":
    main()
