"""What both forms of ``ucn-match`` (two images in cli, a pairs list in batch_cli) parse and report alike."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
