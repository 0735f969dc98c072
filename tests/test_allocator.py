"""glibc malloc keeps large freed blocks in the heap once asked (ucn_gui.core.allocator)."""
from __future__ import annotations

import subprocess
import sys

import pytest

# Run in a child process: the setting lasts for the process's life, and the numbers read back
# (mallinfo2: hblkhd = bytes held in mmapped blocks) must not depend on what pytest allocated.
_PROBE = """
import ctypes, sys
from ucn_gui.core.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    assert keep_freed_memory()
block = ctypes.create_string_buffer(64 << 20)  # malloc(64 MB): above glibc's mmap threshold
print(libc.mallinfo2().hblkhd >= 64 << 20)
"""


def _libc_has_mallinfo2() -> bool:
    import ctypes

    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _libc_has_mallinfo2(), reason="needs glibc >= 2.33")
def test_large_blocks_come_from_the_heap_once_asked() -> None:
    def mmapped(mode: str) -> bool:
        out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
        return out.stdout.strip() == "True"

    assert mmapped("default")  # glibc's default: a 64 MB block is its own mapping, unmapped when freed
    assert not mmapped("keep")  # asked: served from the heap, which is never trimmed
