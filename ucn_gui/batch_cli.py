"""``ucn-match --pairs ...``: match a list of pairs into a folder, then export for reconstruction.

    ucn-match --pairs pairs.txt --image-dir images/ --output-dir out/
    ucn-match --pairs exhaustive --image-dir images/ --output-dir out/ --colmap out/database.db --reconstruct out/sparse
    ucn-match --pairs sequential:5 --image-dir frames/ --output-dir out/ --h5 out/matches.h5

Exit codes: 0 every pair matched (now or by an earlier run); 1 the run finished but skipped
pairs of images that could not be used (named on stderr, counted in the summary); 2 a
mistake in the command (one line naming the option or file, nothing matched); 130
interrupted (run the same command again to continue).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .core.threads import thread_count

CACHE_MB_DEFAULT = 2048
# Options of the two-image form that a batch run does not take.
_TWO_IMAGE_ONLY = (("output", "-o"), ("viz", "--viz"), ("query_points", "--query-points"))
_BATCH_ONLY = (("image_dir", "--image-dir"), ("output_dir", "--output-dir"), ("colmap", "--colmap"), ("h5", "--h5"),
               ("reconstruct", "--reconstruct"))


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    from .core.colmap_export import CAMERA_MODELS

    g = p.add_argument_group("batch matching (instead of IMAGE0 IMAGE1)")
    g.add_argument("--pairs", metavar="FILE|exhaustive|sequential:K",
                   help="a pairs file (one 'name0 name1' per line, names relative to --image-dir), every pair of "
                        "the folder's images, or each image with the next K (sorted by name)")
    g.add_argument("--image-dir", type=Path, metavar="DIR", help="the images the pairs name")
    g.add_argument("--output-dir", type=Path, metavar="DIR",
                   help="one matches file per pair (DIR/matches/); a stopped run continues where it stopped")
    g.add_argument("--colmap", type=Path, metavar="DATABASE.db",
                   help="write a COLMAP database (cameras, keypoints, matches, two-view geometries); needs the sfm extra")
    g.add_argument("--h5", type=Path, metavar="FILE.h5", help="write keypoints and matches in hloc's HDF5 layout")
    g.add_argument("--reconstruct", type=Path, metavar="DIR",
                   help="then run COLMAP's incremental mapping into DIR (database: --colmap, else DIR/../database.db)")
    g.add_argument("--camera-model", choices=CAMERA_MODELS, default="SIMPLE_RADIAL", help="COLMAP camera model (default SIMPLE_RADIAL)")
    from .cli_common import _int_at_least

    g.add_argument("--cache-mb", type=_int_at_least(0), default=CACHE_MB_DEFAULT, metavar="MB",
                   help=f"memory for image features kept between pairs (default {CACHE_MB_DEFAULT})")


def check_two_image_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The two-image form: both images and -o, none of the batch options (argparse's one-line errors)."""
    if args.image0 is None or args.image1 is None:
        parser.error("two images (IMAGE0 IMAGE1) or --pairs are required")
    if args.output is None:
        parser.error("the following arguments are required: -o/--output")
    for attr, flag in _BATCH_ONLY:
        if getattr(args, attr) is not None:
            parser.error(f"{flag} goes with --pairs (a batch run); two images write -o")


def _fail(msg: str) -> int:
    print(f"ucn-match: error: {msg}", file=sys.stderr)
    return 2


