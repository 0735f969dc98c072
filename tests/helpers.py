"""Helpers shared by several test modules (fixtures stay in conftest.py).

    from helpers import DATA, open_ucn_style_bytes
"""
from __future__ import annotations

import http.server
from collections import OrderedDict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SAMPLES = ROOT / "resources" / "samples"


class ModelServer(http.server.ThreadingHTTPServer):
    payload: bytes = b""
    truncate_at: int | None = None  # send only this many bytes (then close), once
    honour_range: bool = True
    requests: list


class ModelHandler(http.server.BaseHTTPRequestHandler):
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


def open_ucn_style_bytes(tmp_path: Path, arch: str = "ResUNetBN2D2", n_out: int = 64) -> bytes:
    """A checkpoint in open-ucn's layout (state_dict + config), as bytes to serve."""
    from ucn_gui.core.model import build_model

    path = tmp_path / "served.pth"
    model = build_model(arch, n_out)
    torch.save({"state_dict": OrderedDict(model.state_dict()), "config": {"model": arch, "model_n_out": n_out}, "epoch": 100}, path)
    return path.read_bytes()
