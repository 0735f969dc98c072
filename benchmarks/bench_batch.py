"""Batch matching against the two-image command called once per pair (issue 15).

    python benchmarks/bench_batch.py                       # 10 images, 45 exhaustive pairs, 256 px
    python benchmarks/bench_batch.py --n 10 --max-size 640

Three ways to match every pair of the first --n images of a scene (default: the held-out
strecha_fountain_p11 in benchmarks/data/posed_val, so nothing outside the repository):

- ``ucn-match --pairs exhaustive`` once (one process; each image's features computed once);
- ``ucn-match A B -o ...`` once per pair, each a new process (a shell loop: every call starts
  Python, loads torch and the model, and runs the network on both images);
- the two-image command's ``main()`` called per pair in one process (what is left of the gap
  once start-up is paid once: the features computed twice per pair).

All with the bundled model and the same options; prints a markdown table and checks that one
pair's matches are identical in the batch and the single-pair outputs.
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCENE = ROOT / "benchmarks/data/posed_val/strecha_fountain_p11/images"


def run(cmd: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=SCENE)
    ap.add_argument("--n", type=int, default=10, help="images (pairs: n (n - 1) / 2)")
    ap.add_argument("--max-size", type=int, default=256)
    ap.add_argument("--skip-processes", action="store_true", help="leave out the one-process-per-pair loop (slowest)")
    args = ap.parse_args()

    names = sorted(p.name for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.n]
    pairs = list(itertools.combinations(names, 2))
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    (tmp / "images").mkdir()
    for n in names:
        shutil.copy(args.images / n, tmp / "images" / n)
    common = ["--max-size", str(args.max_size), "-q"]
    py = [sys.executable, "-m", "ucn_gui.cli"]
    rows = []
    try:
        t_batch = run([*py, "--pairs", "exhaustive", "--image-dir", str(tmp / "images"), "--output-dir", str(tmp / "batch"), *common])
        rows.append(("`ucn-match --pairs exhaustive` (one process)", t_batch))

        from ucn_gui import cli  # here, after the subprocess runs: its import loads torch

        t = time.perf_counter()
        for i, (a, b) in enumerate(pairs):
            assert cli.main([str(tmp / "images" / a), str(tmp / "images" / b), "-o", str(tmp / f"loop{i}.npz"), *common]) == 0
        rows.append((f"two-image `main()` x {len(pairs)}, one process", time.perf_counter() - t))

        if not args.skip_processes:
            t = 0.0
            for i, (a, b) in enumerate(pairs):
                t += run([*py, str(tmp / "images" / a), str(tmp / "images" / b), "-o", str(tmp / f"p{i}.npz"), *common])
            rows.append((f"two-image `ucn-match A B` x {len(pairs)} processes", t))

        import numpy as np

        from ucn_gui.core.batch import result_path
        from ucn_gui.core.match_files import load_matches

        one, two = load_matches(tmp / "loop0.npz"), load_matches(result_path(tmp / "batch", *pairs[0]))
        same = all(np.array_equal(one[c], two[c]) for c in ("keypoints0", "keypoints1", "mask"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{len(names)} images of {args.images.parent.name}, {len(pairs)} exhaustive pairs, --max-size {args.max_size}, "
          f"bundled model, {os.environ.get('OMP_NUM_THREADS') or os.environ.get('UCN_THREADS') or 'default'} threads; "
          f"first pair identical in batch and two-image output: {same}\n")
    print("| how | seconds | per pair | batch is faster by |")
    print("|---|---|---|---|")
    for how, sec in rows:
        print(f"| {how} | {sec:.1f} | {sec / len(pairs):.2f} | {sec / t_batch:.1f}x |")


if __name__ == "__main__":
    main()