def _check_arguments(args: argparse.Namespace) -> str | None:
    """The first mistake in a batch command line, or None."""
    if args.image0 is not None:
        return "--pairs matches the pairs it lists; give no IMAGE0 IMAGE1 with it"
    for attr, flag in _TWO_IMAGE_ONLY:
        if getattr(args, attr) is not None:
            return f"{flag} is for two images; a batch run writes one file per pair into --output-dir"
    if args.image_dir is None:
        return "--pairs needs --image-dir DIR (the folder the pairs' names are relative to)"
    if not args.image_dir.is_dir():
        return f"--image-dir {args.image_dir}: not a folder"
    if args.output_dir is None:
        return "--pairs needs --output-dir DIR (where the matches go)"
    if args.output_dir.exists() and not args.output_dir.is_dir():
        return f"--output-dir {args.output_dir} is a file; name a folder"
    if args.reconstruct is not None and args.reconstruct.exists() and not args.reconstruct.is_dir():
        return f"--reconstruct {args.reconstruct} is a file; name a folder"
    for flag, path, suffixes in (("--colmap", args.colmap, (".db",)), ("--h5", args.h5, (".h5", ".hdf5"))):
        if path is not None and path.suffix.lower() not in suffixes:
            return f"{flag} {path}: must end in {' or '.join(suffixes)}"
    return None


def run_batch(args: argparse.Namespace) -> int:
    from . import cli_common
    from .core.batch import BatchConfig, BatchRunner, BatchSettingsError, check_manifest, file_sha256
    from .core.checkpoint import CheckpointError, ModelOutputError, load_model
    from .core.colmap_export import MissingExtra, import_pycolmap
    from .core.files import OutputPathError, check_output_paths
    from .core.filters import default_filters
    from .core.hloc_export import import_h5py
    from .core.pairs import PairsError, is_generator, pairs_from_spec
    from .core.zoo import DownloadError, ModelNotFound

    # Everything the user can get wrong is checked before any work starts.
    mistake = _check_arguments(args)
    if mistake:
        return _fail(mistake)
    database = args.colmap
    if args.reconstruct is not None and database is None:
        database = args.reconstruct.parent / "database.db"
    try:
        if database is not None:
            import_pycolmap()
        if args.h5 is not None:
            import_h5py()
    except MissingExtra as exc:
        flag = "--h5" if "h5py" in str(exc) else ("--colmap" if args.colmap else "--reconstruct")
        return _fail(f"{flag}: {exc}")
    inputs = {"--pairs": None if is_generator(args.pairs) else Path(args.pairs),
              **cli_common._weights_inputs(args.weights)}
    try:
        check_output_paths({"--colmap": database, "--h5": args.h5}, inputs)
    except OutputPathError as exc:
        return _fail(str(exc))
    try:
        pair_list = pairs_from_spec(args.pairs, args.image_dir, exclude=args.output_dir)
    except PairsError as exc:
        return _fail(str(exc))
    try:
        weights, device, precision = cli_common.resolve_run(args)
        loaded = load_model(weights, device)
    except (ModelNotFound, DownloadError, CheckpointError, RuntimeError, OSError, ValueError, cli_common.NoDefaultModel) as exc:
        return _fail(str(exc))
    try:
        filters = cli_common.filters_from_args(args, loaded.card)
    except ValueError as exc:
        return _fail(f"model card of {weights}: default_filters: {exc}")
    options = cli_common.match_options(args)
    # What the matches depend on: a later run into the same folder must agree (see core.batch).
    settings = {
        "weights_sha256": file_sha256(weights), "architecture": loaded.arch, "n_out": loaded.n_out,
        "precision": precision, "max_size": args.max_size, **cli_common.match_settings(args),
        **{f"filter_{k}": v for k, v in filters.to_dict().items()},
        **({"align": True} if args.align else {}),  # only when on, so batches begun before --align existed continue
    }
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        check_manifest(args.output_dir, settings)
    except BatchSettingsError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"--output-dir {args.output_dir}: {exc}")
    if pair_list.duplicates:
        print(f"ucn-match: {pair_list.duplicates} pair(s) listed twice in {pair_list.source} were matched once "
              f"(the first repeat: line {pair_list.first_duplicate_line})", file=sys.stderr)

    config = BatchConfig(max_size=args.max_size, device=device, precision=precision, options=options, filters=filters,
                         cache_bytes=args.cache_mb << 20, align=default_filters(loaded.card) if args.align else None)
    runner = BatchRunner(loaded.model, args.image_dir, args.output_dir, config, {**settings, "weights": str(weights)})
    try:
        summary = _run_with_progress(runner, pair_list.pairs, args.quiet)
    except ModelOutputError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print(f"\nucn-match: interrupted; the pairs matched so far are saved in {args.output_dir}; "
              "run the same command again to continue", file=sys.stderr)
        return 130
    except OSError as exc:
        return _fail(f"cannot write into --output-dir {args.output_dir}: {exc}")
    from .core.pairs import write_pairs_file

    write_pairs_file(args.output_dir / "pairs.txt", pair_list.pairs)
    if not args.quiet:
        print(_summary_line(summary, args.output_dir))
    bad = set(summary.bad_images)
    usable = [p for p in pair_list.pairs if not (set(p) & bad)]
    try:
        rc = _export(args, usable, database, runner.out_dir)
    except (ValueError, OSError, RuntimeError) as exc:
        return _fail(str(exc))
    return rc or (1 if summary.skipped else 0)


