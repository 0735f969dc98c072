"""Matching speed: stage times in fp32 and at the 'auto' precision, the network alone in four
layouts, the nearest-neighbour search against sgemm, OpenCV SIFT on the same pair, the
thread-contention figure and the window's time to its first matches.

    python benchmarks/bench_matching.py --weights resources/models/default.safetensors   # everything
    python benchmarks/bench_matching.py --parts pair features                             # some of it
    python benchmarks/bench_matching.py --devices cuda --parts pair features search       # on a GPU

Every time is the best of --repeats runs (a shared machine has noisy neighbours);
ResUNetBN2F uses --weights when given, ResUNetBN2D2 random weights (speed does not
depend on them). Prints markdown tables.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ucn_gui.core.threads import configure_threads  # noqa: E402

configure_threads()  # before torch is imported

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ucn_gui.core.checkpoint import load_model  # noqa: E402
from ucn_gui.core.features import extract_features  # noqa: E402
from ucn_gui.core.filters import FilterSettings, apply_filters, filter_mask  # noqa: E402
from ucn_gui.core.image import load_image  # noqa: E402
from ucn_gui.core.matching import MatchOptions, PairFeatures, match, match_images  # noqa: E402
from ucn_gui.core.model import build_model  # noqa: E402
from ucn_gui.core.nn import nearest_neighbors  # noqa: E402
from ucn_gui.core.precision import autocast, cpu_has_native_bf16, resolve_precision  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAIR = (ROOT / "resources/samples/sacre_coeur1.jpg", ROOT / "resources/samples/sacre_coeur2.jpg")
PARTS = ("pair", "align", "features", "search", "sift", "contention", "window")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_of(fn, repeats: int, device: torch.device):
    """(best seconds, result of the best run)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        res = fn()
        _sync(device)
        dt = time.perf_counter() - t
        if dt < best:
            best, out = dt, res
    return best, out


def make_model(arch: str, n_out: int, weights: str | None, device: torch.device) -> torch.nn.Module:
    if weights and arch == "ResUNetBN2F":
        return load_model(weights, device).model
    torch.manual_seed(0)
    return build_model(arch, n_out).to(device).eval()


# ---------------------------------------------------------------------------- whole pair


def bench_pair(archs, device, args) -> None:
    img0, img1 = load_image(args.pair[0], args.size), load_image(args.pair[1], args.size)
    opts = MatchOptions(max_keypoints=args.keypoints)
    print(f"\n## Whole pair in process ({args.pair[0].name} / {args.pair[1].name} at {args.size} px, "
          f"{args.keypoints} SIFT queries, both tests, default filters; best of {args.repeats}; {device})\n")
    rows, totals = [], {}
    for arch, n_out in archs:
        model = make_model(arch, n_out, args.weights, device)
        for requested in ("fp32", "auto"):
            precision = resolve_precision(requested, device)

            def run():
                cpu = time.process_time()
                _, ms = match_images(model, img0, img1, opts, device, precision=precision)  # on a GPU: SIFT meanwhile
                t_f = time.perf_counter()
                mask = apply_filters(ms, FilterSettings())
                return ms, mask, time.perf_counter() - t_f, time.process_time() - cpu

            run()  # warm-up: allocator, kernels, weight layout
            total, (ms, mask, t_filter, cpu_s) = best_of(run, args.repeats, device)
            tm = ms.timings
            totals[(arch, requested)] = total
            rows.append((f"{arch} {n_out}-d", f"{requested} ({precision})", tm["features0"], tm["features1"], tm["keypoints"],
                         tm["forward"], tm["backward"], t_filter, total, cpu_s, int(mask.sum())))
    print("| model | precision | features 0 | features 1 | SIFT queries | search (top-2) | tests (reciprocity + stability) | filter | **total** | CPU time | kept |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.3f} | {r[7]:.4f} | **{r[8]:.3f}** | {r[9]:.2f} | {r[10]} |")
    print(f"\n(seconds; CPU time: this process, all {torch.get_num_threads()} threads, for the best run. On a machine shared with "
          "other work, CPU time / threads is closer to what an idle machine takes than the wall time.)")
    for arch, _ in archs:
        f32, auto = totals[(arch, "fp32")], totals[(arch, "auto")]
        print(f"\n{arch}: auto is {f32 / auto:.2f}x faster than fp32 ({f32:.3f} s -> {auto:.3f} s)")
    return totals


