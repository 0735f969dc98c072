"""Shared fixtures: real photos from tests/data and resources/samples, tiny models made here."""
from __future__ import annotations

import http.server
import threading
from collections import OrderedDict
from pathlib import Path

from ucn_gui.core.threads import configure_threads

configure_threads()  # as every entry point does, before torch loads: passive OpenMP waits

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SAMPLES = ROOT / "resources" / "samples"


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


class ModelServer(http.server.ThreadingHTTPServer):
    payload: bytes = b""
    truncate_at: int | None = None  # send only this many bytes (then close), once
    honour_range: bool = True
    requests: list


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv: ModelServer = self.server  # type: ignore[assignment]
        srv.requests.append(self.headers.get("Range"))
        data, start = srv.payload, 0
        rng = self.headers.get("Range")
        if rng and srv.honour_range:
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.truncate_at is not None:
            self.wfile.write(body[: srv.truncate_at])
            srv.truncate_at = None
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = ModelServer(("127.0.0.1", 0), _Handler)
    srv.requests = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def open_ucn_style_bytes(tmp_path: Path, arch: str = "ResUNetBN2D2", n_out: int = 64) -> bytes:
    """A checkpoint in open-ucn's layout (state_dict + config), as bytes to serve."""
    from ucn_gui.core.model import build_model

    path = tmp_path / "served.pth"
    model = build_model(arch, n_out)
    torch.save({"state_dict": OrderedDict(model.state_dict()), "config": {"model": arch, "model_n_out": n_out}, "epoch": 100}, path)
    return path.read_bytes()
