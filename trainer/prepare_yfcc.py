"""Turn the raw YFCC100M layout into pair files: ``python -m trainer.prepare_yfcc --source RAW --target PROCESSED``.

Raw layout (the OANet / open-ucn dump), per scene and phase (train, val, test)::

    RAW/<scene>/<phase>/images.txt       image paths, relative to the phase folder
    RAW/<scene>/<phase>/calibration.txt  one HDF5 file per image: K, R, T, imsize
    RAW/<scene>/<phase>/visibility.txt   one text file per image: a row of co-visibility counts

Output: ``PROCESSED/<scene>/<phase>_<i>_<j>.npz`` for every ordered pair whose
visibility exceeds ``--vis_threshold`` (at most ``--num_pair`` per scene and phase),
holding img_path0 / img_path1 (relative to RAW) and calib0 / calib1 (32-float
records, see trainer.geometry) - the same files open-ucn's gen_yfcc writes.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from .geometry import serialize_calibration

log = logging.getLogger("trainer.prepare_yfcc")


def read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_calibration_h5(path: Path) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise SystemExit("reading YFCC calibration needs h5py: pip install h5py (or the project's [train] extra)") from None
    with h5py.File(path, "r") as f:
        return {k: np.asarray(f[k]) for k in ("K", "R", "T", "imsize")}


def prepare_phase(source: Path, phase_dir: Path, out_dir: Path, vis_threshold: float, num_pair: int, rng: np.random.Generator) -> int:
    """Write the pair files of one scene/phase; returns how many."""
    images = read_list(phase_dir / "images.txt")
    calib_files = read_list(phase_dir / "calibration.txt")
    vis_files = read_list(phase_dir / "visibility.txt")
    if not (len(images) == len(calib_files) == len(vis_files)):
        log.warning("%s: images/calibration/visibility lists differ in length; skipped", phase_dir)
        return 0
    calibs: list[np.ndarray | None] = []
    vis: list[np.ndarray | None] = []
    for cf, vf in zip(calib_files, vis_files):
        try:
            calibs.append(serialize_calibration(load_calibration_h5(phase_dir / cf)))
            vis.append(np.loadtxt(phase_dir / vf, ndmin=1).ravel().astype(np.float32))
        except (OSError, KeyError, ValueError) as exc:
            log.warning("%s: unreadable calibration or visibility (%s); its pairs are skipped", phase_dir / cf, exc)
            calibs.append(None)
            vis.append(None)
    n = len(images)
    candidates = [
        (i, j)
        for i in range(n)
        for j in range(n)
        if i != j and calibs[i] is not None and calibs[j] is not None
        and vis[i] is not None and j < len(vis[i]) and vis[i][j] > vis_threshold
    ]
    if len(candidates) > num_pair:
        keep = rng.choice(len(candidates), num_pair, replace=False)
        candidates = [candidates[k] for k in sorted(keep)]
    out_dir.mkdir(parents=True, exist_ok=True)
    phase = phase_dir.name
    for i, j in candidates:
        np.savez(
            out_dir / f"{phase}_{i:06d}_{j:06d}.npz",
            img_path0=np.str_((phase_dir / images[i]).relative_to(source).as_posix()),
            img_path1=np.str_((phase_dir / images[j]).relative_to(source).as_posix()),
            calib0=calibs[i],
            calib1=calibs[j],
        )
    return len(candidates)


def prepare(source: Path, target: Path, vis_threshold: float = 100, num_pair: int = 10000, seed: int = 0) -> int:
    """All scenes and phases under ``source``; returns the number of pair files written."""
    source, target = Path(source), Path(target)
    rng = np.random.default_rng(seed)
    total = 0
    for scene in sorted(p for p in source.iterdir() if p.is_dir()):
        for phase_dir in sorted(p for p in scene.iterdir() if p.is_dir() and (p / "images.txt").is_file()):
            n = prepare_phase(source, phase_dir, target / scene.name, vis_threshold, num_pair, rng)
            log.info("%s/%s: %d pairs", scene.name, phase_dir.name, n)
            total += n
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.prepare_yfcc", description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="raw YFCC100M folder (one folder per scene)")
    parser.add_argument("--target", required=True, help="where to write the pair files")
    parser.add_argument("--num_pair", type=int, default=10000, help="at most this many pairs per scene and phase")
    parser.add_argument("--vis_threshold", type=float, default=100, help="keep pairs whose visibility exceeds this")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    n = prepare(Path(args.source).expanduser(), Path(args.target).expanduser(), args.vis_threshold, args.num_pair, args.seed)
    log.info("%d pair files written to %s", n, args.target)
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
