"""Matching speed: stage times, NN search efficiency vs sgemm, and vs the seed's search.

    python benchmarks/bench_matching.py [--pair A B] [--size 640] [--keypoints 2000] [--archs ResUNetBN2F ResUNetBN2D2]

Prints one table per architecture and device. Weights are random unless --weights
is given (speed does not depend on them).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ucn_gui.core.threads import configure_threads

configure_threads()  # before torch is imported

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ucn_gui.core.checkpoint import load_model  # noqa: E402
from ucn_gui.core.filters import FilterSettings, apply_filters  # noqa: E402
from ucn_gui.core.image import load_image  # noqa: E402
from ucn_gui.core.matching import MatchOptions, PairFeatures, match  # noqa: E402
from ucn_gui.core.model import build_model  # noqa: E402
from ucn_gui.core.nn import nearest_neighbors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAIR = (ROOT / "tests/data/terrace0.jpg", ROOT / "tests/data/terrace1.jpg")


def sgemm_gflops(device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """Best of ``reps`` 2048^3 products, the same way the search is timed."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def broadcast_search(queries: torch.Tensor, database: torch.Tensor, chunk: int = 25) -> torch.Tensor:
    """The seed's way: explicit differences, chunk x N x C at a time, then argmin."""
    out = []
    for i in range(0, len(queries), chunk):
        d = ((queries[i : i + chunk, None, :] - database[None, :, :]) ** 2).sum(-1)
        out.append(d.argmin(1))
    return torch.cat(out)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(arch: str, n_out: int, device: torch.device, args) -> None:
    t = time.perf_counter()
    if args.weights:
        model = load_model(args.weights, device).model
    else:
        model = build_model(arch, n_out).to(device).eval()
    img0, img1 = load_image(args.pair[0], args.size), load_image(args.pair[1], args.size)
    t_load = time.perf_counter() - t
    opts = MatchOptions(max_keypoints=args.keypoints)
    PairFeatures.compute(model, img0, img1, device)  # warm-up (allocator, kernels)

    t0 = time.perf_counter()
    pair = PairFeatures.compute(model, img0, img1, device)
    ms = match(pair, opts)
    t = time.perf_counter()
    mask = apply_filters(ms, FilterSettings())
    t_filter = time.perf_counter() - t
    total = time.perf_counter() - t0

    # NN efficiency: the forward search alone, as FLOPs of the products it must do.
    q = pair.desc0[:, :: max(1, pair.desc0.shape[1] // 45), :: max(1, pair.desc0.shape[2] // 45)].flatten(1).t()[: len(ms)].contiguous()
    db = pair.flat1.contiguous()
    nearest_neighbors(q[:10], db, k=2)
    _sync(device)
    times = []
    for _ in range(args.repeats):  # best of several: a 2-core machine has noisy neighbours
        t = time.perf_counter()
        _, idx = nearest_neighbors(q, db, k=2)
        _sync(device)
        times.append(time.perf_counter() - t)
    t_nn = min(times)
    nn_gflops = 2 * len(q) * len(db) * db.shape[1] / t_nn / 1e9
    peak = sgemm_gflops(device)

    sub = q[: args.broadcast_queries]
    t = time.perf_counter()
    ref = broadcast_search(sub, db)
    _sync(device)
    t_bc = (time.perf_counter() - t) * len(q) / len(sub)
    # Random weights give exact ties; "same" means the same best score for every query.
    ref_score = (sub * db[ref]).sum(1)
    ours_score = (sub * db[idx[: len(sub), 0]]).sum(1)
    same = bool(torch.allclose(ref_score, ours_score, atol=1e-5))
    same_idx = float((ref == idx[: len(sub), 0]).float().mean())

    w0, h0 = img0.size
    w1, h1 = img1.size
    print(f"\n### {arch} ({n_out}-dim) on {device}: {w0}x{h0} and {w1}x{h1}, {len(ms)} SIFT queries, {len(db):,} pixels searched")
    print("| stage | seconds |\n|---|---|")
    rows = [("load images + model", t_load), ("features image 0", pair.timings["features0"]), ("features image 1", pair.timings["features1"]),
            ("query points (SIFT)", ms.timings["keypoints"]), ("forward search (top-2)", ms.timings["forward"]),
            ("reciprocity (backward search)", ms.timings["reciprocity"]), ("stability (shifted backward search)", ms.timings["stability"]),
            ("filter (mask)", t_filter), ("**end to end** (features .. mask)", total)]
    for name, sec in rows:
        print(f"| {name} | {sec:.3f} |")
    note = "" if args.weights else " (random weights keep few)"
    print(f"\nkept {int(mask.sum())} of {len(ms)} at the default thresholds{note}")
    print("| NN search | value |\n|---|---|")
    print(f"| sgemm 2048^3 (same run) | {peak:.0f} GFLOP/s |")
    print(f"| our search, {len(q)} queries, top-2 (best of {args.repeats}) | {t_nn:.3f} s = {nn_gflops:.0f} GFLOP/s = {100 * nn_gflops / peak:.0f}% of sgemm |")
    print(f"| broadcast differences, 25 per chunk (seed) | {t_bc:.2f} s (measured on {len(sub)} queries, scaled) |")
    print(f"| speed-up | {t_bc / t_nn:.0f}x, same best scores: {same} (identical indices: {100 * same_idx:.0f}%) |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", nargs=2, type=Path, default=DEFAULT_PAIR)
    p.add_argument("--size", type=int, default=640, help="long side the network runs at")
    p.add_argument("--keypoints", type=int, default=2000)
    p.add_argument("--archs", nargs="+", default=["ResUNetBN2F:32", "ResUNetBN2D2:64"], help="ARCH:N_OUT")
    p.add_argument("--weights", help="time a real model instead")
    p.add_argument("--broadcast-queries", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5, help="NN timing: best of this many runs")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        for spec in args.archs:
            arch, n_out = spec.split(":")
            bench(arch, int(n_out), device, args)


if __name__ == "__main__":
    main()
