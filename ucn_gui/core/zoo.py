"""The model registry: bundled weights, downloadable ones, and user files.

    path = resolve("default")          # the bundled model
    path = resolve("open-ucn-yfcc")    # open-ucn's published model, downloaded on request
    path = resolve("my/weights.pth")   # any file

Downloads go to the user's cache folder (platformdirs; ``UCN_VIEWER_CACHE``
overrides it) as ``NAME.part`` and are resumed with an HTTP Range request when
the server allows it. Only a file that loads safely, has the expected
architecture and matches its recorded SHA-256 is renamed to its final name, so a
partial or corrupt download can never be loaded later.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from . import resources
from .checkpoint import CheckpointError, load_model

DEFAULT_MODEL_NAME = "default"
ProgressFn = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None)


class ModelNotFound(Exception):
    """A model name or path that names nothing usable."""


class DownloadError(Exception):
    """A download that failed or produced an unusable file (nothing is left to load)."""


class DownloadCancelled(Exception):
    """Raised by a progress callback to stop a download; the partial file stays for resuming."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    path: Path | None  # where it is (or will be, once downloaded)
    url: str | None = None
    architecture: str | None = None
    n_out: int | None = None

    @property
    def downloadable(self) -> bool:
        return self.url is not None

    @property
    def available(self) -> bool:
        return self.path is not None and self.path.is_file()


def cache_dir() -> Path:
    override = os.environ.get("UCN_VIEWER_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("ucn-viewer")) / "models"


def remote_models() -> list[ModelEntry]:
    return [
        ModelEntry(
            name="open-ucn-yfcc",
            description="open-ucn's published model (YFCC100M, 100 epochs; ResUNetBN2D2, 64-dim)",
            path=cache_dir() / "ResUNetBN2D2-YFCC100train-100epoch.pth",
            url="https://node1.chrischoy.org/data/publications/ucn/ResUNetBN2D2-YFCC100train-100epoch.pth",
            architecture="ResUNetBN2D2",
            n_out=64,
        )
    ]


def bundled_models() -> list[ModelEntry]:
    """Every bundled ``models/*.safetensors`` (see core.resources); the one named 'default' first."""
    models_dir = resources.models_dir()
    if not models_dir.is_dir():
        return []
    entries = [ModelEntry(p.stem, f"bundled ({p.name})", p) for p in sorted(models_dir.glob("*.safetensors"))]
    return sorted(entries, key=lambda e: e.name != DEFAULT_MODEL_NAME)


def list_models() -> list[ModelEntry]:
    return bundled_models() + remote_models()


def find(name: str) -> ModelEntry | None:
    return next((e for e in list_models() if e.name == name), None)


def default_model_path() -> Path | None:
    """The bundled default model, or None while none is bundled."""
    entry = find(DEFAULT_MODEL_NAME)
    return entry.path if entry is not None and entry.available else None


def resolve(name_or_path: str | os.PathLike, download_if_missing: bool = False, progress: ProgressFn | None = None) -> Path:
    """A zoo name or a file path -> a path on disk; ModelNotFound otherwise."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    entry = find(str(name_or_path))
    if entry is None:
        known = ", ".join(e.name for e in list_models())
        raise ModelNotFound(f"{name_or_path}: no such file, and not a model name (known: {known})")
    if entry.available:
        assert entry.path is not None
        return entry.path
    if entry.downloadable and download_if_missing:
        return download(entry, progress)
    raise ModelNotFound(f"{entry.name} is not downloaded yet ({entry.url})")


# --------------------------------------------------------------------------- downloads


def _hash_registry() -> Path:
    return cache_dir() / "sha256.json"


def recorded_sha256(name: str) -> str | None:
    try:
        return json.loads(_hash_registry().read_text()).get(name)
    except (OSError, ValueError):
        return None


def _record_sha256(name: str, digest: str) -> None:
    reg = _hash_registry()
    try:
        data = json.loads(reg.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = digest
    tmp = reg.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, reg)


def download(entry: ModelEntry, progress: ProgressFn | None = None, url: str | None = None, timeout: float = 30.0) -> Path:
    """Fetch ``entry`` into the cache, resuming a previous partial download.

    The file is verified (safe load, architecture, SHA-256) before it gets its
    final name; on any failure the unusable data is deleted and DownloadError raised.
    A ``progress`` callback may raise DownloadCancelled to stop (the .part is kept).
    """
    url = url or entry.url
    if url is None or entry.path is None:
        raise DownloadError(f"{entry.name}: nothing to download")
    final = entry.path
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    try:
        _fetch(url, part, progress, timeout)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        # Keep the .part: the next attempt resumes from it. It never loads under that name.
        raise DownloadError(f"{entry.name}: download from {url} failed ({exc}); run again to resume") from None
    _verify(entry, part)
    os.replace(part, final)
    return final


def _fetch(url: str, part: Path, progress: ProgressFn | None, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked past the end: the server says the file is complete
            return
        raise
    with resp:
        if have and resp.status != 206:
            have = 0  # the server ignored the range: start again cleanly
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        done = have
        with open(part, "ab" if have else "wb") as f:
            while chunk := resp.read(1 << 16):
                f.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done < total:
            raise OSError(f"connection closed after {done} of {total} bytes")


def _verify(entry: ModelEntry, part: Path) -> None:
    digest = hashlib.sha256(part.read_bytes()).hexdigest()
    expected = recorded_sha256(entry.name)
    if expected is not None and digest != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{entry.name}: SHA-256 {digest[:12]}... differs from the recorded {expected[:12]}...; file removed")
    try:
        loaded = load_model(part)
    except CheckpointError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{entry.name}: downloaded file refused: {exc}") from None
    if entry.architecture and (loaded.arch, loaded.n_out) != (entry.architecture, entry.n_out):
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{entry.name}: expected {entry.architecture} ({entry.n_out}-dim), got {loaded.arch} ({loaded.n_out}-dim); file removed"
        )
    if expected is None:
        _record_sha256(entry.name, digest)
