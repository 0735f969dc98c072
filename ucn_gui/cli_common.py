"""What both forms of ``ucn-match`` (two images in cli, a pairs list in batch_cli) parse and report alike."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.filters import FilterSettings
    from .core.settings import MatchOptions


class _Parser(argparse.ArgumentParser):
    """An option error is one line, ``ucn-match: error: ...`` (exit code 2), not the whole usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(low: int, why: str = ""):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}{why}, got {value}")
        return value

    return parse


def _download_bar():
    """A tqdm bar driven by the zoo's (done, total) progress callback."""
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int | None) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="B", unit_scale=True, desc="downloading model", file=sys.stderr)
        bar["bar"].update(done - bar["bar"].n)

    return update


class NoDefaultModel(Exception):
    """No --weights given and no bundled model installed."""


def resolve_run(args: argparse.Namespace) -> tuple[Path, Any, str]:
    """(weights file, torch device, precision) for --weights, --device and --precision; a
    fallback (no CUDA, no native bf16) is said on stderr. Downloads a zoo model on first use;
    raises the zoo's errors, or NoDefaultModel."""
    from .core import resources
    from .core.devices import choose_device
    from .core.precision import choose_precision
    from .core.zoo import default_model_path, resolve

    weights = resolve(args.weights, download_if_missing=True, progress=_download_bar()) if args.weights else default_model_path()
    if weights is None:
        raise NoDefaultModel(f"no bundled default model in {resources.models_dir()}; pass --weights FILE")
    device, notice = choose_device(args.device)
    if notice:
        print(f"ucn-match: {notice}", file=sys.stderr)
    precision, notice = choose_precision(args.precision, device)
    if notice:
        print(f"ucn-match: {notice}", file=sys.stderr)
    return Path(weights), device, precision


def _weights_inputs(weights: str | None) -> dict[str, Path]:
    """The files a --weights value reads (the file or the zoo's cache path, and its model card)."""
    from .core.checkpoint import card_path
    from .core.zoo import default_model_path, find

    path: Path | None
    if weights is None:
        path = default_model_path()
    elif Path(weights).is_file():
        path = Path(weights)
    else:
        entry = find(weights)
        path = entry.path if entry is not None else None
    return {} if path is None else {"--weights": path, "the model card": card_path(path)}


def filters_from_args(args: argparse.Namespace, card: dict) -> FilterSettings:
    """The thresholds of a run: the user's options, else the model card's (chosen on its validation
    pairs); a negative option value switches that test off. ValueError for a malformed card."""
    from .core.filters import FilterSettings, default_filters

    defaults = default_filters(card)

    def given(value: float | None, fallback: float | None) -> float | None:
        return fallback if value is None else (value if value >= 0 else None)

    return FilterSettings(
        reciprocity=given(args.reciprocity, defaults.reciprocity), stability=given(args.stability, defaults.stability),
        max_ratio=given(args.max_ratio, defaults.max_ratio), max_distance=defaults.max_distance,
        ransac=args.ransac, ransac_threshold=args.ransac_threshold,
    )


def match_options(args: argparse.Namespace) -> MatchOptions:
    """How query points are chosen and scored, from the options both forms share."""
    from .core.settings import MatchOptions

    return MatchOptions(keypoints=args.keypoints, max_keypoints=args.max_keypoints, grid_stride=args.grid_stride,
                        stability=args.stability_mode, seed=args.seed, subpixel=args.subpixel, min_texture=args.min_texture)


def match_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The same options as :func:`match_options`, under the names an output file's settings record them.

    The texture level only where it chose query points (grid, every pixel), so a SIFT batch begun
    before the level existed still continues (core.batch compares these settings)."""
    from .core.settings import TEXTURE_GATED_MODES

    dense = {"min_texture": args.min_texture} if args.keypoints in TEXTURE_GATED_MODES else {}
    return {"keypoints": args.keypoints, "max_keypoints": args.max_keypoints, "grid_stride": args.grid_stride,
            **dense, "stability_mode": args.stability_mode, "seed": args.seed, "subpixel": args.subpixel}
