"""Model zoo downloads against a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from ucn_gui.core import zoo
from ucn_gui.core.checkpoint import load_model
from ucn_gui.core.model import build_model

from helpers import open_ucn_style_bytes


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("UCN_VIEWER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entry(server) -> zoo.ModelEntry:
    """The zoo's entry, pinned to what the test server serves (the shipped pin is not known)."""
    e = zoo.find("open-ucn-yfcc")
    assert e is not None and e.downloadable and e.architecture == "ResUNetBN2D2"
    return dataclasses.replace(e, sha256=hashlib.sha256(server.payload).hexdigest(), size=len(server.payload))


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/ResUNetBN2D2-YFCC100train-100epoch.pth"


def test_download_with_progress_then_resolves(server, cache, tmp_path, monkeypatch):
    server.payload = open_ucn_style_bytes(tmp_path)
    entry = _entry(server)
    seen = []
    path = zoo.download(entry, progress=lambda done, total: seen.append((done, total)), url=_url(server))
    assert path.parent == cache and path.read_bytes() == server.payload
    assert seen[-1] == (len(server.payload), len(server.payload)) and len(seen) > 1
    assert not list(cache.glob("*.json")), "nothing learned from the network is stored"
    assert load_model(path).arch == "ResUNetBN2D2"
    monkeypatch.setattr(zoo, "remote_models", lambda: [entry])
    assert zoo.resolve("open-ucn-yfcc") == path


def test_interrupted_download_leaves_nothing_loadable_then_resumes(server, cache, tmp_path):
    server.payload = open_ucn_style_bytes(tmp_path)
    server.truncate_at = len(server.payload) // 3
    entry = _entry(server)
    with pytest.raises(zoo.DownloadError, match="resume"):
        zoo.download(entry, url=_url(server))
    assert not entry.available, "a partial file must never appear under the final name"
    with pytest.raises(zoo.ModelNotFound):
        zoo.resolve("open-ucn-yfcc")
    path = zoo.download(entry, url=_url(server))
    assert server.requests[-1] == f"bytes={len(server.payload) // 3}-", "second attempt resumed"
    assert path.read_bytes() == server.payload


