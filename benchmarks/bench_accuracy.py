"""Accuracy on synthetic homography pairs: UCN (filtered and raw) against SIFT, ORB and AKAZE.

    python benchmarks/bench_accuracy.py [--weights default] [--pairs-per-photo 2] [--out benchmarks/results]

Pairs are made (seeded) from validation photos that the default model never saw
in training: each photo, shrunk to 640 px on its long side, is warped by a random
homography of one of three strengths and given gain / bias / noise changes.
For each method it prints mean matching accuracy (MMA: share of returned matches
within t px of the truth) at 1, 3, 5, 10 px, correct matches at 3 px per pair,
homography accuracy (mean corner error < 3 px after RANSAC) and seconds per
pair; and writes a PNG of the MMA curves.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ucn_gui.core.checkpoint import load_model
from ucn_gui.core.filters import FilterSettings, filter_mask
from ucn_gui.core.image import prepare_image, read_rgb
from ucn_gui.core.matching import MatchOptions, match_images
from ucn_gui.core.zoo import resolve

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
THRESHOLDS = np.arange(1, 11)
# (name, max rotation deg, scale range, perspective corner jitter as a fraction of the side)
STRENGTHS = [("mild", 15.0, (0.85, 1.2), 0.05), ("medium", 30.0, (0.7, 1.4), 0.1), ("strong", 45.0, (0.6, 1.6), 0.15)]


@dataclass
class Pair:
    name: str
    strength: str
    img0: np.ndarray  # H x W x 3 uint8
    img1: np.ndarray
    H: np.ndarray  # 3 x 3, image 0 pixels -> image 1 pixels


def random_homography(w: int, h: int, rot_deg: float, scale: tuple[float, float], persp: float, rng) -> np.ndarray:
    """Rotation and zoom about the centre, then perspective jitter of the corners."""
    c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    a = np.deg2rad(rng.uniform(-rot_deg, rot_deg))
    s = np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1])))
    rs = np.array([[s * np.cos(a), -s * np.sin(a), 0], [s * np.sin(a), s * np.cos(a), 0], [0, 0, 1]])
    A = np.linalg.inv(c) @ rs @ c
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moved = cv2.perspectiveTransform(corners[None], A)[0] + rng.uniform(-persp, persp, (4, 2)).astype(np.float32) * [w, h]
    return cv2.getPerspectiveTransform(corners, moved.astype(np.float32))


def photometric(img: np.ndarray, rng) -> np.ndarray:
    gain, bias, noise = rng.uniform(0.7, 1.3), rng.uniform(-25, 25), rng.uniform(0, 6)
    out = img.astype(np.float32) * gain + bias + rng.normal(0, noise, img.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_pairs(pairs_per_photo: int, seed: int) -> list[Pair]:
    rng = np.random.default_rng(seed)
    pairs = []
    for photo in VAL_PHOTOS:
        rgb = read_rgb(photo)
        f = 640 / max(rgb.shape[:2])
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
        h, w = rgb.shape[:2]
        for strength, rot, scale, persp in STRENGTHS:
            for k in range(pairs_per_photo):
                H = random_homography(w, h, rot, scale, persp, rng)
                warped = cv2.warpPerspective(rgb, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                pairs.append(Pair(f"{photo.stem}-{strength}-{k}", strength, rgb, photometric(warped, rng), H))
    return pairs


Matcher = Callable[[Pair], tuple[np.ndarray, np.ndarray]]  # -> (N x 2 in image 0, N x 2 in image 1)


def opencv_matcher(kind: str) -> Matcher:
    """Detector + descriptor with the ratio test (0.8) and a mutual check."""
    det = {"SIFT": lambda: cv2.SIFT_create(nfeatures=4000), "ORB": lambda: cv2.ORB_create(nfeatures=4000),
           "AKAZE": lambda: cv2.AKAZE_create(threshold=0.0005)}[kind]()
    norm = cv2.NORM_L2 if kind == "SIFT" else cv2.NORM_HAMMING

    def run(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        k0, d0 = det.detectAndCompute(cv2.cvtColor(pair.img0, cv2.COLOR_RGB2GRAY), None)
        k1, d1 = det.detectAndCompute(cv2.cvtColor(pair.img1, cv2.COLOR_RGB2GRAY), None)
        if d0 is None or d1 is None or len(k0) < 2 or len(k1) < 2:
            return np.zeros((0, 2)), np.zeros((0, 2))
        bf = cv2.BFMatcher(norm)
        fwd = bf.knnMatch(d0, d1, k=2)
        back = {m.queryIdx: m.trainIdx for m in bf.match(d1, d0)}
        good = [m for m, n in (p for p in fwd if len(p) == 2) if m.distance < 0.8 * n.distance and back.get(m.trainIdx) == m.queryIdx]
        p0 = np.float32([k0[m.queryIdx].pt for m in good]).reshape(-1, 2)
        p1 = np.float32([k1[m.trainIdx].pt for m in good]).reshape(-1, 2)
        return p0, p1

    return run


def ucn_matcher(weights: str, filters: FilterSettings | None, max_keypoints: int) -> Matcher:
    model = load_model(resolve(weights, download_if_missing=True)).model

    def run(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        _, ms = match_images(model, prepare_image(pair.img0), prepare_image(pair.img1), MatchOptions(max_keypoints=max_keypoints))
        keep = filter_mask(ms, filters) if filters is not None else np.ones(len(ms), bool)
        return ms.keypoints0[keep], ms.keypoints1[keep]

    return run


def evaluate(pair: Pair, p0: np.ndarray, p1: np.ndarray) -> dict:
    if len(p0) == 0:
        return {"errors": np.zeros(0), "h_ok": False}
    truth = cv2.perspectiveTransform(p0.reshape(-1, 1, 2).astype(np.float64), pair.H)[:, 0]
    err = np.linalg.norm(p1 - truth, axis=1)
    h_ok = False
    if len(p0) >= 4:
        H_est, _ = cv2.findHomography(p0.astype(np.float64), p1.astype(np.float64), cv2.RANSAC, 3.0, maxIters=5000)
        if H_est is not None:
            h, w = pair.img0.shape[:2]
            c = np.float64([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]).reshape(-1, 1, 2)
            h_ok = bool(np.linalg.norm(cv2.perspectiveTransform(c, H_est) - cv2.perspectiveTransform(c, pair.H), axis=2).mean() < 3.0)
    return {"errors": err, "h_ok": h_ok}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="default")
    p.add_argument("--pairs-per-photo", type=int, default=2, help="per strength bucket")
    p.add_argument("--max-keypoints", type=int, default=2000)
    p.add_argument("--reciprocity", type=float, default=4.0)
    p.add_argument("--stability", type=float, default=1.5)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = p.parse_args()

    pairs = make_pairs(args.pairs_per_photo, args.seed)
    methods: dict[str, Matcher] = {
        f"UCN, reciprocity <= {args.reciprocity:g} px, stability <= {args.stability:g} px": ucn_matcher(
            args.weights, FilterSettings(args.reciprocity, args.stability), args.max_keypoints),
        "UCN, raw nearest neighbours": ucn_matcher(args.weights, None, args.max_keypoints),
        "SIFT, ratio 0.8 + mutual": opencv_matcher("SIFT"),
        "ORB, ratio 0.8 + mutual": opencv_matcher("ORB"),
        "AKAZE, ratio 0.8 + mutual": opencv_matcher("AKAZE"),
    }
    results: dict[str, dict] = {}
    for name, run in methods.items():
        per_pair, seconds = [], 0.0
        for pair in pairs:
            t = time.perf_counter()
            p0, p1 = run(pair)
            seconds += time.perf_counter() - t
            per_pair.append((pair.strength, evaluate(pair, p0, p1)))
        results[name] = summarize(per_pair, seconds / len(pairs))
        print(f"done: {name}", flush=True)

    print(f"\n{len(pairs)} pairs ({args.pairs_per_photo} per photo and strength, {len(VAL_PHOTOS)} photos, seed {args.seed}); weights: {args.weights}\n")
    print("| method | MMA@1 | MMA@3 | MMA@5 | MMA@10 | correct@3px / pair | homography acc. | s / pair |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        m = r["all"]
        print(f"| {name} | {m['mma'][0]:.2f} | {m['mma'][2]:.2f} | {m['mma'][4]:.2f} | {m['mma'][9]:.2f} | {m['correct3']:.0f} | "
              f"{m['h_acc']:.2f} | {r['seconds']:.2f} |")
    print("\ncorrect matches at 3 px per pair (MMA@3) by strength:\n")
    print("| method | " + " | ".join(s for s, *_ in STRENGTHS) + " |\n|---|" + "---|" * len(STRENGTHS))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[s]['correct3']:.0f} ({r[s]['mma'][2]:.2f})" for s, *_ in STRENGTHS) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(json.dumps(
        {k: {b: {kk: (vv.tolist() if isinstance(vv, np.ndarray) else vv) for kk, vv in v.items()} if isinstance(v, dict) else v
             for b, v in r.items()} for k, r in results.items()}, indent=1))
    plot(results, args.out / "mma.png")
    print(f"\nwrote {args.out / 'mma.png'} and {args.out / 'accuracy.json'}")


def summarize(per_pair: list[tuple[str, dict]], seconds: float) -> dict:
    def agg(rows: list[dict]) -> dict:
        mma = np.mean([[(r["errors"] <= t).mean() if len(r["errors"]) else 0.0 for t in THRESHOLDS] for r in rows], axis=0)
        return {"mma": mma, "correct3": float(np.mean([(r["errors"] <= 3).sum() for r in rows])),
                "kept": float(np.mean([len(r["errors"]) for r in rows])), "h_acc": float(np.mean([r["h_ok"] for r in rows]))}

    out = {"all": agg([r for _, r in per_pair]), "seconds": seconds}
    for s, *_ in STRENGTHS:
        out[s] = agg([r for b, r in per_pair if b == s])
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(STRENGTHS) + 1, figsize=(16, 4), sharey=True)
    for ax, bucket in zip(axes, ["all"] + [s for s, *_ in STRENGTHS]):
        for name, r in results.items():
            ax.plot(THRESHOLDS, r[bucket]["mma"], marker="o", label=name)
        ax.set_title(bucket)
        ax.set_xlabel("threshold (px)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean matching accuracy")
    axes[0].set_ylim(0, 1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
