"""The trainer of an earlier commit against this checkout's, in the same rounds on the same machine.

    python benchmarks/bench_training_before_after.py                       # before = c9ed82a^ (fp32 only)
    python benchmarks/bench_training_before_after.py --before REV --crops 160 256 --rounds 3 --steps 16

``bench_training.py`` compares precisions within today's trainer, whose fp32 path also gained
from the speed work (mining, per-image norm, allocator). This one answers the question the
speed goal asks: how many pairs per second does the trainer train now, against the trainer as
it was? The default "before" is the parent of c9ed82a, the last commit without mixed
precision, in fp32 (all it had). Both run the same iteration as bench_training: one
homography pair of the bundled sample photos per step (made beforehand), 1,024 positives,
40,000 hardest-negative candidates, Adam. The configurations alternate within each round, so
a slow stretch of a shared machine hits them alike; the table gives every round's figure.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BEFORE = "c9ed82a^"

# Runs inside a checkout (its path first on sys.path): only API that both old and new trainers have.
_HARNESS = """
import json, sys, time
repo, crop, precision, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sys.path.insert(0, repo)
import torch
from trainer.config import parse_args
from trainer.datasets import HomographyDataset, HomographyParams, collate_pairs
from trainer.distributed import DistContext
from trainer.loop import Trainer
samples = repo + "/resources/samples"
args = ["--dataset", "homography", "--data_dir", samples, "--model", "ResUNetBN2F", "--model_n_out", "32",
        "--crop_size", str(crop), "--num_hn_samples_per_batch", "40000", "--num_pos_per_batch", "1024",
        "--batch_size", "1", "--device", "cpu", "--out_dir", "/tmp/ucn-bench-unused", "--optimizer", "adam"]
if precision != "default":
    args += ["--precision", precision]
trainer = Trainer(parse_args(args), DistContext(device=torch.device("cpu")), build_data=False)
ds = HomographyDataset([samples], HomographyParams(crop_size=crop), seed=0)
batches = [collate_pairs([ds[(1, i)]]) for i in range(2 + steps)]
gen = torch.Generator().manual_seed(0)
for b in batches[:2]:
    trainer.train_step([b], gen)
t = time.perf_counter()
for b in batches[2:]:
    trainer.train_step([b], gen)
print(json.dumps({"pairs_per_s": steps / (time.perf_counter() - t), "threads": torch.get_num_threads()}))
"""


def pairs_per_s(checkout: Path, crop: int, precision: str, steps: int, env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", _HARNESS, str(checkout), str(crop), precision, str(steps)],
                         capture_output=True, text=True, env=env, cwd=checkout)
    if out.returncode != 0:
        raise RuntimeError(f"{checkout} ({precision}, {crop} px) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["pairs_per_s"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", default=DEFAULT_BEFORE, help=f"git revision of the earlier trainer (default {DEFAULT_BEFORE})")
    p.add_argument("--crops", type=int, nargs="+", default=[160, 256])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=16, help="timed iterations per run (after 2 warm-up ones)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: the physical cores, as configure_threads picks)")
    args = p.parse_args()

    sys.path.insert(0, str(REPO))
    from ucn_gui.core.threads import physical_cores

    threads = args.threads or physical_cores()
    # The old trainer predates configure_threads: give both the same threads and OpenMP wait policy.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "UCN_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    configs = [("before", "default"), ("now", "fp32"), ("now", "auto")]
    results: dict[tuple[int, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ucn-before-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(before), args.before], check=True)
        try:
            for r in range(args.rounds):
                for crop in args.crops:
                    for which, precision in configs:
                        checkout = before if which == "before" else REPO
                        v = pairs_per_s(checkout, crop, precision, args.steps, env)
                        results.setdefault((crop, which, precision), []).append(v)
                        print(f"  round {r + 1}: {which} {precision}, {crop} px: {v:.2f} pairs/s", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)

    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.before], capture_output=True, text=True).stdout.strip()
    print(f"\nTraining pairs/s, {threads} CPU threads, {args.steps} steps per run, {args.rounds} rounds "
          f"(before: {args.before} = {rev}, its fp32 trainer; now: this checkout) — {time.strftime('%Y-%m-%d')}")
    print("| crop | trainer | precision | pairs/s, each round | median | vs before |")
    print("|---|---|---|---|---|---|")
    for crop in args.crops:
        base = statistics.median(results[(crop, "before", "default")])
        for which, precision in configs:
            vals = results[(crop, which, precision)]
            med = statistics.median(vals)
            label = "fp32" if precision == "default" else precision
            print(f"| {crop} | {which} | {label} | {' / '.join(f'{v:.2f}' for v in vals)} | {med:.2f} | {med / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
