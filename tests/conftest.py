"""Shared fixtures: real photos from tests/data and resources/samples, tiny models made here."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SAMPLES = ROOT / "resources" / "samples"


@pytest.fixture(scope="session")
def terrace_pair() -> tuple[Path, Path]:
    return DATA / "terrace0.jpg", DATA / "terrace1.jpg"


@pytest.fixture(scope="session")
def sample_pair() -> tuple[Path, Path]:
    return SAMPLES / "sacre_coeur1.jpg", SAMPLES / "sacre_coeur2.jpg"


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A random-weight ResUNetBN2F (16-dim) saved in our own format."""
    from ucn_gui.core.checkpoint import save_model
    from ucn_gui.core.model import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    return save_model(path, build_model("ResUNetBN2F", 16), {"name": "tiny", "training_data": "none (random)"})
