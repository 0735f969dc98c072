"""Training checkpoints that the app opens directly, written so a killed run never leaves half a file.

A checkpoint is a dict of plain types only (tensors, numbers, strings, lists, dicts),
so ``torch.load(weights_only=True)`` accepts it and ``ucn_gui.core.checkpoint.load_model``
reads ``state_dict`` plus ``config['model']`` / ``config['model_n_out']``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ucn_gui.core.files import atomic_write

LATEST = "checkpoint.pth"
BEST = "best_val_checkpoint.pth"
BEST_EXPORT = "best.safetensors"
FINAL_EXPORT = "final.safetensors"


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_cpu(v) for v in obj]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically torch.save ``state`` (tensors moved to the CPU)."""
    path = Path(path)
    data = _cpu(state)
    atomic_write(path, lambda tmp: torch.save(data, tmp))
    return path


class ResumeError(ValueError):
    """What --resume names cannot be resumed from; the message names the file and why."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint (a folder means its checkpoint.pth); plain types only, never code.

    ResumeError when there is none yet or the file is not a training checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / LATEST).is_file():
            raise ResumeError(f"{path}: no {LATEST} in this folder yet, so there is nothing to resume")
        path = path / LATEST
    if not path.is_file():
        raise ResumeError(f"{path}: no checkpoint to resume from (no such file)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's own message advises unsafe loading: do not pass it on
        raise ResumeError(f"{path}: not a training checkpoint (it does not load as one: {type(exc).__name__})") from None
    if not isinstance(ck, dict):
        raise ResumeError(f"{path}: not a training checkpoint (holds a {type(ck).__name__})")
    for key in ("state_dict", "optimizer", "scheduler", "epoch"):
        if key not in ck:
            raise ResumeError(f"{path}: not a training checkpoint (no {key!r}); use --weights for plain models")
    return ck