def bench_align(device, args) -> None:
    """One pass against the window's default (+ the alignment pass) on image 0 and itself turned 30 deg,
    zoomed 1.2x: a pair where the second pass runs and is kept."""
    from ucn_gui.core.alignment import match_aligned
    from ucn_gui.core.filters import default_filters
    from ucn_gui.core.image import prepare_image, read_rgb

    if not args.weights:
        print("\n(alignment pass: needs --weights, a trained model; a random one fits no homography)")
        return
    loaded = load_model(args.weights)
    model, trust = loaded.model.to(device), default_filters(loaded.card)
    rgb = read_rgb(args.pair[0])
    h, w = rgb.shape[:2]
    turned = cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.2), (w, h))
    img0, img1 = prepare_image(rgb, args.size), prepare_image(turned, args.size)
    opts = MatchOptions(max_keypoints=args.keypoints)
    print(f"\n## The alignment pass ({args.pair[0].name} and itself turned 30 deg, zoomed 1.2x, at {args.size} px, "
          f"auto precision, card thresholds; best of {args.repeats}; {device})\n")
    print("| run | seconds | kept |\n|---|---|---|")
    one, (pair, ms) = best_of(lambda: match_images(model, img0, img1, opts, device), args.repeats, device)
    print(f"| one pass (`ucn-match`) | {one:.3f} | {int(filter_mask(ms, trust).sum())} |")
    two, (_, ms2, al) = best_of(lambda: match_aligned(model, img0, img1, opts, trust, device), args.repeats, device)
    print(f"| + alignment pass (the window's default, `--align`) | {two:.3f} | {int(filter_mask(ms2, trust).sum())} |")
    print(f"\n{al.summary()}; {two / one:.2f}x the time of one pass")
    # The default pair, a wide baseline where no homography fits: every probe of image 1 turned runs, and the
    # first pass stays.
    wide = [prepare_image(read_rgb(p), args.size) for p in DEFAULT_PAIR]
    one, _ = best_of(lambda: match_images(model, *wide, opts, device), args.repeats, device)
    two, (_, _, al) = best_of(lambda: match_aligned(model, *wide, opts, trust, device), args.repeats, device)
    print(f"\nsacre_coeur1/2 (wide baseline): one pass {one:.3f} s, with the alignment pass {two:.3f} s "
          f"({two - one:.2f} s more). {al.summary()}")


# ---------------------------------------------------------------------------- network alone


def bench_features(archs, device, args) -> None:
    img = load_image(args.pair[0], args.size)
    low = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    name = "bf16" if low == torch.bfloat16 else "fp16"
    print(f"\n## The network alone: one {img.size[0]} x {img.size[1]} image (best of {args.repeats}; {device}; "
          f"native bf16 on this CPU: {cpu_has_native_bf16()})\n")
    print(f"| model | fp32 | {name} autocast | channels_last fp32 | channels_last + {name} | extract_features(precision='auto') |")
    print("|---|---|---|---|---|---|")
    x = img.tensor().to(device)
    for arch, n_out in archs:
        model = make_model(arch, n_out, args.weights, device)
        cells = []
        for lowp, cl in ((False, False), (True, False), (False, True), (True, True)):
            fmt = torch.channels_last if cl else torch.contiguous_format
            m = model.to(memory_format=fmt)
            xi = x.contiguous(memory_format=fmt)

            def fwd(m=m, xi=xi, lowp=lowp):
                with torch.no_grad(), autocast(name if lowp else "fp32", device):
                    return m(xi)

            fwd()
            cells.append(best_of(fwd, args.repeats, device)[0])
        model.to(memory_format=torch.contiguous_format)
        extract_features(model, img, device)
        cells.append(best_of(lambda: extract_features(model, img, device), args.repeats, device)[0])
        print(f"| {arch} {n_out}-d | " + " | ".join(f"{c:.3f} s" for c in cells) + " |")
    print("\n(extract_features in bf16 also runs the full-resolution layers, the first stage and the 1x1 head, in fp32.)")


