"""The model registry: bundled weights, downloadable ones, and user files.

    path = resolve("default")          # the bundled model
    path = resolve("open-ucn-yfcc")    # open-ucn's published model, downloaded on request
    path = resolve("my/weights.pth")   # any file

Downloads go to the user's cache folder (platformdirs; ``UCN_VIEWER_CACHE``
overrides it) as ``NAME.part`` and are resumed with an HTTP Range request when
the server allows it. Every downloadable entry ships its expected SHA-256 and
size in this file; only a file with exactly that size and hash, which also
loads safely with the expected architecture, is renamed to its final name. No
hash is ever learned from the network: an entry without one is not downloaded.

A server that does not answer within ``timeout`` seconds (connecting, or waiting
for the next bytes) or that trickles fewer than ``stall_bytes`` in ``stall_seconds``
ends the download with DownloadError; the partial file stays for resuming. Setting
the ``cancel`` event given to :func:`download` ends it at once, even while it waits
for data (the connection is shut down): DownloadCancelled, the partial file kept.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
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
    sha256: str | None = None  # expected SHA-256 (hex) of the file; a download needs it
    size: int | None = None  # expected size in bytes

    @property
    def downloadable(self) -> bool:
        return self.url is not None

    @property
    def available(self) -> bool:
        return self.path is not None and self.path.is_file()


def cache_dir() -> Path:
    override = os.environ.get("UCN_VIEWER_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("ucn-viewer")) / "models"


# open-ucn's published YFCC model. Its SHA-256 and size are NOT known to this version:
# the file's server could not be reached when this pin was to be written, and open-ucn
# publishes no checksum. Until the genuine file's values are filled in here (from a copy
# checked against its source), downloading it is refused rather than trusting whatever
# a server sends. A copy you trust still loads with --weights FILE / Open model.
OPEN_UCN_YFCC_SHA256: str | None = None
OPEN_UCN_YFCC_SIZE: int | None = None


def remote_models() -> list[ModelEntry]:
    return [
        ModelEntry(
            name="open-ucn-yfcc",
            description="open-ucn's published model (YFCC100M, 100 epochs; ResUNetBN2D2, 64-dim)",
            path=cache_dir() / "ResUNetBN2D2-YFCC100train-100epoch.pth",
            url="https://node1.chrischoy.org/data/publications/ucn/ResUNetBN2D2-YFCC100train-100epoch.pth",
            architecture="ResUNetBN2D2",
            n_out=64,
            sha256=OPEN_UCN_YFCC_SHA256,
            size=OPEN_UCN_YFCC_SIZE,
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
        if entry.downloadable:  # a cached download is used only while it is the pinned file
            _check_pinned(entry, entry.path, remove=False)
        return entry.path
    if entry.downloadable and download_if_missing:
        return download(entry, progress)
    raise ModelNotFound(f"{entry.name} is not downloaded yet ({entry.url})")


# --------------------------------------------------------------------------- downloads

DEFAULT_TIMEOUT = 30.0  # s: connecting, and waiting for the next bytes
STALL_SECONDS = 60.0  # a download must bring at least STALL_BYTES in every such window
STALL_BYTES = 64 * 1024


class _Stalled(OSError):
    pass


class _WrongFile(OSError):
    """The server offers something other than the pinned file (by its size)."""


def _require_pin(entry: ModelEntry) -> str:
    if not entry.sha256:
        raise DownloadError(
            f"{entry.name}: this version of UCN Viewer ships no SHA-256 for {entry.url}, so it is not downloaded "
            "(a file is never trusted on first use); if you have a copy you trust, open it with --weights FILE"
        )
    return entry.sha256.lower()


def download(
    entry: ModelEntry,
    progress: ProgressFn | None = None,
    url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stall_seconds: float = STALL_SECONDS,
    stall_bytes: int = STALL_BYTES,
    cancel: threading.Event | None = None,
) -> Path:
    """Fetch ``entry`` into the cache, resuming a previous partial download.

    Refused before any byte is fetched when the entry has no shipped SHA-256. The file
    is verified (size, SHA-256, safe load, architecture) before it gets its final name;
    on any failure the unusable data is deleted and DownloadError raised. A dead or
    trickling server ends in DownloadError after ``timeout`` / ``stall_seconds``.
    A ``progress`` callback may raise DownloadCancelled to stop (the .part is kept), and
    setting ``cancel`` stops it within a fraction of a second even while no data comes.
    """
    url = url or entry.url
    if url is None or entry.path is None:
        raise DownloadError(f"{entry.name}: nothing to download")
    _require_pin(entry)
    final = entry.path
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    try:
        _fetch(url, part, progress, timeout, entry.size, stall_seconds, stall_bytes, cancel)
    except DownloadCancelled:
        raise
    except _WrongFile as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{entry.name}: {url} {exc}; refused, nothing kept") from None
    except _Stalled as exc:
        raise DownloadError(f"{entry.name}: download from {url} stalled ({exc}); run again to resume") from None
    except (TimeoutError, urllib.error.URLError) as exc:
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled from None
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            raise DownloadError(
                f"{entry.name}: {url} did not answer within {timeout:g} s (connecting or reading); run again to resume"
            ) from None
        raise DownloadError(f"{entry.name}: download from {url} failed ({exc}); run again to resume") from None
    except (http.client.HTTPException, OSError) as exc:
        if cancel is not None and cancel.is_set():  # the connection was shut down on purpose
            raise DownloadCancelled from None
        # Keep the .part: the next attempt resumes from it. It never loads under that name.
        raise DownloadError(f"{entry.name}: download from {url} failed ({exc}); run again to resume") from None
    _verify(entry, part)
    os.replace(part, final)
    return final


def _shut_down_on(cancel: threading.Event, resp: http.client.HTTPResponse, finished: threading.Event) -> None:
    """Until ``finished``: when ``cancel`` is set, shut the connection down, which wakes a read
    blocked in the download's thread at once (a socket timeout would only end it after ``timeout``)."""

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(0.1):
                try:
                    with socket.socket(fileno=os.dup(resp.fileno())) as sock:  # shutdown acts on the connection
                        sock.shutdown(socket.SHUT_RDWR)
                except (OSError, ValueError, AttributeError):
                    pass  # already closed (a closed HTTPResponse has no fp: AttributeError)
                return

    threading.Thread(target=watch, name="ucn-download-cancel", daemon=True).start()


