"""How many positives the posed data set gives a pair, and what share of them is wrong.

    python benchmarks/bench_posed_labels.py [--posed-dir benchmarks/data/posed_val] [--threshold 1.5]

A positive only has to lie within the threshold of its epipolar line, so a wrong SIFT
match that slides along the line passes. A second view catches it: for every two
pairs (a, b) and (a, c) that share a positive's keypoint in a, the point triangulated
from (a, b) with the ground-truth cameras is projected into c and compared with the
(a, c) positive. If they disagree by more than 3 px, at least one of the two
positives is wrong, so half the disagreeing share is a lower bound and the whole
share an upper bound on the wrong fraction (both positives are rarely wrong in the
same way).
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np

from trainer.datasets.posed import PosedDataset, PosedParams, find_scene_dirs, load_scene

REPO = Path(__file__).resolve().parents[1]


def projection(cam) -> np.ndarray:
    return cam.K @ np.c_[cam.R, cam.t]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posed-dir", nargs="+", default=[REPO / "benchmarks/data/posed_val"])
    p.add_argument("--threshold", type=float, default=1.5, help="epipolar threshold of the positives, px")
    p.add_argument("--max-pairs", type=int, default=60, help="per scene")
    args = p.parse_args()
    params = PosedParams(crop_size=0, epipolar_threshold=args.threshold)
    print("| scene | pairs | SIFT candidates / pair | positives / pair | checked in a third view | disagree > 3 px |")
    print("|---|---|---|---|---|---|")
    for d in find_scene_dirs(args.posed_dir):
        scene = load_scene(d, params)
        ds = PosedDataset([scene], params)
        pos = {}
        for a, b in scene.pairs[: args.max_pairs]:
            out = ds.positives(scene, a, b)
            pos[(a, b)] = out
        n_pos = [len(v["pairs"]) for v in pos.values()]
        n_cand = [v["matches"] for v in pos.values()]
        checked = disagree = 0
        by_first: dict[str, list[tuple[str, np.ndarray]]] = {}
        for (a, b), v in pos.items():
            by_first.setdefault(a, []).append((b, v["pairs"]))
            by_first.setdefault(b, []).append((a, v["pairs"][:, [2, 3, 0, 1]]))
        for a, lst in by_first.items():
            for (b, pb), (c, pc) in itertools.permutations(lst, 2):
                # Positives of (a, b) and (a, c) that start at the same keypoint of a.
                kb = {tuple(np.round(x, 2)): i for i, x in enumerate(pb[:, :2])}
                common = [(kb[tuple(np.round(x, 2))], j) for j, x in enumerate(pc[:, :2]) if tuple(np.round(x, 2)) in kb]
                if not common:
                    continue
                ib, ic = map(np.array, zip(*common))
                ca, cb, cc = (ds.scenes[0].cameras[n].scaled(ds.image(scene.image_path(n))[1]) for n in (a, b, c))
                X = cv2.triangulatePoints(projection(ca), projection(cb), pb[ib, :2].T.astype(np.float64), pb[ib, 2:].T.astype(np.float64))
                x = projection(cc) @ X
                xy = (x[:2] / x[2]).T
                err = np.linalg.norm(xy - pc[ic, 2:], axis=1)
                checked += len(err)
                disagree += int((err > 3.0).sum())
        share = disagree / max(checked, 1)
        print(f"| {scene.name} | {len(pos)} | {np.mean(n_cand):.0f} | {np.mean(n_pos):.0f} (median {np.median(n_pos):.0f}) | "
              f"{checked} | {share:.3f} (wrong: {share / 2:.3f}-{share:.3f}) |")


if __name__ == "__main__":
    main()
