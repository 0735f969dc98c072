"""``ucn-match``: match two images, or a list of pairs (see batch_cli), from the command line.

    ucn-match a.jpg b.jpg -o matches.npz --max-size 640 --viz matches.png
    ucn-match a.jpg b.jpg -o m.npz --max-size 640 --precision fp32 --timing
    ucn-match --pairs pairs.txt --image-dir images/ --output-dir out/ --colmap out/database.db --reconstruct out/sparse
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

# Only light imports up here: main() sets the thread policy before torch is loaded.
from . import package_version
from .core.devices import ACCEPTED, DeviceNameError, check_device_name
from .core.threads import configure_threads
from .cli_common import (
    NoDefaultModel, _int_at_least, _Parser, _weights_inputs, filters_from_args, match_options, match_settings, resolve_run,
)


# The smallest --max-size: the network halves the image three times on the way down, and
# below this a photo is a few dozen pixels, matched "confidently" at one or two of them.
MIN_MAX_SIZE = 32


def _number(text: str) -> float:
    """A float that is not NaN (NaN compares false with everything: a NaN threshold would switch a test off)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return value


def _positive_number(text: str) -> float:
    value = _number(text)
    if not (0 < value < math.inf):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _non_negative_number(text: str) -> float:
    value = _number(text)
    if not (0 <= value < math.inf):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def _device(text: str) -> str:
    try:
        return check_device_name(text)
    except DeviceNameError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shown(value: float | None) -> str:
    return "off" if value is None else f"{value:g}"


def build_parser() -> argparse.ArgumentParser:
    from .core.drawing import PICTURE_FORMATS
    from .core.match_files import MATCH_FORMATS
    from .core.keypoints import KEYPOINT_MODES
    from .core.precision import PRECISIONS
    from .core.settings import RANSAC_MODELS, FilterSettings, MatchOptions

    opts, filters = MatchOptions(), FilterSettings()  # every default below comes from these
    p = _Parser(prog="ucn-match", description="Dense UCN correspondences between two images, or over a list of pairs (--pairs).")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    p.add_argument("image0", type=Path, nargs="?")
    p.add_argument("image1", type=Path, nargs="?")
    p.add_argument("-o", "--output", type=Path, help=f"matches file ({', '.join(MATCH_FORMATS)}); required for two images")
    p.add_argument("--weights", help="weights file or zoo name, e.g. open-ucn-yfcc (downloaded on first use); default: the bundled model")
    p.add_argument("--device", default="auto", type=_device, help=f"{' | '.join(ACCEPTED)} (default: auto, CUDA when available)")
    p.add_argument("--max-size", type=_int_at_least(MIN_MAX_SIZE, " (the network's smallest useful input)"), default=None,
                   metavar="PX", help=f"run the network on a copy at most PX on its long side (at least {MIN_MAX_SIZE})")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="network precision (default auto: bf16 where the CPU or GPU runs it natively, else fp32); "
                        "the search is exact either way")
    p.add_argument("--keypoints", choices=KEYPOINT_MODES, default=opts.keypoints)
    p.add_argument("--max-keypoints", type=_int_at_least(1), default=opts.max_keypoints,
                   help=f"SIFT query points (default {opts.max_keypoints})")
    p.add_argument("--grid-stride", type=_int_at_least(1), default=opts.grid_stride, metavar="PX")
    p.add_argument("--min-texture", type=_non_negative_number, default=opts.min_texture, metavar="T",
                   help=f"grid and every-pixel queries skip flat pixels, whose texture (the smaller eigenvalue of the "
                        f"5x5 structure tensor, grey in [0, 1]) is below T (default {opts.min_texture:g}; 0 queries every point)")
    p.add_argument("--query-points", type=Path, help="text file, one 'x y' per line (original pixels of image 0)")
    p.add_argument("--reciprocity", type=_number, default=None, metavar="PX",
                   help=f"max reciprocity error in pixels at the network's resolution, i.e. of the --max-size copy "
                        f"(original pixels without --max-size), so a threshold means the same on any photo size "
                        f"(default: the model card's default_filters, else {_shown(filters.reciprocity)}; <0 disables)")
    p.add_argument("--stability", type=_number, default=None, metavar="PX",
                   help=f"max stability error, same unit as --reciprocity "
                        f"(default: the model card's, else {_shown(filters.stability)}; <0 disables)")
    p.add_argument("--stability-mode", choices=("diagonal", "all8"), default=opts.stability)
    p.add_argument("--no-subpixel", dest="subpixel", action="store_false",
                   help="report each match at the best pixel of image 1 instead of refining it between pixels")
    p.add_argument("--max-ratio", type=_number, default=None,
                   help=f"max nearest/second-nearest distance ratio (default: the model card's, else {_shown(filters.max_ratio)}; "
                        "<0 disables)")
    p.add_argument("--ransac", choices=RANSAC_MODELS, default=filters.ransac)
    p.add_argument("--ransac-threshold", type=_positive_number, default=filters.ransac_threshold, metavar="PX",
                   help=f"RANSAC inlier threshold, same unit as --reciprocity (default {filters.ransac_threshold:g})")
    p.add_argument("--seed", type=_int_at_least(0), default=opts.seed)
    p.add_argument("--align", action="store_true",
                   help="match again with image 1 warped by a homography fitted to the kept matches, and keep the pass "
                        "that keeps more (about twice the time; far more matches on turned or zoomed photos)")
    p.add_argument("--viz", type=Path, help=f"write a picture of the kept matches ({', '.join(PICTURE_FORMATS)})")
    p.add_argument("--viz-lines", action="store_true", help="draw lines in the picture too")
    p.add_argument("--timing", action="store_true", help="print one line of stage times on stderr")
    p.add_argument("-q", "--quiet", action="store_true")
    from .batch_cli import add_batch_arguments

    add_batch_arguments(p)
    return p


