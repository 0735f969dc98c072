"""A work-around for reference-count bugs of PySide6 6.12.0 on Python 3.11.

There, ``SignalInstance.emit()`` returns ``True`` without adding a reference to it,
so every signal emitted from Python takes one reference away from ``True``; and
every call of a void Qt method (``label.setText``, ``widget.hide``, ...) returns
``None`` the same way. After some thousands of them (progress updates, hovering over
the matches, each re-filter's widget updates) CPython aborts with "Fatal Python error:
bool_dealloc: deallocating True or False" or "none_dealloc: deallocating None" (at the
latest when the interpreter exits). Python 3.12 and later make ``True`` and ``None``
immortal, so the bugs are harmless there. :func:`apply` checks for each bug with one
call and, only where it shows, makes that object as good as immortal the way 3.12
does (a reference count no run can exhaust). It runs once, when the first of the
window's modules that use Qt imports this one (``system_libs`` does not: it must not
load Qt).
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


def void_call_drops_a_reference() -> bool:
    """True when calling a void Qt method from Python costs ``None`` one reference."""
    from PySide6 import QtCore

    probe = QtCore.QObject()
    before = sys.getrefcount(None)
    for _ in range(8):  # more than once: a stray reference elsewhere must not decide
        probe.setObjectName("probe")
    return sys.getrefcount(None) <= before - 8


def _protect(obj: object) -> bool:
    refcnt = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt: the first field of every object
    if refcnt.value != sys.getrefcount(obj) - 1:  # not the layout we expect: leave it alone
        return False
    refcnt.value += _HEADROOM
    return True


def apply() -> bool:
    """Protect ``True`` and ``None`` where the bugs are present; returns whether it did either."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    done = False
    if signal_emit_drops_a_reference():
        done |= _protect(True)
    if void_call_drops_a_reference():
        done |= _protect(None)
    return done


try:
    apply()
except (ImportError, OSError):  # Qt itself cannot load: nothing will emit, system_libs says why
    pass
