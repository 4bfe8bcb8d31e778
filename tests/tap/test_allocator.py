"""glibc's allocator hands large buffers back when they are freed (``allocator.py``)."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from tap_stripe.allocator import hand_back_large_buffers

BUFFER = 4 << 20

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def mapped_bytes() -> int:
    """Bytes glibc holds in buffers mapped on their own (``mallinfo2().hblkhd``)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().hblkhd


def large_buffers_mapped() -> None:
    """Two large buffers in a row, each mapped on its own (the check, in a fresh process)."""
    assert hand_back_large_buffers()

    for _ in range(2):  # glibc would raise its threshold past the first one freed
        before = mapped_bytes()
        buffer = bytearray(BUFFER)
        assert mapped_bytes() - before >= BUFFER
        del buffer


def test_a_large_buffer_freed_does_not_make_the_next_come_from_the_arenas() -> None:
    # A process of its own: glibc serves a request from its heap's free top before it
    # maps one, and what earlier tests in this process freed can leave megabytes there.
    code = "from tests.tap.test_allocator import large_buffers_mapped; large_buffers_mapped()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
