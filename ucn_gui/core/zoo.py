"""The model registry: bundled weights, downloadable ones, and user files.

    path = resolve("default")        # bundled model -> Path
    path = resolve("my/weights.pth") # any file -> Path
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
MODELS_DIR = RESOURCES / "models"
DEFAULT_MODEL_NAME = "default"


class ModelNotFound(Exception):
    """A model name or path that names nothing usable."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    path: Path | None  # None: not on disk (yet)
    downloadable: bool = False


def bundled_models() -> list[ModelEntry]:
    """Every ``resources/models/*.safetensors``; the one named 'default' first."""
    if not MODELS_DIR.is_dir():
        return []
    entries = [ModelEntry(p.stem, f"bundled ({p.name})", p) for p in sorted(MODELS_DIR.glob("*.safetensors"))]
    return sorted(entries, key=lambda e: e.name != DEFAULT_MODEL_NAME)


def list_models() -> list[ModelEntry]:
    return bundled_models()


def default_model_path() -> Path | None:
    """The bundled default model, or None while none is bundled."""
    for entry in bundled_models():
        if entry.name == DEFAULT_MODEL_NAME:
            return entry.path
    return None


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A zoo name or a file path -> a path on disk; ModelNotFound otherwise."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for entry in list_models():
        if entry.name == str(name_or_path) and entry.path is not None:
            return entry.path
    known = ", ".join(e.name for e in list_models()) or "none bundled"
    raise ModelNotFound(f"{name_or_path}: no such file, and not a model name (known: {known})")