def _fail(msg: str) -> int:
    print(f"ucn-match: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    configure_threads()  # before the imports below load torch
    from .core.alignment import match_aligned
    from .core.checkpoint import CheckpointError, ModelOutputError, load_model
    from .core.drawing import PICTURE_FORMATS, draw_matches, save_picture
    from .core.files import OutputPathError, check_output_paths
    from .core.match_files import MATCH_FORMATS, save_matches
    from .core.filters import apply_filters, default_filters
    from .core.image import DISPLAY_SIDE, ImageLoadError, check_min_size, load_image
    from .core.keypoints import QueryPointsError, check_query_points, read_points_file
    from .core.matching import match_images
    from .core.zoo import DownloadError, ModelNotFound

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pairs is not None:
        from .batch_cli import run_batch

        return run_batch(args)
    from .batch_cli import check_two_image_arguments

    check_two_image_arguments(parser, args)
    # Everything the user can get wrong is checked before any work starts.
    if args.output.suffix.lower() not in MATCH_FORMATS:
        return _fail(f"-o {args.output}: output must end in {', '.join(MATCH_FORMATS)}")
    inputs = {"image0": args.image0, "image1": args.image1, "--query-points": args.query_points, **_weights_inputs(args.weights)}
    try:
        check_output_paths({"-o": args.output, "--viz": args.viz}, inputs)
    except OutputPathError as exc:
        return _fail(str(exc))
    if args.viz is not None and args.viz.suffix.lower() not in PICTURE_FORMATS:
        return _fail(f"--viz {args.viz}: a picture must end in {', '.join(PICTURE_FORMATS)}")
    try:
        weights, device, precision = resolve_run(args)
        t0 = time.perf_counter()
        loaded = load_model(weights, device)
        t_model = time.perf_counter() - t0
        t = time.perf_counter()
        # With --max-size, a huge photo is decoded reduced (coordinates stay in its own pixels).
        keep = DISPLAY_SIDE if args.max_size else None
        img0 = load_image(args.image0, args.max_size, keep)
        img1 = load_image(args.image1, args.max_size, keep)
        for given, img in ((args.image0, img0), (args.image1, img1)):
            check_min_size(given, img.original_size)
        t_decode = time.perf_counter() - t
    except (ModelNotFound, DownloadError, CheckpointError, ImageLoadError, RuntimeError, NoDefaultModel) as exc:
        return _fail(str(exc))
    except (OSError, ValueError) as exc:
        return _fail(str(exc))
    points0, dropped = None, 0
    if args.query_points is not None:
        try:
            given = read_points_file(str(args.query_points))
            if not len(given):
                return _fail(f"--query-points {args.query_points}: the file holds no points")
            points0, notice = check_query_points(given, *img0.original_size, drop=True)
        except (OSError, ValueError) as exc:  # QueryPointsError is a ValueError
            return _fail(f"--query-points {args.query_points}: {exc}")
        if notice:
            dropped = len(given) - len(points0)
            print(f"ucn-match: warning: --query-points {args.query_points}: {notice}", file=sys.stderr)

    options = match_options(args)
    # Thresholds the user did not give come from the model's card: they were chosen on its validation pairs.
    try:
        filters = filters_from_args(args, loaded.card)
    except ValueError as exc:
        return _fail(f"model card of {weights}: default_filters: {exc}")
    t = time.perf_counter()
    try:
        if args.align:
            # The warp is fitted to, and the passes compared by, the card's thresholds (as the window does),
            # whatever thresholds the output file gets.
            _, matches, alignment = match_aligned(loaded.model, img0, img1, options, default_filters(loaded.card), device,
                                                  precision=precision, points0=points0)
        else:
            _, matches = match_images(loaded.model, img0, img1, options, device, points0, precision=precision)
    except (ModelOutputError, QueryPointsError) as exc:
        return _fail(str(exc))
    t_filter = time.perf_counter()
    mask = apply_filters(matches, filters)
    t_end = time.perf_counter()
    elapsed = t_end - t
    if args.timing:
        tm = matches.timings
        print(f"timing: decode {t_decode:.3f} s, model {t_model:.3f} s, features {tm['features0'] + tm['features1'] + tm.get('features1_again', 0.0):.3f} s, "
              f"query points {tm['keypoints']:.3f} s, search {tm['forward']:.3f} s, sub-pixel {tm.get('subpixel', 0.0):.3f} s, "
              f"tests {tm['backward']:.3f} s, "
              + (f"first pass's points, search and tests {tm['first_pass_matching']:.3f} s, " if "first_pass_matching" in tm else "")
              + f"filters {t_end - t_filter:.3f} s, total {t_end - t0:.3f} s ({precision} on {device})", file=sys.stderr)
    settings = {
        "image0": str(args.image0), "image1": str(args.image1), "weights": str(weights),
        "architecture": loaded.arch, "n_out": loaded.n_out, "device": str(device), "precision": precision,
        "max_size": args.max_size, **match_settings(args),
        **({"keypoints": "given"} if points0 is not None else {}),
        **({"query_points_dropped": dropped} if points0 is not None else {}),
        **{f"filter_{k}": v for k, v in filters.to_dict().items()},
    }
    if args.align:
        settings.update(alignment.to_settings())
    try:
        save_matches(args.output, matches, mask, settings)
        if args.viz:
            kp0, kp1 = img0.to_rgb(matches.keypoints0[mask]), img1.to_rgb(matches.keypoints1[mask])
            save_picture(args.viz, draw_matches(img0.rgb, img1.rgb, kp0, kp1, args.viz_lines))
    except OSError as exc:
        return _fail(f"cannot write output: {exc}")
    if not args.quiet:
        print(f"{int(mask.sum())} of {len(matches)} matches kept ({elapsed:.2f} s on {device}) -> {args.output}")
        if args.align:
            print(alignment.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
