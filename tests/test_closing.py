"""Closing the window during long work returns within a second, and the process exits with 0.

Issue 14 (section 4) and the reliability issue: closing during a heavy run froze the
window for 10.7 s and the exit took 13.8 s. Each kind of long work is tried in the
window (pytest-qt) and in a real process: a run with every pixel as a query point,
a forward pass on a large photo, and a model download from a server that trickles.
"""
from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import cv2
import pytest

from test_ui import IMG0, IMG1, RUN_TIMEOUT_MS, model_path, opened, settings, window  # noqa: F401 - fixtures
from ucn_gui.core.settings import ComputeSettings, MatchOptions

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[1]
CLOSE_S = 1.0


class TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Sends the file 2 KiB at a time, 10 times a second: a download of minutes."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = self.server.payload  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            for i in range(0, len(data), 2048):
                self.wfile.write(data[i : i + 2048])
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:  # the client went away: what closing must do
            pass


@pytest.fixture
def trickle(tmp_path):
    from helpers import open_ucn_style_bytes

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TrickleHandler)
    srv.daemon_threads = True
    srv.payload = open_ucn_style_bytes(tmp_path, "ResUNetBN2F", 16)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def entry_for(server, cache: Path):
    from ucn_gui.core import zoo

    return zoo.ModelEntry("trickle", "served slowly on 127.0.0.1", cache / "trickle.pth",
                          url=f"http://127.0.0.1:{server.server_address[1]}/trickle.pth", architecture="ResUNetBN2F",
                          n_out=16, sha256=hashlib.sha256(server.payload).hexdigest(), size=len(server.payload))


@pytest.fixture
def large_photo(tmp_path) -> Path:
    path = tmp_path / "large.jpg"
    cv2.imwrite(str(path), cv2.resize(cv2.imread(str(IMG0)), (2976, 1984), interpolation=cv2.INTER_LINEAR))
    return path


def close_timed(window) -> float:
    start = time.perf_counter()
    window.close()
    return time.perf_counter() - start


# ---------------------------------------------------------------------- in the window


@pytest.mark.parametrize("kind", ["every pixel", "large forward pass"])
def test_close_during_a_run_returns_within_a_second(qtbot, window, model_path, large_photo, kind):
    if kind == "every pixel":
        window.compute_panel.set_settings(ComputeSettings("cpu", 744, options=MatchOptions(keypoints="all")))
        pair, stage = (IMG0, IMG1), "forward search"
    else:
        window.compute_panel.set_settings(ComputeSettings("cpu", 2976))
        pair, stage = (large_photo, IMG1), "features image 0"
    stages = []
    window.runner.progress.connect(lambda name, _f: stages.append(name))
    assert window.models.load_file(model_path)
    opened(qtbot, window, lambda: window.set_pair(*pair))
    qtbot.waitUntil(lambda: stage in stages, timeout=RUN_TIMEOUT_MS)
    qtbot.wait(200)
    assert window.runner.busy
    elapsed = close_timed(window)
    print(f"{kind}: closed in {elapsed:.3f} s")
    assert elapsed < CLOSE_S


def test_close_during_a_step_that_cannot_be_interrupted_returns_within_a_second(qtbot, window, model_path, monkeypatch):
    """One network layer of a huge photo does not look at Cancel (10.7 s in the issue): here a
    forward pass that sleeps 5 s without looking. The window closes anyway; the step ends later."""
    from ucn_gui.core import matching

    real = matching.extract_features
    started = []

    def slow(*args, **kwargs):
        started.append(1)
        time.sleep(5.0)  # releases the GIL, as torch's kernels do, and never checks cancel
        return real(*args, **kwargs)

    monkeypatch.setattr(matching, "extract_features", slow)
    assert window.models.load_file(model_path)
    opened(qtbot, window, lambda: window.set_pair(IMG0, IMG1))
    qtbot.waitUntil(lambda: bool(started), timeout=RUN_TIMEOUT_MS)
    elapsed = close_timed(window)
    print(f"uninterruptible step: closed in {elapsed:.3f} s")
    assert elapsed < CLOSE_S
    from ucn_gui.ui import background

    assert background.running() >= 1  # the step goes on in the background ...
    assert background.settle(15_000)  # ... and ends on its own


