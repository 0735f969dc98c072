"""``ucn-match``: match two images from the command line.

    ucn-match a.jpg b.jpg -o matches.npz --max-size 640 --viz matches.png
    ucn-match a.jpg b.jpg -o m.npz --max-size 640 --precision fp32 --timing
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Only light imports up here: main() sets the thread policy before torch is loaded.
from . import package_version
from .core.devices import ACCEPTED, DeviceNameError, check_device_name
from .core.threads import configure_threads


def build_parser() -> argparse.ArgumentParser:
    from .core.export import MATCH_FORMATS
    from .core.keypoints import KEYPOINT_MODES
    from .core.precision import PRECISIONS

    p = argparse.ArgumentParser(prog="ucn-match", description="Dense UCN correspondences between two images.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    p.add_argument("image0", type=Path)
    p.add_argument("image1", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help=f"matches file ({', '.join(MATCH_FORMATS)})")
    p.add_argument("--weights", help="weights file or zoo name, e.g. open-ucn-yfcc (downloaded on first use); default: the bundled model")
    p.add_argument("--device", default="auto", help=f"{' | '.join(ACCEPTED)} (default: auto, CUDA when available)")
    p.add_argument("--max-size", type=int, default=None, metavar="PX", help="run the network on a copy at most PX on its long side")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="network precision (default auto: bf16 where the CPU or GPU runs it natively, else fp32); "
                        "the search is exact either way")
    p.add_argument("--keypoints", choices=KEYPOINT_MODES, default="sift")
    p.add_argument("--max-keypoints", type=int, default=2000, help="SIFT query points (default 2000)")
    p.add_argument("--grid-stride", type=int, default=8, metavar="PX")
    p.add_argument("--query-points", type=Path, help="text file, one 'x y' per line (original pixels of image 0)")
    p.add_argument("--reciprocity", type=float, default=4.0, metavar="PX", help="max reciprocity error (default 4; <0 disables)")
    p.add_argument("--stability", type=float, default=4.0, metavar="PX", help="max stability error (default 4; <0 disables)")
    p.add_argument("--stability-mode", choices=("diagonal", "all8"), default="diagonal")
    p.add_argument("--max-ratio", type=float, default=None, help="max nearest/second-nearest distance ratio")
    p.add_argument("--ransac", choices=("homography", "fundamental"), default=None)
    p.add_argument("--ransac-threshold", type=float, default=3.0, metavar="PX")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--viz", type=Path, help="write a PNG of the kept matches")
    p.add_argument("--viz-lines", action="store_true", help="draw lines in the PNG too")
    p.add_argument("--timing", action="store_true", help="print one line of stage times on stderr")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def _download_bar():
    """A tqdm bar driven by the zoo's (done, total) progress callback."""
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int | None) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="B", unit_scale=True, desc="downloading model", file=sys.stderr)
        bar["bar"].update(done - bar["bar"].n)

    return update


def _fail(msg: str) -> int:
    print(f"ucn-match: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    configure_threads()  # before the imports below load torch
    from .core import resources
    from .core.checkpoint import CheckpointError, load_model
    from .core.devices import choose_device
    from .core.export import MATCH_FORMATS, draw_matches, save_matches, save_png
    from .core.filters import FilterSettings, apply_filters
    from .core.image import DISPLAY_SIDE, ImageLoadError, load_image
    from .core.keypoints import read_points_file
    from .core.matching import MatchOptions, PairFeatures, match
    from .core.precision import choose_precision
    from .core.zoo import DownloadError, ModelNotFound, default_model_path, resolve

    args = build_parser().parse_args(argv)
    if args.output.suffix.lower() not in MATCH_FORMATS:
        return _fail(f"{args.output}: output must end in {', '.join(MATCH_FORMATS)}")
    try:
        check_device_name(args.device)
    except DeviceNameError as exc:
        return _fail(f"--device: {exc}")
    try:
        weights = resolve(args.weights, download_if_missing=True, progress=_download_bar()) if args.weights else default_model_path()
        if weights is None:
            return _fail(f"no bundled default model in {resources.models_dir()}; pass --weights FILE")
        device, notice = choose_device(args.device)
        if notice:
            print(f"ucn-match: {notice}", file=sys.stderr)
        precision, notice = choose_precision(args.precision, device)
        if notice:
            print(f"ucn-match: {notice}", file=sys.stderr)
        t0 = time.perf_counter()
        loaded = load_model(weights, device)
        t_model = time.perf_counter() - t0
        t = time.perf_counter()
        # With --max-size, a huge photo is decoded reduced (coordinates stay in its own pixels).
        keep = DISPLAY_SIDE if args.max_size else None
        img0 = load_image(args.image0, args.max_size, keep)
        img1 = load_image(args.image1, args.max_size, keep)
        t_decode = time.perf_counter() - t
        points0 = read_points_file(str(args.query_points)) if args.query_points else None
    except (ModelNotFound, DownloadError, CheckpointError, ImageLoadError, RuntimeError) as exc:
        return _fail(str(exc))
    except (OSError, ValueError) as exc:
        return _fail(str(exc))

    options = MatchOptions(keypoints=args.keypoints, max_keypoints=args.max_keypoints, grid_stride=args.grid_stride,
                           stability=args.stability_mode, seed=args.seed)
    filters = FilterSettings(
        reciprocity=args.reciprocity if args.reciprocity >= 0 else None,
        stability=args.stability if args.stability >= 0 else None,
        max_ratio=args.max_ratio, ransac=args.ransac, ransac_threshold=args.ransac_threshold,
    )
    t = time.perf_counter()
    pair = PairFeatures.compute(loaded.model, img0, img1, device, precision=precision)
    matches = match(pair, options, points0)
    t_filter = time.perf_counter()
    mask = apply_filters(matches, filters)
    t_end = time.perf_counter()
    elapsed = t_end - t
    if args.timing:
        tm = matches.timings
        print(f"timing: decode {t_decode:.3f} s, model {t_model:.3f} s, features {tm['features0'] + tm['features1']:.3f} s, "
              f"query points {tm['keypoints']:.3f} s, search {tm['forward']:.3f} s, tests {tm['backward']:.3f} s, "
              f"filters {t_end - t_filter:.3f} s, total {t_end - t0:.3f} s ({precision} on {device})", file=sys.stderr)
    settings = {
        "image0": str(args.image0), "image1": str(args.image1), "weights": str(weights),
        "architecture": loaded.arch, "n_out": loaded.n_out, "device": str(device), "precision": precision,
        "max_size": args.max_size,
        "keypoints": "given" if points0 is not None else args.keypoints, "max_keypoints": args.max_keypoints,
        "grid_stride": args.grid_stride, "stability_mode": args.stability_mode, "seed": args.seed,
        **{f"filter_{k}": v for k, v in filters.to_dict().items()},
    }
    try:
        save_matches(args.output, matches, mask, settings)
        if args.viz:
            kp0, kp1 = img0.to_rgb(matches.keypoints0[mask]), img1.to_rgb(matches.keypoints1[mask])
            save_png(args.viz, draw_matches(img0.rgb, img1.rgb, kp0, kp1, args.viz_lines))
    except OSError as exc:
        return _fail(f"cannot write output: {exc}")
    if not args.quiet:
        print(f"{int(mask.sum())} of {len(matches)} matches kept ({elapsed:.2f} s on {device}) -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
