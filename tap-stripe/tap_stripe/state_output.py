"""STATE messages paced by their size, so a state of many accounts does not flood stdout.

The tap's state holds an entry per table and account: a few kilobytes for one account,
megabytes for a platform with a thousand. Each moved bookmark asks for a STATE (the SDK
writes the whole state each time), and a run moves bookmarks hundreds of times a second.
Only the newest state matters to the target (it commits the last one its records cover),
so states asked for sooner than the last one's size allows (``BYTES_PER_SECOND``) are
held, and the newest goes out with the next ask after that, or at :meth:`flush`.

A held state is the tap's live state: every bookmark in it moved after its records were
written, so whenever it goes out it covers only records already written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from singer_sdk.singerlib import StateMessage

# STATE bytes written per second at most: ~20 KB states go out every ~20 ms, a 5 MB one
# every 5 s.
BYTES_PER_SECOND = 1_000_000


class MessageWriter(Protocol):
    def write_message(self, message: Any) -> None: ...


class PacedStateWriter:
    """The tap's state writer (the SDK's ``StateWriter`` interface): a STATE when the
    state changed and the last one's size allows, the newest held one at ``flush``."""

    def __init__(
        self,
        writer: MessageWriter,
        *,
        bytes_per_second: float = BYTES_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._bytes_per_second = bytes_per_second
        self._clock = clock
        self._held: dict | None = None
        self._last = b""
        self._next_at = 0.0
        self._lock = threading.Lock()

    def write_state(self, state: dict) -> None:
        """Write ``state`` now, or hold it until the pace allows."""
        with self._lock:
            self._held = state
            if self._clock() >= self._next_at:
                self._write_held()

    def flush(self) -> None:
        """Write the state held, if any (the end of a run)."""
        with self._lock:
            if self._held is not None:
                self._write_held()

    def _write_held(self) -> None:
        state, self._held = self._held, None
        text = orjson.dumps(state)
        if text == self._last:
            return
        self._writer.write_message(StateMessage(value=state))
        self._last = text
        self._next_at = self._clock() + len(text) / self._bytes_per_second
