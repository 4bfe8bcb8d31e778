"""Syncing every table at once, one thread each, the baton passed between them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from tap_stripe.allocator import hand_back_large_buffers
from tap_stripe.baton import Baton
from tap_stripe.client import Cancelled


class Syncable(Protocol):
    """What of an SDK stream the threads call."""

    name: str

    def sync(self) -> None: ...

    def finalize_state_progress_markers(self) -> None: ...


def sync_at_once(streams: Sequence[Syncable], baton: Baton, stop_all: Callable[[], None]) -> None:
    """Sync each of ``streams`` in its own thread, holding ``baton`` while it runs, and
    raise the first failure once every thread has ended.

    The first failure calls ``stop_all`` (the client's cancel), so the other tables stop
    at their next request with :class:`Cancelled`, which is not theirs to report. The
    threads' page buffers are handed back to the system when freed (``allocator.py``).
    """
    hand_back_large_buffers()
    failures: list[BaseException] = []
    ended: queue.SimpleQueue[str] = queue.SimpleQueue()

    def sync(stream: Syncable) -> None:
        try:
            with baton.holding():
                stream.sync()
                stream.finalize_state_progress_markers()
        except Cancelled:
            pass  # another table failed first
        except BaseException as exc:  # raised by the calling thread below
            failures.append(exc)
            stop_all()
        finally:
            ended.put(stream.name)

    for stream in streams:
        threading.Thread(
            target=sync, args=(stream,), name=f"tap-stripe-{stream.name}", daemon=True
        ).start()
    for _ in streams:
        ended.get()
    if failures:
        raise failures[0]
