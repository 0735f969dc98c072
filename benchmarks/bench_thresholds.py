"""Precision and recall of the filters over a grid of thresholds, to choose a model's default thresholds.

    python benchmarks/bench_thresholds.py --weights default [--pairs-per-photo 2] [--pairs-per-scene 8]

Matches every validation pair of bench_accuracy once (the product's pipeline, raw
candidates), then re-masks the candidates for each combination of reciprocity,
stability and ratio thresholds. Printed per combination: kept matches per pair,
precision (share of kept matches within 3 px of the truth on synthetic pairs, within
2 px of the epipolar line on real pairs) and correct kept matches per pair, for the
synthetic and the real pairs. The chosen thresholds go into the model card's
``default_filters``; the app and ucn-match read them from there.
"""
from __future__ import annotations

from ucn_gui.core.threads import configure_threads

configure_threads()  # before torch is imported

import argparse  # noqa: E402
import itertools  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from bench_accuracy import POSED_VAL, VAL_PHOTOS  # noqa: E402

from trainer.accuracy import match_errors, posed_pairs, synthetic_pairs  # noqa: E402
from trainer.datasets.posed import PosedParams, find_scene_dirs, load_scene  # noqa: E402
from ucn_gui.core.checkpoint import load_model  # noqa: E402
from ucn_gui.core.filters import FilterSettings, filter_mask  # noqa: E402
from ucn_gui.core.image import prepare_image  # noqa: E402
from ucn_gui.core.matching import MatchOptions, match_images  # noqa: E402
from ucn_gui.core.zoo import resolve  # noqa: E402

RECIPROCITY = [1.0, 2.0, 3.0, 4.0, 6.0, None]
STABILITY = [1.0, 1.5, 2.0, 4.0, None]
RATIO = [None, 0.95, 0.9]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="default")
    p.add_argument("--pairs-per-photo", type=int, default=2)
    p.add_argument("--pairs-per-scene", type=int, default=8)
    p.add_argument("--posed-dir", type=Path, default=POSED_VAL)
    p.add_argument("--seed", type=int, default=2024)
    args = p.parse_args()

    model = load_model(resolve(args.weights, download_if_missing=True)).model
    pairs = synthetic_pairs(VAL_PHOTOS, args.pairs_per_photo, args.seed)
    if args.pairs_per_scene > 0 and args.posed_dir.is_dir():
        pairs += posed_pairs([load_scene(d, PosedParams()) for d in find_scene_dirs([args.posed_dir])], args.pairs_per_scene)
    runs = []
    for pair in pairs:
        _, ms = match_images(model, prepare_image(pair.img0, 640), prepare_image(pair.img1, 640), MatchOptions())
        runs.append((pair.posed, ms, match_errors(pair, ms.keypoints0, ms.keypoints1)))
    print(f"{sum(not r[0] for r in runs)} synthetic and {sum(r[0] for r in runs)} real pairs; weights {args.weights}\n")
    print("| reciprocity | stability | ratio | synthetic kept | precision @3 px | correct | real kept | precision @2 px | correct |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rec, stab, ratio in itertools.product(RECIPROCITY, STABILITY, RATIO):
        f = FilterSettings(reciprocity=rec, stability=stab, max_ratio=ratio)
        cols = []
        for posed, t in ((False, 3.0), (True, 2.0)):
            sel = [(filter_mask(ms, f), err) for p_, ms, err in runs if p_ == posed]
            if not sel:
                cols.append("- | - | -")
                continue
            kept = np.mean([k.sum() for k, _ in sel])
            prec = np.mean([(e[k] <= t).mean() if k.any() else 0.0 for k, e in sel])
            correct = np.mean([(e[k] <= t).sum() for k, e in sel])
            cols.append(f"{kept:.0f} | {prec:.3f} | {correct:.0f}")
        fmt = lambda v: "off" if v is None else f"{v:g}"  # noqa: E731
        print(f"| {fmt(rec)} | {fmt(stab)} | {fmt(ratio)} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
