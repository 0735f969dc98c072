"""Accuracy on synthetic homography pairs and on real posed pairs: UCN (filtered and raw) against SIFT, ORB, AKAZE.

    python benchmarks/bench_accuracy.py [--weights default [OTHER ...]] [--pairs-per-photo 2] [--pairs-per-scene 8]

Synthetic pairs are made (seeded) from validation photos that no bundled model trained
on: each photo, shrunk to 640 px on its long side, is warped by a random homography
of one of three strengths and given gain / bias / noise changes. Real pairs come from
the posed validation scenes in ``benchmarks/data/posed_val`` (whole scenes that no
bundled model trained on, shrunk to 640 px, K rescaled; see its README).

Printed per method: mean matching accuracy (MMA: share of returned matches within t px
of the truth; for real pairs t is the symmetric epipolar distance), correct matches per
pair, homography accuracy (mean corner error < 3 px after RANSAC) or relative-pose AUC
at 5 / 10 / 20 degrees (essential matrix from the matches, GT intrinsics), and seconds
per pair. UCN runs exactly as the app does (``trainer.accuracy.ucn_matchers``) with the
thresholds from the model card unless --reciprocity / --stability are given, and its
query points are up to 2,000 SIFT detections (``--queries grid --grid-stride 4``: a regular
grid instead, the window's Grid mode, flat pixels skipped unless ``--min-texture 0``, to see
what denser queries buy; ``--align`` adds the alignment pass, as the window does).
"""
from __future__ import annotations

from ucn_gui.core.threads import configure_threads

configure_threads()  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from trainer.accuracy import (  # noqa: E402
    STRENGTHS, THRESHOLDS, Matcher, aggregate, opencv_matcher, posed_pairs, score_pair, synthetic_pairs, ucn_matchers, xfeat_matcher,
)
from trainer.datasets.posed import PosedParams, find_scene_dirs, load_scene  # noqa: E402
from ucn_gui.core.checkpoint import load_model  # noqa: E402
from ucn_gui.core.filters import default_filters  # noqa: E402
from ucn_gui.core.settings import MatchOptions  # noqa: E402
from ucn_gui.core.zoo import resolve  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Validation photos, none used in training: LightGlue's pairs and the low-texture terrace pair.
VAL_PHOTOS = [
    ROOT / "resources/samples/DSC_0410.jpg",
    ROOT / "resources/samples/DSC_0411.jpg",
    ROOT / "resources/samples/sacre_coeur1.jpg",
    ROOT / "resources/samples/sacre_coeur2.jpg",
    ROOT / "tests/data/terrace0.jpg",
    ROOT / "tests/data/terrace1.jpg",
]
POSED_VAL = ROOT / "benchmarks/data/posed_val"