def _fetch(
    url: str, part: Path, progress: ProgressFn | None, timeout: float, size: int | None, stall_seconds: float, stall_bytes: int,
    cancel: threading.Event | None = None,
) -> None:
    if cancel is not None and cancel.is_set():
        raise DownloadCancelled
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # not a prefix of the pinned file
        part.unlink()
        have = 0
    if size is not None and have == size:
        return  # complete already: verification decides
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        # The timeout bounds connecting and every wait for data; the stall window below
        # catches a server that keeps sending a byte now and then.
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked past the end: the server says the file is complete
            return
        raise
    finished = threading.Event()
    if cancel is not None:
        _shut_down_on(cancel, resp, finished)
    with resp:
        try:
            _receive(resp, part, progress, have, size, stall_seconds, stall_bytes, cancel)
        finally:
            finished.set()


def _receive(resp: http.client.HTTPResponse, part: Path, progress: ProgressFn | None, have: int, size: int | None,
             stall_seconds: float, stall_bytes: int, cancel: threading.Event | None) -> None:
    """Append the response's body to ``part`` (``have`` bytes there already), checking size and stalls."""
    if have and resp.status != 206:
        have = 0  # the server ignored the range: start again cleanly
    length = resp.headers.get("Content-Length")
    total = have + int(length) if length is not None else None
    if size is not None and total is not None and total != size:
        raise _WrongFile(f"offers {total} bytes where the pinned file has {size}")
    done = have
    window_start, window_done = time.monotonic(), done
    with open(part, "ab" if have else "wb") as f:
        # read1: return what has arrived instead of waiting for a whole block, so a
        # trickle is seen (read(n) would block until n bytes came, however slowly).
        while chunk := resp.read1(1 << 16):
            f.write(chunk)
            done += len(chunk)
            if size is not None and done > size:
                raise _WrongFile(f"sent more than the {size} bytes of the pinned file")
            if progress is not None:
                progress(done, total)
            now = time.monotonic()
            if now - window_start >= stall_seconds:
                if done - window_done < stall_bytes:
                    raise _Stalled(f"{done - window_done} bytes in {now - window_start:.0f} s, "
                                   f"below {stall_bytes} bytes per {stall_seconds:g} s")
                window_start, window_done = now, done
    if cancel is not None and cancel.is_set():
        raise DownloadCancelled
    if total is not None and done < total:
        raise OSError(f"connection closed after {done} of {total} bytes")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _check_pinned(entry: ModelEntry, path: Path, remove: bool) -> None:
    """DownloadError unless ``path`` has the entry's shipped size and SHA-256 (deleted when ``remove``)."""
    expected = _require_pin(entry)
    size = path.stat().st_size
    problem = None
    if entry.size is not None and size != entry.size:
        problem = f"has {size} bytes where the pinned file has {entry.size}"
    else:
        digest = _sha256(path)
        if digest != expected:
            problem = f"has SHA-256 {digest[:16]}..., not the pinned {expected[:16]}..."
    if problem is None:
        return
    if remove:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{entry.name}: the downloaded file {problem}; refused and removed")
    raise DownloadError(f"{entry.name}: the cached file {path} {problem}; not used (delete it to download again)")


def _verify(entry: ModelEntry, part: Path) -> None:
    _check_pinned(entry, part, remove=True)
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