# ---------------------------------------------------------------------------- search


def gemm_gflops(device: torch.device, dtype: torch.dtype, repeats: int, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    return 2 * n**3 / best_of(lambda: torch.mm(a, b), repeats, device)[0] / 1e9


def bench_search(device, args) -> None:
    model = make_model("ResUNetBN2F", 32, args.weights, device)
    img0, img1 = load_image(args.pair[0], args.size), load_image(args.pair[1], args.size)
    pair = PairFeatures.compute(model, img0, img1, device, precision="auto")
    ms = match(pair, MatchOptions(max_keypoints=args.keypoints))
    q_xy = img0.to_network(ms.keypoints0).round().astype(np.int64)
    q = pair.flat0[torch.as_tensor(q_xy[:, 1] * img0.size[0] + q_xy[:, 0], device=device)]
    db = pair.flat1
    flops = 2 * len(q) * len(db) * db.shape[1]
    print(f"\n## Nearest-neighbour search: {len(q)} queries x {len(db):,} pixels x {db.shape[1]} dims, top-2 (best of {args.repeats}; {device})\n")
    sgemm = gemm_gflops(device, torch.float32, args.repeats)
    bgemm = gemm_gflops(device, torch.bfloat16, args.repeats)
    print(f"| search | seconds | GFLOP/s | same result as fp32 |\n|---|---|---|---|")
    t32, (s32, i32) = best_of(lambda: nearest_neighbors(q, db, k=2), args.repeats, device)
    form = "exact fp32 two-pass" if device.type == "cpu" else "exact fp32 product + two maxima"
    print(f"| {form} | {t32:.3f} | {flops / t32 / 1e9:.0f} ({100 * flops / t32 / 1e9 / sgemm:.0f} % of sgemm) | - |")
    if device.type == "cpu":
        coarse = db.bfloat16()
        tb, (sb, ib) = best_of(lambda: nearest_neighbors(q, db, k=2, coarse=coarse), args.repeats, device)
        same = bool(torch.equal(ib, i32))
        print(f"| bf16 coarse pass + exact fp32 refinement | {tb:.3f} | {flops / tb / 1e9:.0f} ({100 * flops / tb / 1e9 / bgemm:.0f} % of bf16 gemm) | {same} |")
    print(f"\nsgemm 2048^3: {sgemm:.0f} GFLOP/s; bf16 gemm 2048^3: {bgemm:.0f} GFLOP/s (same run)")


# ---------------------------------------------------------------------------- OpenCV SIFT


def bench_sift(args) -> float:
    """SIFT detect + describe on both images, then mutual nearest neighbours (crossCheck)."""
    grays = [np.clip((load_image(p, args.size).gray + 0.5) * 255, 0, 255).astype(np.uint8) for p in args.pair]
    sift = cv2.SIFT_create(nfeatures=args.keypoints)
    matcher = cv2.BFMatcher(cv2.NORM_L2, crossCheck=True)

    def run():
        (k0, d0), (k1, d1) = (sift.detectAndCompute(g, None) for g in grays)
        return k0, k1, matcher.match(d0, d1)

    run()
    t, (k0, k1, m) = best_of(run, args.repeats, torch.device("cpu"))
    print(f"\n## OpenCV SIFT on the same pair: detect + describe both images ({len(k0)} and {len(k1)} points), "
          f"mutual brute-force match ({len(m)} matches): **{t:.3f} s** (best of {args.repeats}, {cv2.getNumThreads()} OpenCV threads)")
    return t


# ---------------------------------------------------------------------------- contention


def _spin(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import time\nt=time.time()+{seconds}\nwhile time.time()<t: pass"])


def bench_contention(args) -> None:
    """ucn-match on the sample pair with one core kept busy by another process, three thread set-ups."""
    weights = args.weights or str(ROOT / "resources/models/default.safetensors")
    setups = [
        ("1 thread", {"UCN_THREADS": "1"}),
        ("2 threads, OMP_WAIT_POLICY=PASSIVE (what configure_threads sets)", {"UCN_THREADS": "2"}),
        ("2 threads, OMP_WAIT_POLICY=ACTIVE (spinning, for comparison)", {"UCN_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}),
    ]
    print(f"\n## Contention: `ucn-match` on the pair at {args.size} px while another process keeps one core busy "
          f"(best of {args.contention_repeats} runs each; wall time of the whole command)\n")
    print("| threads | seconds | vs 1 thread |\n|---|---|---|")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in setups:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "UCN_THREADS")}
            env.update(extra, PYTHONPATH=str(ROOT))
            cmd = [sys.executable, "-m", "ucn_gui.cli", *map(str, args.pair), "-o", f"{tmp}/m.npz", "--weights", weights,
                   "--max-size", str(args.size), "--device", "cpu", "-q"]
            times = []
            for _ in range(args.contention_repeats):
                spinner = _spin(600)
                try:
                    t = time.perf_counter()
                    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
                    times.append(time.perf_counter() - t)
                finally:
                    spinner.kill()
                    spinner.wait()
            best = min(times)
            base = base or best
            print(f"| {name} | {best:.2f} (runs: {', '.join(f'{x:.2f}' for x in times)}) | {best / base:.2f}x |")
    print("\nGoal: 2 threads with one core busy within 1.5x of 1 thread.")


# ---------------------------------------------------------------------------- window


def bench_window(args) -> None:
    """Launch the app on the sample pair (offscreen) and time the first matches on screen."""
    print(f"\n## The window: launch to first matches drawn (`python main.py --first-result`, offscreen, "
          f"bundled model and sample pair, default settings; best of {args.contention_repeats})\n")
    times = []
    for _ in range(args.contention_repeats):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=home, XDG_CONFIG_HOME=f"{home}/config", PYTHONPATH=str(ROOT))
            start = time.time()
            out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--first-result", "--quit-after", "120"], env=env,
                                 capture_output=True, text=True, timeout=180, cwd=ROOT)
            line = [x for x in out.stdout.splitlines() if x.startswith("first-result ")]
            if not line:
                print(f"no result: {out.stderr[-500:]}")
                continue
            times.append(float(line[0].split()[1]) - start)
    if times:
        print(f"first window with matches after **{min(times):.2f} s** (runs: {', '.join(f'{t:.2f}' for t in times)}); goal <= 3 s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", nargs=2, type=Path, default=DEFAULT_PAIR)
    p.add_argument("--size", type=int, default=640, help="long side the network runs at")
    p.add_argument("--keypoints", type=int, default=2000)
    p.add_argument("--archs", nargs="+", default=["ResUNetBN2F:32", "ResUNetBN2D2:64"], help="ARCH:N_OUT")
    p.add_argument("--weights", help="weights for ResUNetBN2F (e.g. resources/models/default.safetensors)")
    p.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    p.add_argument("--contention-repeats", type=int, default=3, help="runs of each subprocess measurement")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: cpu, and cuda when available)")
    args = p.parse_args()
    devices = [torch.device(d) for d in (args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))]
    archs = [(a, int(n)) for a, n in (spec.split(":") for spec in args.archs)]
    gpu = f", {torch.cuda.get_device_name()}" if any(d.type == "cuda" for d in devices) else ""
    print(f"# Matching benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs{gpu}")
    print(f"command: python benchmarks/bench_matching.py {' '.join(sys.argv[1:])}")
    totals = {}
    for device in devices:
        if "pair" in args.parts:
            totals[device.type] = bench_pair(archs, device, args)
        if "align" in args.parts:
            bench_align(device, args)
        if "features" in args.parts:
            bench_features(archs, device, args)
        if "search" in args.parts:
            bench_search(device, args)
    if "sift" in args.parts:
        t_sift = bench_sift(args)
        cpu = totals.get("cpu", {})
        if ("ResUNetBN2F", "auto") in cpu:
            t_ucn = cpu[("ResUNetBN2F", "auto")]
            print(f"\nUCN (ResUNetBN2F, auto) / SIFT on this pair, same run: {t_ucn / t_sift:.1f}x (goal <= 3x)")
    if "contention" in args.parts:
        bench_contention(args)
    if "window" in args.parts:
        bench_window(args)


if __name__ == "__main__":
    main()
