"""Training speed and memory: iterations/s, peak memory, and where the time of one iteration goes.

    python benchmarks/bench_training.py                 # CPU, and CUDA when available
    python benchmarks/bench_training.py --steps 20 --crop 256 --candidates 40000 --positives 1024

One iteration = one image pair (batch 1, iter_size 1, so pairs/s = it/s): forward of
both images, hardest-negative mining, the selected distances, backward, SGD step.
Batches are made beforehand from the bundled sample photos, so data loading is not in
the step figures; a second phase then trains from the real loader (posed validation
scenes mixed half and half with homography pairs, --workers processes) and reports the
share of the time the step waited for data. Each configuration runs in its own process
so that peak RSS is its own. Precisions: fp32, and 'auto' (bf16 autocast where the hardware
runs bf16 natively, with channels_last on CUDA only, as the trainer does). For the trainer
against an earlier commit's, see bench_training_before_after.py.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ucn_gui.core.resources import samples_dir  # noqa: E402
from ucn_gui.core.threads import configure_threads  # noqa: E402

CONFIGS = [("ResUNetBN2F", 32), ("ResUNetBN2D2", 64)]


def run_one(arch: str, n_out: int, device: str, crop: int, candidates: int, positives: int, steps: int, warmup: int,
            threads: int = 0, precision: str = "fp32", workers: int = 1) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from trainer.config import parse_args
    from trainer.datasets import HomographyDataset, HomographyParams, collate_pairs
    from trainer.distributed import DistContext
    from trainer.loop import Trainer

    samples = samples_dir()
    precision, _, layout = precision.partition(":")  # "bf16:nchw": autocast without channels_last
    cfg = parse_args([
        "--dataset", "homography", "--data_dir", str(samples), "--model", arch, "--model_n_out", str(n_out),
        "--crop_size", str(crop), "--num_hn_samples_per_batch", str(candidates), "--num_pos_per_batch", str(positives),
        "--batch_size", "1", "--device", device, "--out_dir", "/tmp/ucn-bench-unused", "--precision", precision,
        "--optimizer", "adam", *(["--channels_last", "false"] if layout == "nchw" else []),
    ])
    dev = torch.device(device)
    trainer = Trainer(cfg, DistContext(device=dev), build_data=False)
    ds = HomographyDataset([samples], HomographyParams(crop_size=crop), seed=0)
    t = time.perf_counter()
    batches = [collate_pairs([ds[(1, i)]]) for i in range(warmup + steps)]
    sample_ms = (time.perf_counter() - t) / len(batches) * 1000
    gen = torch.Generator().manual_seed(0)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    for b in batches[:warmup]:
        trainer.train_step([b], gen)
    parts = {"forward": 0.0, "mining": 0.0, "loss": 0.0, "backward": 0.0, "optimizer": 0.0}
    t = time.perf_counter()
    for b in batches[warmup:]:
        st = trainer.train_step([b], gen)
        parts["forward"] += st.forward_s
        parts["mining"] += st.mining_s
        parts["loss"] += st.loss_s
        parts["backward"] += st.backward_s
        parts["optimizer"] += st.optimizer_s
    total = time.perf_counter() - t
    wait_share = data_wait_share(trainer, crop, steps, workers, gen) if workers > 0 else float("nan")
    out = {
        "arch": arch, "n_out": n_out, "device": device, "precision": trainer.precision + ("" if trainer.channels_last else " nchw"), "crop": crop,
        "it_per_s": steps / total, "ms_per_it": total / steps * 1000, "data_wait": wait_share, "workers": workers,
        **{f"{k}_ms": v / steps * 1000 for k, v in parts.items()},
        "sample_ms": sample_ms,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        out["gpu"] = torch.cuda.get_device_name(dev)
    return out


def data_wait_share(trainer, crop: int, steps: int, workers: int, gen) -> float:
    """Train ``steps`` iterations from a real DataLoader; the share of wall time spent waiting for batches."""
    from torch.utils.data import DataLoader

    from trainer.datasets import HomographyDataset, HomographyParams, KeySampler, MixedDataset, PosedDataset, PosedParams, collate_pairs
    from trainer.datasets.posed import find_scene_dirs, load_scene

    params = PosedParams(crop_size=crop)
    posed = PosedDataset([load_scene(d, params) for d in find_scene_dirs([REPO / "benchmarks/data/posed_val"])], params)
    photos = HomographyDataset([samples_dir()], HomographyParams(crop_size=crop))
    data = MixedDataset([posed, photos], [0.5, 0.5])
    loader = iter(DataLoader(data, batch_size=1, sampler=KeySampler(1), collate_fn=collate_pairs, num_workers=workers,
                             prefetch_factor=4 if workers else None))
    def next_usable():
        while True:
            b = next(loader)
            if b["img0"] is not None:
                return b
    for _ in range(2):  # workers start and fill their queues
        trainer.train_step([next_usable()], gen)
    waited = 0.0
    t = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        b = next_usable()
        waited += time.perf_counter() - t0
        trainer.train_step([b], gen)
    return waited / (time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--crops", type=int, nargs="+", default=[160, 256])
    p.add_argument("--precisions", nargs="+", default=["fp32", "auto"],
                   help="fp32, bf16, fp16 or auto; a ':nchw' suffix turns channels_last off (e.g. bf16:nchw)")
    p.add_argument("--archs", nargs="+", default=None, help="ARCH:N_OUT (default: ResUNetBN2F:32 ResUNetBN2D2:64)")
    p.add_argument("--workers", type=int, default=1, help="loader processes in the data-wait phase (0: skip it)")
    p.add_argument("--candidates", type=int, default=40000)
    p.add_argument("--positives", type=int, default=1024)
    p.add_argument("--steps", type=int, default=None, help="timed iterations (default 8 on CPU, 50 on CUDA)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: configure_threads' choice, the physical cores)")
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--one", nargs=5, metavar=("ARCH", "N_OUT", "DEVICE", "CROP", "PRECISION"), help=argparse.SUPPRESS)
    args = p.parse_args()
    configure_threads()  # before torch is imported (run_one may then set --threads)
    if args.one:
        arch, n_out, device, crop, precision = args.one
        steps = args.steps or (50 if device.startswith("cuda") else 8)
        res = run_one(arch, int(n_out), device, int(crop), args.candidates, args.positives, steps, args.warmup, args.threads,
                      precision, args.workers)
        print(json.dumps(res))
        return 0

    import torch

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = []
    configs = [(a.split(":")[0], int(a.split(":")[1])) for a in args.archs] if args.archs else CONFIGS
    runs = [(d, a, n, c, pr) for d in devices for a, n in configs for c in args.crops for pr in args.precisions]
    for device, arch, n_out, crop, precision in runs:
        cmd = [sys.executable, __file__, "--one", arch, str(n_out), device, str(crop), precision,
               "--candidates", str(args.candidates), "--positives", str(args.positives), "--warmup", str(args.warmup),
               "--threads", str(args.threads), "--workers", str(args.workers)]
        if args.steps:
            cmd += ["--steps", str(args.steps)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{arch} on {device} failed:\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  done: {arch} on {device}, {crop} px, {precision}", file=sys.stderr)

    print(f"\nTraining iteration: one pair, {args.positives} positives, "
          f"{args.candidates} hardest-negative candidates per image, Adam step")
    if rows and rows[0]["device"] == "cpu":
        print(f"CPU threads: {rows[0]['threads']}")
    head = f"| {'model':<13} | {'device':<6} | crop | {'precision':<9} | {'pairs/s':>7} | {'data wait':>9} | {'peak mem':>13} | {'forward ms':>10} | {'mining ms':>9} | {'loss ms':>7} | {'backward ms':>11} | {'step ms':>7} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        mem = f"{r['peak_cuda_mb']:.0f} MB CUDA" if "peak_cuda_mb" in r else f"{r['peak_rss_mb']:.0f} MB RSS"
        wait = f"{r['data_wait'] * 100:.0f}% ({r['workers']}w)"
        print(f"| {r['arch']:<13} | {r['device']:<6} | {r['crop']:>4} | {r['precision']:<9} | {r['it_per_s']:>7.2f} | {wait:>9} | {mem:>13} | {r['forward_ms']:>10.0f} | "
              f"{r['mining_ms']:>9.0f} | {r['loss_ms']:>7.0f} | {r['backward_ms']:>11.0f} | {r['optimizer_ms']:>7.0f} |")
    for r in rows:
        share = {k: r[f"{k}_ms"] / r["ms_per_it"] * 100 for k in ("forward", "mining", "loss", "backward", "optimizer")}
        print(f"{r['arch']} on {r['device']}, {r['crop']} px, {r['precision']}: " + ", ".join(f"{k} {v:.0f}%" for k, v in share.items())
              + f"; making one sample takes {r['sample_ms']:.0f} ms (in loader workers during training)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
