"""Model zoo downloads against a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from ucn_gui.core import zoo
from ucn_gui.core.checkpoint import load_model
from ucn_gui.core.model import build_model

from conftest import open_ucn_style_bytes


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("UCN_VIEWER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entry(server) -> zoo.ModelEntry:
    e = zoo.find("open-ucn-yfcc")
    assert e is not None and e.downloadable and e.architecture == "ResUNetBN2D2"
    return e


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/ResUNetBN2D2-YFCC100train-100epoch.pth"


def test_download_with_progress_and_hash_recorded(server, cache, tmp_path):
    server.payload = open_ucn_style_bytes(tmp_path)
    seen = []
    path = zoo.download(_entry(server), progress=lambda done, total: seen.append((done, total)), url=_url(server))
    assert path.parent == cache and path.read_bytes() == server.payload
    assert seen[-1] == (len(server.payload), len(server.payload)) and len(seen) > 1
    assert zoo.recorded_sha256("open-ucn-yfcc") is not None
    assert load_model(path).arch == "ResUNetBN2D2"
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


def test_changed_file_fails_recorded_hash(server, cache, tmp_path):
    server.payload = open_ucn_style_bytes(tmp_path)
    entry = _entry(server)
    zoo.download(entry, url=_url(server)).unlink()
    torch.manual_seed(1)
    server.payload = open_ucn_style_bytes(tmp_path)  # different weights, same name
    with pytest.raises(zoo.DownloadError, match="SHA-256"):
        zoo.download(entry, url=_url(server))


def test_unknown_name():
    with pytest.raises(zoo.ModelNotFound, match="open-ucn-yfcc"):
        zoo.resolve("no-such-model")