def test_close_during_a_download_returns_within_a_second(qtbot, window, trickle, tmp_path, monkeypatch):
    monkeypatch.setenv("UCN_VIEWER_CACHE", str(tmp_path / "cache"))
    entry = entry_for(trickle, tmp_path / "cache")
    window.models.download(entry)
    part = entry.path.with_name(entry.path.name + ".part")
    qtbot.waitUntil(lambda: part.exists() and part.stat().st_size > 4096, timeout=10_000)
    assert window.models.busy
    elapsed = close_timed(window)
    print(f"download: closed in {elapsed:.3f} s")
    assert elapsed < CLOSE_S
    qtbot.waitUntil(lambda: not window.models.busy, timeout=2000)  # the download's thread ended too
    assert 0 < part.stat().st_size < len(trickle.payload) and not entry.path.exists()  # kept for resuming


# ---------------------------------------------------------------------- in a real process


def _env(tmp_path: Path) -> dict:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"), HOME=str(tmp_path),
                PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), UCN_VIEWER_CACHE=str(tmp_path / "cache"))


def _timed_exit(proc: subprocess.Popen) -> tuple[float, float, str]:
    """(seconds close() took, seconds from the close to the process's end, stderr)."""
    _, err = proc.communicate(timeout=150)
    ended = time.time()
    assert proc.returncode == 0, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("closing ")]
    assert lines, err[-3000:]
    closing = float(lines[-1].split()[1])
    closed = [line for line in err.splitlines() if line.startswith("closed in ")]
    return float(closed[-1].split()[2]) if closed else -1.0, ended - closing, err


def test_process_closed_during_a_run_exits_with_0_at_once(tmp_path, model_path, large_photo):
    """main.py on a large photo, every pixel as a query point, closed while the run goes on."""
    conf = tmp_path / "config" / "ucn-viewer"
    conf.mkdir(parents=True)
    (conf / "UCN Viewer.conf").write_text('[General]\nmatch_options="{\\"keypoints\\": \\"all\\"}"\n')
    cmd = [sys.executable, str(ROOT / "main.py"), str(large_photo), str(IMG1), "--weights", str(model_path),
           "--device", "cpu", "--max-size", "2976", "--quit-after", "6"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    close_s, exit_s, err = _timed_exit(proc)
    print(f"run: closed in {close_s:.3f} s, process ended {exit_s:.3f} s after the close")
    assert "busy=True" in err  # the run was going on when the window closed
    assert 0 <= close_s < CLOSE_S and exit_s < 3.0


DOWNLOAD_SCRIPT = textwrap.dedent("""
    import sys, time
    from ucn_gui.core.threads import configure_threads
    configure_threads()
    from PySide6 import QtCore, QtWidgets
    from ucn_gui.core import zoo
    from ucn_gui.ui import background
    from ucn_gui.ui.main_window import MainWindow

    url, sha, size, cache, ini = sys.argv[1:6]
    entry = zoo.ModelEntry("trickle", "slow", zoo.Path(cache) / "trickle.pth", url=url, architecture="ResUNetBN2F",
                           n_out=16, sha256=sha, size=int(size))
    app = QtWidgets.QApplication([])
    window = MainWindow(QtCore.QSettings(ini, QtCore.QSettings.Format.IniFormat))
    window.show()
    window.models.download(entry)

    def close():
        print(f"closing {time.time():.3f} busy={window.models.busy}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        window.close()
        print(f"closed in {time.perf_counter() - start:.3f}", file=sys.stderr, flush=True)

    QtCore.QTimer.singleShot(2000, close)
    sys.exit(background.leave(app.exec()))
""")


def test_process_closed_during_a_download_exits_with_0_at_once(tmp_path, trickle):
    entry = entry_for(trickle, tmp_path / "cache")
    args = [entry.url, entry.sha256, str(entry.size), str(tmp_path / "cache"), str(tmp_path / "settings.ini")]
    proc = subprocess.Popen([sys.executable, "-c", DOWNLOAD_SCRIPT, *args], env=_env(tmp_path), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    close_s, exit_s, err = _timed_exit(proc)
    print(f"download: closed in {close_s:.3f} s, process ended {exit_s:.3f} s after the close")
    assert "busy=True" in err
    assert 0 <= close_s < CLOSE_S and exit_s < 3.0
    part = entry.path.with_name(entry.path.name + ".part")
    assert part.exists() and 0 < part.stat().st_size < entry.size and not entry.path.exists()
