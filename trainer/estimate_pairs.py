"""Real training pairs from photos without cameras: the epipolar geometry of each pair, estimated robustly.

    python -m trainer.estimate_pairs --photos ../shared/data/posed/unposed/opensfm_lund ... --out .estdata

Each photo folder (one place, many views) becomes a scene folder ``OUT/est_<folder>/``
with ``images/`` (shrunk to ``--max-side``) and ``fundamentals.json``: for every
pair of views that passes the checks below, the fundamental matrix F (for the stored
images, ``x1^T F x0 = 0``) with its inlier count. The trainer reads such scenes with
``--posed_dir`` like scenes with cameras; the positives are then found the same way
(SIFT matches within ``--epipolar_threshold`` px of F's lines).

F is estimated from SIFT matches at ``--sift-side`` px (finer than the stored
images, so F is more precise than the training positives need), with MAGSAC++.
A pair is kept when:

- at least ``--min-inliers`` matches agree with F, and they are at least
  ``--min-inlier-ratio`` of the ratio-tested matches (else F may be fit to clutter);
- a homography does NOT explain nearly all of F's inliers (``--max-homography-share``):
  for a plane or a rotating camera F is not determined by the matches, and its
  epipolar test would accept wrong matches anywhere along a line. Such pairs are what
  the synthetic homography pairs already teach.

This recovers wide-baseline pairs of real photos (other days, other cameras, other
light) that no synthetic warp can produce; the price is that F is only as right as
SIFT's consensus, which ``benchmarks/bench_posed_labels.py`` style checks can bound.
"""
from __future__ import annotations

import argparse
import json
import sys
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np

from ucn_gui.core.files import atomic_write
from ucn_gui.core.image import ImageLoadError, read_rgb, scale_pixels, shrink_to_max_side

from .datasets.homography import list_images
from .datasets.posed import FUNDAMENTALS_FILE


def estimate_pair(
    xy0: np.ndarray, d0: np.ndarray, xy1: np.ndarray, d1: np.ndarray, args: argparse.Namespace
) -> tuple[np.ndarray, int, int, str] | tuple[None, int, int, str]:
    """(F or None, inliers, ratio-tested matches, why rejected) for keypoints N x 2 and descriptors N x 128."""
    if len(xy0) < 8 or len(xy1) < 8:
        return None, 0, 0, "too few keypoints"
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d0, d1, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < args.ratio * m[1].distance]
    if len(good) < args.min_inliers:
        return None, 0, len(good), "too few matches"
    p0 = xy0[[m.queryIdx for m in good]].astype(np.float64)
    p1 = xy1[[m.trainIdx for m in good]].astype(np.float64)
    F, mask = cv2.findFundamentalMat(p0, p1, cv2.USAC_MAGSAC, args.threshold, 0.9999, 20000)
    if F is None or F.shape != (3, 3):
        return None, 0, len(good), "no F"
    inl = mask.ravel().astype(bool)
    n = int(inl.sum())
    if n < args.min_inliers or n < args.min_inlier_ratio * len(good):
        return None, n, len(good), "too few inliers"
    _, hmask = cv2.findHomography(p0[inl], p1[inl], cv2.USAC_MAGSAC, 2.0 * args.threshold, confidence=0.9999)
    if hmask is not None and hmask.sum() >= args.max_homography_share * n:
        return None, n, len(good), "homography explains it (plane or rotation)"
    return F / np.linalg.norm(F), n, len(good), ""


def estimate_folder(folder: Path, out_root: Path, args: argparse.Namespace) -> tuple[int, int]:
    """Write one scene; returns (pairs kept, pairs tried)."""
    scene = out_root / f"est_{folder.name}"
    sift = cv2.SIFT_create(nfeatures=args.keypoints)
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for path in list_images([folder]):
        try:
            full = read_rgb(path)
        except ImageLoadError as exc:
            print(f"  skipped {path}: {exc}", file=sys.stderr)
            continue
        name = path.with_suffix(".jpg").name
        stored = shrink_to_max_side(full, args.max_side)
        fine = shrink_to_max_side(full, args.sift_side)
        (scene / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(scene / "images" / name), cv2.cvtColor(stored, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        kps, desc = sift.detectAndCompute(cv2.cvtColor(fine, cv2.COLOR_RGB2GRAY), None)
        xy = cv2.KeyPoint_convert(kps).reshape(-1, 2) if kps else np.zeros((0, 2), np.float32)
        feats[name] = (scale_pixels(xy, stored.shape[1] / fine.shape[1]).astype(np.float64),
                       desc if desc is not None else np.zeros((0, 128), np.float32))
        sizes[name] = (stored.shape[1], stored.shape[0])
    pairs, tried, reasons = [], 0, {}
    for a, b in combinations(sorted(feats), 2):
        tried += 1
        F, n, m, why = estimate_pair(*feats[a], *feats[b], args)
        if F is None:
            reasons[why] = reasons.get(why, 0) + 1
            continue
        pairs.append({"image0": a, "image1": b, "F": F.tolist(), "inliers": n, "matches": m})
    doc = {
        "source": str(folder),
        "rule": (f"SIFT {args.keypoints} at {args.sift_side} px, ratio {args.ratio}, MAGSAC++ F at {args.threshold} px "
                 f"(stored resolution); kept: >= {args.min_inliers} inliers and >= {args.min_inlier_ratio:.0%} of the "
                 f"matches, a homography explaining < {args.max_homography_share:.0%} of them"),
        "images": {n: {"width": w, "height": h} for n, (w, h) in sizes.items()},
        "pairs": pairs,
        "rejected": reasons,
    }
    atomic_write(scene / FUNDAMENTALS_FILE, lambda tmp: tmp.write_text(json.dumps(doc, indent=1) + "\n"))
    return len(pairs), tried


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", nargs="+", type=Path, required=True, help="photo folders, one place each")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-side", type=int, default=640, help="stored image size (the training resolution)")
    p.add_argument("--sift-side", type=int, default=1280, help="resolution F is estimated at")
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--keypoints", type=int, default=8000)
    p.add_argument("--ratio", type=float, default=0.8)
    p.add_argument("--threshold", type=float, default=0.75, help="MAGSAC++ threshold, px of the stored images")
    p.add_argument("--min-inliers", type=int, default=80)
    p.add_argument("--min-inlier-ratio", type=float, default=0.25)
    p.add_argument("--max-homography-share", type=float, default=0.8)
    a = p.parse_args(argv)
    for folder in a.photos:
        if not folder.is_dir():
            p.error(f"--photos: {folder}: no such folder")
    for folder in a.photos:
        kept, tried = estimate_folder(folder, a.out, a)
        print(f"est_{folder.name}: {kept} of {tried} pairs kept", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