def test_server_without_range_support_restarts_cleanly(server, cache, tmp_path):
    server.payload = open_ucn_style_bytes(tmp_path)
    server.honour_range = False
    entry = _entry(server)
    part = entry.path.with_name(entry.path.name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from another file")
    assert zoo.download(entry, url=_url(server)).read_bytes() == server.payload


def test_corrupt_download_refused_and_removed(server, cache):
    server.payload = b"<html>404 page pretending to be a model</html>"
    entry = _entry(server)
    with pytest.raises(zoo.DownloadError, match="refused"):
        zoo.download(entry, url=_url(server))
    assert not entry.available and not list(cache.glob("*.part"))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_download_refused(server, cache, tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": OrderedDict(build_model("ResUNetBN2D2", 64).state_dict()), "config": _Evil()}, path)
    server.payload = path.read_bytes()
    with pytest.raises(zoo.DownloadError, match="unsafe"):
        zoo.download(_entry(server), url=_url(server))
    assert not _entry(server).available


def test_wrong_architecture_refused(server, cache, tmp_path):
    server.payload = open_ucn_style_bytes(tmp_path, "ResUNetBN2F", 32)
    with pytest.raises(zoo.DownloadError, match="expected ResUNetBN2D2"):
        zoo.download(_entry(server), url=_url(server))


def test_file_other_than_the_pinned_one_is_refused(server, cache, tmp_path):
    """No trust on first use: right architecture, loads fine, but not the pinned file."""
    torch.manual_seed(1)
    genuine = open_ucn_style_bytes(tmp_path)
    server.payload = genuine
    entry = _entry(server)  # pinned to the genuine bytes
    torch.manual_seed(2)
    server.payload = open_ucn_style_bytes(tmp_path)  # random weights of the same size at the same URL
    assert len(server.payload) == len(genuine) and server.payload != genuine
    with pytest.raises(zoo.DownloadError, match="SHA-256"):
        zoo.download(entry, url=_url(server))
    assert not entry.available and not list(cache.glob("*.part")) and not list(cache.glob("*.json"))
    server.payload = genuine  # the genuine file still downloads afterwards
    assert zoo.download(entry, url=_url(server)).read_bytes() == genuine


def test_wrong_size_refused_before_downloading_it(server, cache, tmp_path):
    server.payload = open_ucn_style_bytes(tmp_path)
    entry = dataclasses.replace(_entry(server), size=len(server.payload) - 1)
    with pytest.raises(zoo.DownloadError, match="bytes where the pinned file has"):
        zoo.download(entry, url=_url(server))
    assert not entry.available and not list(cache.glob("*.part"))


def test_entry_without_shipped_hash_is_never_downloaded(server, cache, tmp_path):
    server.payload = open_ucn_style_bytes(tmp_path)
    entry = dataclasses.replace(_entry(server), sha256=None)
    with pytest.raises(zoo.DownloadError, match="ships no SHA-256"):
        zoo.download(entry, url=_url(server))
    assert server.requests == [], "refused before contacting the server"
    shipped = zoo.find("open-ucn-yfcc")  # the real entry: its hash is not known to this version
    assert shipped.sha256 is None or len(shipped.sha256) == 64
    if shipped.sha256 is None:
        with pytest.raises(zoo.DownloadError, match="ships no SHA-256"):
            zoo.download(shipped, url=_url(server))


def test_cached_file_is_used_only_while_it_is_the_pinned_one(server, cache, tmp_path, monkeypatch):
    server.payload = open_ucn_style_bytes(tmp_path)
    entry = _entry(server)
    monkeypatch.setattr(zoo, "remote_models", lambda: [entry])
    path = zoo.download(entry, url=_url(server))
    assert zoo.resolve("open-ucn-yfcc") == path
    path.write_bytes(path.read_bytes()[:-1] + b"x")  # e.g. what an older, trust-on-first-use version kept
    with pytest.raises(zoo.DownloadError, match="cached file"):
        zoo.resolve("open-ucn-yfcc")


class _PromisesBytes(http.server.BaseHTTPRequestHandler):
    """Answers 200 with a 100,000-byte Content-Length; subclasses decide how (little) of it comes."""

    def log_message(self, *args):
        pass

    def send_promise(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()


class _Trickle(_PromisesBytes):
    def do_GET(self):
        self.send_promise()
        for _ in range(400):  # one byte every 20 ms: each read returns, the download never finishes
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.02)


class _Silent(_PromisesBytes):
    def do_GET(self):
        self.send_promise()
        self.wfile.flush()
        time.sleep(5)  # headers, then nothing


@pytest.fixture
def slow_server(request):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


@pytest.mark.parametrize("slow_server", [_Trickle], indirect=True)
def test_trickling_server_ends_with_a_stall_message(slow_server, cache):
    entry = dataclasses.replace(zoo.find("open-ucn-yfcc"), sha256="0" * 64, size=100000)
    url = f"http://127.0.0.1:{slow_server.server_address[1]}/m.pth"
    t = time.monotonic()
    with pytest.raises(zoo.DownloadError, match="stalled") as err:
        zoo.download(entry, url=url, timeout=5, stall_seconds=1.0, stall_bytes=1000)
    assert time.monotonic() - t < 4, "gave up at the stall limit, not at the end of the trickle"
    assert "run again to resume" in str(err.value) and "\n" not in str(err.value)
    assert not entry.available


@pytest.mark.parametrize("slow_server", [_Silent], indirect=True)
def test_silent_server_times_out(slow_server, cache):
    entry = dataclasses.replace(zoo.find("open-ucn-yfcc"), sha256="0" * 64, size=100000)
    url = f"http://127.0.0.1:{slow_server.server_address[1]}/m.pth"
    t = time.monotonic()
    with pytest.raises(zoo.DownloadError, match="did not answer within 0.5 s"):
        zoo.download(entry, url=url, timeout=0.5)
    assert time.monotonic() - t < 3
    assert not entry.available


def test_unknown_name():
    with pytest.raises(zoo.ModelNotFound, match="open-ucn-yfcc"):
        zoo.resolve("no-such-model")
