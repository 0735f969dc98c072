"""A work-around for a reference-count bug of PySide6 6.12.0 on Python 3.11.

There, ``SignalInstance.emit()`` returns ``True`` without adding a reference to it,
so every signal emitted from Python takes one reference away from ``True``. After
some ten thousand emits (progress updates, hovering over the matches, ...) CPython
aborts with "Fatal Python error: bool_dealloc: deallocating True or False" (at the
latest when the interpreter exits). Python 3.12 and later make ``True`` immortal, so
the bug is harmless there. :func:`apply` checks for the bug with one emit and, only
where it shows, makes ``True`` as good as immortal the way 3.12 does (a reference
count no run can exhaust). It runs once, when the first of the window's modules
that emit signals imports this one (``system_libs`` does not: it must not load Qt).
"""
from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 40


def signal_emit_drops_a_reference() -> bool:
    """True when emitting a Qt signal from Python costs ``True`` one reference."""
    from PySide6 import QtCore

    class _Probe(QtCore.QObject):
        ping = QtCore.Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    probe.ping.emit()
    return sys.getrefcount(True) < before


def apply() -> bool:
    """Protect ``True`` where the bug is present; returns whether it did."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if not signal_emit_drops_a_reference():
        return False
    refcnt = ctypes.c_ssize_t.from_address(id(True))  # ob_refcnt: the first field of every object
    if refcnt.value != sys.getrefcount(True) - 1:  # not the layout we expect: leave it alone
        return False
    refcnt.value += _HEADROOM
    return True


try:
    apply()
except (ImportError, OSError):  # Qt itself cannot load: nothing will emit, system_libs says why
    pass
