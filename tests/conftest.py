"""Shared fixtures: real photos from tests/data and resources/samples, tiny models made here."""
from __future__ import annotations

import threading
from pathlib import Path

from ucn_gui.core.threads import configure_threads

configure_threads()  # as every entry point does, before torch loads: passive OpenMP waits

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import DATA, SAMPLES, ModelHandler, ModelServer  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Tiny workloads on a shared 2-core machine: one torch thread avoids OpenMP waiting on a busy core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


@pytest.fixture
def server():
    srv = ModelServer(("127.0.0.1", 0), ModelHandler)
    srv.requests = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
