"""Writing files safely: atomic replacement, and checks that an output may be written.

    atomic_write(path, lambda tmp: tmp.write_text("..."))       # all or nothing
    check_output_paths({"-o": out}, {"image0": a, "image1": b})  # OutputPathError before any work

Every file the package writes (models, cards, checkpoints, match files, pictures,
caches) goes through :func:`atomic_write`, so a killed process never leaves half a file.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that would overwrite an input or another output, or cannot be a file."""


TEMP_SUFFIX = ".tmp"
# What atomic_write's temporary files look like: ".NAME.<8 random characters>.tmp".
_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: a killed process never leaves half a file.

    A symbolic link is followed: its target gets the new content and the link stays.
    An existing file keeps its permission bits; a new one gets the usual 0666 & ~umask.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the hidden temporary files that killed atomic writes left in ``folder``.

    Call it only when no write into the folder can be in progress (a run starting up).
    Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        if _TEMP_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; done once, at import (single-threaded)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file: equal after resolving symbolic links, '..' and './',
    or (both existing) the same inode, as hard links are."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_paths(outputs: Mapping[str, str | os.PathLike], inputs: Mapping[str, str | os.PathLike]) -> None:
    """OutputPathError unless each output may be written: not an input, not another output,
    not a folder or a device, not a read-only file, and in a folder (or where one can be made).

    Keys are the labels that messages use (an option name such as "--viz", or "image0").
    """
    named = [(label, Path(p)) for label, p in outputs.items() if p is not None]
    for i, (label, out) in enumerate(named):
        for in_label, inp in inputs.items():
            if inp is not None and same_file(out, inp):
                raise OutputPathError(f"{label} {out} is the same file as {in_label} ({inp}); an input is never overwritten")
        for other_label, other in named[i + 1:]:
            if same_file(out, other):
                raise OutputPathError(f"{label} {out} and {other_label} {other} are the same file; give them different names")
        real = Path(os.path.realpath(out))
        if real.is_symlink():  # realpath stops where links loop
            raise OutputPathError(f"{label} {out}: symbolic links that loop; nothing can be written there")
        if real.is_dir():
            raise OutputPathError(f"{label} {out} is a folder; name a file")
        if real.exists():
            if not real.is_file():
                raise OutputPathError(f"{label} {out} exists and is not a regular file (a device or a pipe); not overwritten")
            if not real.stat().st_mode & 0o222:
                raise OutputPathError(f"{label} {out} is read-only; not overwritten")
        parent = real.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise OutputPathError(f"{label} {out}: {parent} is not a folder")
