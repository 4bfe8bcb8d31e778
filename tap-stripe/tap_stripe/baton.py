"""The writer's baton: many tables read at once, one of them writing at a time.

Every selected table is synced in its own thread, so that while one table's endpoint
waits for its budget the others fill the account's. The SDK's streams, its state and
its message writer are not made for threads, so a table's thread runs only while it
holds the baton, and lets it go only where it waits: for a page, a request or a pool.
The tables' messages then interleave on stdout a page at a time, and every STATE covers
only records already written, whichever thread writes it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Baton:
    """A lock that knows its holder, let go around waits by the thread holding it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None

    def acquire(self) -> None:
        """Take the baton, waiting for the thread that holds it to let it go."""
        self._lock.acquire()
        self._holder = threading.get_ident()

    def release(self) -> None:
        """Let the baton go."""
        self._holder = None
        self._lock.release()

    def held(self) -> bool:
        """Whether the calling thread holds the baton."""
        return self._holder == threading.get_ident()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the baton for the block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Let the baton go for the block, if the calling thread holds it (a wait).

        A thread without it (a fetch worker, a pool) waits without touching it.
        """
        if not self.held():
            yield
            return
        self.release()
        try:
            yield
        finally:
            self.acquire()
