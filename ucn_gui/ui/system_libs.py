"""The system libraries Qt's xcb platform plugin needs, and a cheap check for them.

Imports nothing from Qt: the check runs before the QApplication exists, so a
machine without them gets the apt line below instead of Qt's plugin error.

The package list is what ``ldd`` reports for PySide6's
``Qt/plugins/platforms/libqxcb.so`` and the Qt libraries it pulls in (libc,
libstdc++, zlib and zstd, present on every Debian/Ubuntu, left out), plus
python3-venv and make for ``make run``. The README repeats the line; a test
keeps the two equal.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

APT_PACKAGES = (
    "python3-venv", "make",
    "libgl1", "libegl1", "libfontconfig1", "libfreetype6", "libglib2.0-0", "libdbus-1-3",
    "libx11-6", "libx11-xcb1", "libxkbcommon0", "libxkbcommon-x11-0",
    "libxcb1", "libxcb-cursor0", "libxcb-icccm4", "libxcb-image0", "libxcb-keysyms1", "libxcb-randr0",
    "libxcb-render0", "libxcb-render-util0", "libxcb-shape0", "libxcb-shm0", "libxcb-sync1",
    "libxcb-util1", "libxcb-xfixes0", "libxcb-xkb1",
)
APT_LINE = "sudo apt-get install " + " ".join(APT_PACKAGES)
PLUGIN = "libqxcb.so"


def xcb_plugin_path() -> Path | None:
    """The libqxcb.so Qt would load: from QT_QPA_PLATFORM_PLUGIN_PATH, else PySide6's own."""
    dirs = [Path(d) for d in os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep) if d]
    spec = importlib.util.find_spec("PySide6")
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(d) / "Qt" / "plugins" / "platforms" for d in spec.submodule_search_locations]
    return next((d / PLUGIN for d in dirs if (d / PLUGIN).is_file()), None)


def xcb_load_error(plugin: Path | None = None) -> str | None:
    """Why the xcb plugin cannot load (the dynamic loader's message), or None when it can.

    Loading it here resolves every library it needs, as Qt would; when that
    works Qt later gets the same, already loaded, copy.
    """
    plugin = plugin or xcb_plugin_path()
    if plugin is None:
        return None  # not our layout; let Qt speak for itself
    try:
        ctypes.CDLL(str(plugin), mode=os.RTLD_LAZY)
    except OSError as exc:
        return str(exc)
    return None


def wants_xcb() -> bool:
    """Whether Qt is going to use the xcb plugin: Linux, QT_QPA_PLATFORM unset or xcb."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    return sys.platform.startswith("linux") and (platform == "" or platform.split(":")[0] == "xcb")


def check_display_libraries(prog: str) -> bool:
    """True when the window can start. Otherwise print the apt line on stderr.

    Returns False (the caller exits) when xcb is the only way to a display; in a
    Wayland session with QT_QPA_PLATFORM unset Qt may still use Wayland, so
    only the hint is printed and True returned.
    """
    if not wants_xcb():
        return True
    error = xcb_load_error()
    if error is None:
        return True
    wayland = bool(os.environ.get("WAYLAND_DISPLAY")) and not os.environ.get("QT_QPA_PLATFORM")
    print(
        f"{prog}: Qt's xcb platform plugin cannot load ({error}).\n"
        f"Install the system libraries the window needs (Debian/Ubuntu):\n    {APT_LINE}",
        file=sys.stderr,
    )
    return wayland
