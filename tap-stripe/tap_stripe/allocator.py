"""glibc's allocator told to hand large buffers back, so the tap's memory stays flat.

Every table is read at once, so hundreds of threads allocate page bodies (~250 KB each)
and the RECORD lines made of them. glibc maps a buffer of 128 KB or more on its own and
unmaps it when it is freed, but the first time it frees one it raises that threshold to
the buffer's size (up to 32 MB), and its trimming threshold to twice that: from then on
the page buffers are carved from its per-thread arenas (up to 8 per core), which keep the
high-water mark of what they once held. Measured on the benchmark's account (``make
bench``'s full sync, 476,000 records, against its small one, a tenth of them): the tap's
peak was 154 MB against 110 MB (x1.40) that way, and is 114 MB against 96 MB (x1.19) with
both thresholds held at 128 KB; the tap alone (no limits, CPU-bound) was about 5 % slower
for it, within the machine's noise. On another C library this does nothing.
"""

from __future__ import annotations

import ctypes
import platform

# mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGE_BUFFER_BYTES = 128 << 10


def hand_back_large_buffers() -> bool:
    """Hold glibc's mmap and trim thresholds at 128 KB for the rest of the process;
    return whether glibc took them (False elsewhere)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    took = [
        libc.mallopt(option, LARGE_BUFFER_BYTES) for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)
    ]
    return all(took)
