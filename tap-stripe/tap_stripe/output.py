"""Singer message output: orjson-encoded, buffered, thread-safe.

The SDK's writer serialises with simplejson and flushes stdout after every message;
at Stripe's page sizes that dominates the record path. This writer encodes with
orjson, keeps RECORD lines in a buffer and flushes it before every other message
(SCHEMA, STATE, ...), so a STATE line never reaches stdout before the records it
covers, and the SDK's own messages interleave correctly with the tap's fast records.

A flush goes out in blocks of whole lines, each marked as a write for ``shutdown.py``: a
signal lets the block under way finish (never half a line on stdout), and the blocks
after it are dropped with whatever they hold, a STATE included. A real stdout is written
with ``os.write`` on its descriptor: Python's buffered writer loses the rest of a block
whose write a signal interrupts part way (seen with CPython 3.11 on a pipe).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message

from tap_stripe import shutdown

FLUSH_BYTES = 1 << 20
# A stop waits for the block being written: small enough for a slow reader to take soon.
BLOCK_BYTES = 1 << 16


def _default(obj: Any) -> Any:
    return str(obj)


class FastSingerWriter(GenericSingerWriter[bytes, Message]):
    """Writes Singer messages to stdout as orjson lines."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lock = threading.Lock()

    def serialize_message(self, message: Message) -> bytes:
        """One JSON line for ``message``."""
        return orjson.dumps(message.to_dict(), default=_default)

    def write_message(self, message: Message) -> None:
        """Write ``message`` and flush everything written so far."""
        line = self.format_message(message)
        with self._lock:
            self._buffer += line + b"\n"
            self._flush_locked()

    def write_record_line(self, line: bytes) -> None:
        """Buffer one complete RECORD line (including its newline)."""
        with self._lock:
            self._buffer += line
            if len(self._buffer) >= FLUSH_BYTES:
                self._flush_locked()

    def flush(self) -> None:
        """Write out whatever is buffered."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._buffer:
            return
        # Taken out first: after a failure or a stop, nothing of it is written again.
        buffer, self._buffer = self._buffer, bytearray()
        # Resolved at each flush: tests and the SDK's runners swap sys.stdout.
        out = sys.stdout
        fd = _descriptor(out)
        raw = getattr(out, "buffer", None)
        view = memoryview(buffer)
        try:
            out.flush()
            for start, end in line_blocks(buffer, BLOCK_BYTES):
                shutdown.begin_write()
                try:
                    if fd is not None:
                        _write_all(fd, view[start:end])
                    elif raw is not None:
                        raw.write(view[start:end])
                        raw.flush()
                    else:
                        out.write(bytes(view[start:end]).decode())
                        out.flush()
                finally:
                    shutdown.end_write()
        except BrokenPipeError as exc:
            raise shutdown.output_closed() from exc


def _descriptor(out: Any) -> int | None:
    """The file descriptor behind ``out``, if it has one (not an in-memory stream)."""
    try:
        return out.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _write_all(fd: int, data: memoryview) -> None:
    """Write all of ``data``: ``os.write`` may write part of it when a signal comes."""
    while data:
        data = data[os.write(fd, data) :]


def line_blocks(buffer: bytearray, size: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the consecutive blocks of whole lines of ``buffer``, each at most
    ``size`` bytes unless one line is longer."""
    start, total = 0, len(buffer)
    while start < total:
        end = buffer.rfind(b"\n", start, start + size) + 1
        if end <= start:
            end = buffer.find(b"\n", start + size) + 1 or total
        yield start, end
        start = end