def summarize(rows: list[dict], seconds: float) -> dict:
    out = {"seconds": seconds}
    syn = [r for r in rows if not r["posed"]]
    posed = [r for r in rows if r["posed"]]
    if syn:
        out["synthetic"] = aggregate(syn)
        for s, *_ in STRENGTHS:
            out[s] = aggregate([r for r in syn if r["group"] == s])
    if posed:
        out["posed"] = aggregate(posed)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", nargs="+", default=["default"], help="one or more models (files or zoo names)")
    p.add_argument("--pairs-per-photo", type=int, default=2, help="synthetic pairs per photo and strength")
    p.add_argument("--pairs-per-scene", type=int, default=8, help="real pairs per posed validation scene (0: none)")
    p.add_argument("--posed-dir", type=Path, default=POSED_VAL)
    p.add_argument("--queries", choices=("sift", "grid"), default="sift",
                   help="UCN's query points: SIFT detections (the app's default) or a regular grid")
    p.add_argument("--max-keypoints", type=int, default=2000, help="SIFT query points per pair, at most")
    p.add_argument("--grid-stride", type=int, default=8, help="pixels between grid query points (at the 640-px size)")
    p.add_argument("--min-texture", type=float, default=MatchOptions.min_texture,
                   help="grid queries skip pixels flatter than this (ucn-match --min-texture; 0: every grid point)")
    p.add_argument("--reciprocity", type=float, default=None, help="default: the model card's")
    p.add_argument("--stability", type=float, default=None, help="default: the model card's")
    p.add_argument("--no-baselines", action="store_true", help="UCN rows only")
    p.add_argument("--align", action="store_true",
                   help="UCN with the alignment pass (ucn-match --align): image 1 warped by a homography fitted to the "
                        "first pass's kept matches, matched again, the pass keeping more returned")
    p.add_argument("--no-subpixel", action="store_true", help="UCN targets at the searched pixel (ucn-match --no-subpixel)")
    p.add_argument("--device", default="cpu", help="where UCN runs (cpu, cuda); the baselines always run on the CPU")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = p.parse_args()

    pairs = synthetic_pairs(VAL_PHOTOS, args.pairs_per_photo, args.seed)
    scenes = []
    if args.pairs_per_scene > 0 and args.posed_dir.is_dir():
        scenes = [load_scene(d, PosedParams()) for d in find_scene_dirs([args.posed_dir])]
        pairs += posed_pairs(scenes, args.pairs_per_scene)

    options = MatchOptions(keypoints=args.queries, max_keypoints=args.max_keypoints, grid_stride=args.grid_stride,
                           subpixel=not args.no_subpixel, min_texture=args.min_texture)
    queries = f"up to {args.max_keypoints:,} SIFT points" if args.queries == "sift" else f"grid, stride {args.grid_stride} px"
    if args.queries == "grid":
        queries += f", texture >= {args.min_texture:g}" if args.min_texture > 0 else ", flat pixels too"
    if args.no_subpixel:
        queries += ", whole-pixel targets"
    methods: dict[str, Matcher] = {}
    for w in args.weights:
        loaded = load_model(resolve(w, download_if_missing=True))
        loaded.model.to(args.device)
        f = default_filters(loaded.card)
        if args.reciprocity is not None:
            f.reciprocity = args.reciprocity
        if args.stability is not None:
            f.stability = args.stability
        label = w if len(args.weights) > 1 else "UCN"
        if options != MatchOptions():
            label += f" ({queries})"
        if args.align:
            label += " + alignment pass"
        filtered, raw = ucn_matchers(loaded.model, [f, None], device=args.device, options=options, align=f if args.align else None)  # one matching run per pair for both rows
        methods[f"{label}, reciprocity <= {f.reciprocity:g} px, stability <= {f.stability:g} px"] = filtered
        methods[f"{label}, raw nearest neighbours"] = raw
    if not args.no_baselines:
        for kind in ("SIFT", "ORB", "AKAZE"):
            methods[f"{kind}, ratio 0.8 + mutual"] = opencv_matcher(kind)
        xfeat = xfeat_matcher()  # the optional 'compare' extra
        if xfeat is not None:
            methods["XFeat (4,096 points), mutual nearest"] = xfeat
        else:
            print("XFeat row skipped: pip install 'ucn-viewer[compare]' to add it", flush=True)

    results = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    for pair in pairs:  # pair-major: a model's filtered and raw rows share one matching run
        for name, run in methods.items():
            t = time.perf_counter()
            p0, p1 = run(pair)
            seconds[name] += time.perf_counter() - t
            results[name].append(score_pair(pair, p0, p1))
    results = {name: summarize(rows, seconds[name] / len(pairs)) for name, rows in results.items()}

    n_syn = sum(not q.posed for q in pairs)
    print(f"\n{n_syn} synthetic pairs ({args.pairs_per_photo} per photo and strength, {len(VAL_PHOTOS)} photos, seed {args.seed}); "
          f"weights: {', '.join(args.weights)}\n")
    print("| method | MMA@1 | MMA@3 | MMA@5 | MMA@10 | correct@3px / pair | kept / pair | homography acc. | s / pair |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        m = r["synthetic"]
        print(f"| {name} | {m['mma'][0]:.2f} | {m['mma'][2]:.2f} | {m['mma'][4]:.2f} | {m['mma'][9]:.2f} | {m['correct3']:.0f} | "
              f"{m['kept']:.0f} | {m['h_acc']:.2f} | {r['seconds']:.2f} |")
    print("\ncorrect matches at 3 px per pair (MMA@3) by strength:\n")
    print("| method | " + " | ".join(s for s, *_ in STRENGTHS) + " |\n|---|" + "---|" * len(STRENGTHS))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[s]['correct3']:.0f} ({r[s]['mma'][2]:.2f})" for s, *_ in STRENGTHS) + " |")
    if scenes:
        n_posed = len(pairs) - n_syn
        print(f"\n{n_posed} real pairs from {len(scenes)} posed validation scenes ({', '.join(s.name for s in scenes)}); "
              "error = symmetric epipolar distance under the ground-truth cameras:\n")
        print("| method | epipolar-correct @1 px | @2 px | @3 px | correct @2 px / pair | kept / pair | pose AUC@5° | @10° | @20° |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            m = r["posed"]
            a = m["pose_auc"]
            print(f"| {name} | {m['mma'][0]:.2f} | {m['mma'][1]:.2f} | {m['mma'][2]:.2f} | {m['correct2']:.0f} | {m['kept']:.0f} | "
                  f"{a[0]:.2f} | {a[1]:.2f} | {a[2]:.2f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "mma.png")
    print(f"\nwrote {args.out / 'mma.png'} and {args.out / 'accuracy.json'}")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets = ["synthetic"] + [s for s, *_ in STRENGTHS] + (["posed"] if "posed" in next(iter(results.values())) else [])
    fig, axes = plt.subplots(1, len(buckets), figsize=(4 * len(buckets), 4), sharey=True)
    for ax, bucket in zip(axes, buckets):
        for name, r in results.items():
            ax.plot(THRESHOLDS, r[bucket]["mma"], marker="o", label=name)
        ax.set_title("real pairs (epipolar)" if bucket == "posed" else bucket)
        ax.set_xlabel("threshold (px)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean matching accuracy")
    axes[0].set_ylim(0, 1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
