"""Background threads that may outlive the window for a moment, and leaving the process cleanly.

    background.adopt(thread, worker)     # a closing window's thread still inside one step
    code = background.leave(app.exec())  # at exit: never waits for such a step

Closing the window must return at once (issue 14: 10.7 s before). Cancel stops a run
between network layers and search blocks, but one layer of a huge image, or a decode,
cannot be interrupted; the window then closes without waiting, and the thread finishes
that step on its own. Those steps only compute in memory (downloads keep a resumable
``.part`` and are stopped at once), so nothing can be left half written. ``adopt`` keeps
such a thread and its worker object alive until it ends (a QThread destroyed while it
runs aborts the process); ``leave`` ends the process without waiting for them.
"""
from __future__ import annotations

import os
import sys

from PySide6 import QtCore

_adopted: list[tuple[QtCore.QThread, tuple[QtCore.QObject, ...]]] = []


def adopt(thread: QtCore.QThread, *keep: QtCore.QObject) -> None:
    """Keep ``thread`` (and the objects living in it) referenced until it has finished."""
    _adopted.append((thread, keep))


def running() -> int:
    """How many adopted threads still run (those that ended are forgotten)."""
    _adopted[:] = [(t, keep) for t, keep in _adopted if t.isRunning()]
    return len(_adopted) + (QtCore.QThreadPool.globalInstance().activeThreadCount() > 0)


def settle(timeout_ms: int = 200) -> bool:
    """Give background threads ``timeout_ms`` to end; True when none runs any more."""
    deadline = QtCore.QDeadlineTimer(timeout_ms)
    for thread, _keep in list(_adopted):
        thread.wait(deadline)
    QtCore.QThreadPool.globalInstance().waitForDone(max(0, int(deadline.remainingTime())))
    return running() == 0


def leave(code: int) -> int:
    """What the app returns from ``main`` after its event loop ended. When a thread is still
    inside a step that cannot be interrupted, waiting for it would hold the exit for seconds
    (and Qt would block on it while tearing down), so the process ends here, with ``code``."""
    if settle():
        return code
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