def _run_with_progress(runner, pairs, quiet: bool):
    """runner.run with a tqdm bar on stderr: pairs done, rate, time left."""
    from tqdm import tqdm

    from .core.batch import Events, done_pairs

    todo = len(pairs) - len(done_pairs(runner.out_dir, pairs))
    with tqdm(total=todo, unit="pair", desc="matching", file=sys.stderr, disable=quiet or todo == 0, dynamic_ncols=True) as bar:
        def pair_done(pair, status, kept):
            bar.update(1)

        def bad_image(name, reason):
            tqdm.write(f"ucn-match: warning: skipping the pairs of {name}: {reason}", file=sys.stderr)

        return runner.run(pairs, Events(pair_done=pair_done, bad_image=bad_image))


def _summary_line(s, out_dir: Path) -> str:
    parts = [f"{s.pairs} pairs: {s.matched} matched ({s.kept:,} matches kept)"]
    if s.already_done:
        parts.append(f"{s.already_done} done by an earlier run")
    if s.skipped:
        names = ", ".join(sorted(s.bad_images))
        parts.append(f"{s.skipped} skipped for {len(s.bad_images)} bad image(s) ({names})")
    return (", ".join(parts) + f" in {s.seconds:.1f} s; features computed {s.cache.misses} times, "
            f"reused {s.cache.hits} times -> {out_dir}")


def _export(args: argparse.Namespace, pairs, database: Path | None, out_dir: Path) -> int:
    """--h5, --colmap and --reconstruct from the stored results of ``pairs``."""
    if database is None and args.h5 is None:
        return 0
    from .core.batch import load_result
    from .core.tracks import merge

    merged = merge(load_result(out_dir, p) for p in pairs)
    n_kp = sum(len(k) for k in merged.keypoints.values())
    if args.h5 is not None:
        from .core.hloc_export import write_h5

        write_h5(args.h5, merged)
        if not args.quiet:
            print(f"hloc: {len(merged.keypoints)} images, {n_kp:,} keypoints, {len(merged.matches)} pairs -> {args.h5}")
    if database is None:
        return 0
    from .core.colmap_export import write_database

    db = write_database(database, merged, args.image_dir, args.camera_model, threads=thread_count())
    if not args.quiet:
        print(f"colmap: {db.images} images ({db.exif_focals} with an EXIF focal length), {db.keypoints:,} keypoints, "
              f"{db.matches:,} matches in {db.matched_pairs} pairs; {db.verified_pairs} pairs verified "
              f"({db.inlier_matches:,} inlier matches) -> {database}")
    if args.reconstruct is None:
        return 0
    from .core.sfm import reconstruct

    stats, _ = reconstruct(database, args.image_dir, args.reconstruct, threads=thread_count(), seed=args.seed)
    if not stats:
        print(f"ucn-match: reconstruction: COLMAP registered no image pair (too few verified matches); "
              f"nothing written to {args.reconstruct}", file=sys.stderr)
        return 1
    for m in stats:
        print(f"reconstruction {m.line()}")
    return 0
