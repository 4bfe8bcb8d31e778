"""Fetching a stream's windows with worker threads, handing pages to the main thread.

Every selected stream starts fetching when the sync starts; the main thread then
consumes the streams one after the other. A stream's queue of fetched pages is bounded,
so a stream waiting its turn stops fetching once its queue is full, and the tap's fetch
slots (one per request in flight) go to the streams that can still use them.
"""

from __future__ import annotations

import datetime
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

import orjson

from tap_stripe.records import RawRecord, cursor_of
from tap_stripe.windows import Scheduler, Window

# Pages waiting for the main thread, per stream; bounds memory (raw bytes, ~250 KB each).
MAX_QUEUED_PAGES = 64


class Page:
    """Raw records of one fetched page, and the window it finished (if it did)."""

    __slots__ = ("finished", "raws", "time_extracted")

    def __init__(self, raws: list[RawRecord], finished: Window | None) -> None:
        self.raws = raws
        self.finished = finished
        self.time_extracted = datetime.datetime.now(datetime.UTC)

    def records(self) -> list[dict]:
        """The records as Python objects (for the paths that must change them)."""
        return [orjson.loads(memoryview(raw)) for raw in self.raws]


class _WorkerFailed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_WORKER_EXIT = object()

FetchPage = Callable[[Window], tuple[list[RawRecord], bool]]


class PageFetcher:
    """Fetches ``windows`` with ``workers`` threads as soon as it is created.

    Iterate it (once, from the main thread) to receive the pages in arrival order; an
    error in a worker stops the others and is raised there after the pages fetched
    before it.
    """

    def __init__(
        self,
        name: str,
        fetch: FetchPage,
        windows: list[Window],
        *,
        workers: int,
        slots: threading.Semaphore | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self._slots = slots
        self._on_close = on_close
        self._scheduler = Scheduler(windows, workers)
        self._pages: queue.Queue = queue.Queue(maxsize=MAX_QUEUED_PAGES)
        self._running = workers
        self._closed = False
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def _slot(self) -> AbstractContextManager:
        return self._slots if self._slots is not None else nullcontext()

    def _work(self) -> None:
        scheduler, pages = self._scheduler, self._pages
        try:
            while (window := scheduler.take()) is not None:
                with self._slot():
                    raws, has_more = self._fetch(window)
                if has_more:
                    last_id, last_created = cursor_of(raws[-1])
                    first_created = cursor_of(raws[0])[1]
                    pages.put(Page(raws, None))
                    scheduler.continue_after(window, first_created, last_created, last_id)
                else:
                    pages.put(Page(raws, window))
                    scheduler.done(window)
        except BaseException as exc:  # handed to the main thread, which raises it
            scheduler.stop()
            pages.put(_WorkerFailed(exc))
        finally:
            pages.put(_WORKER_EXIT)

    def __iter__(self) -> Iterator[Page]:
        error: BaseException | None = None
        try:
            while self._running:
                item = self._pages.get()
                if item is _WORKER_EXIT:
                    self._running -= 1
                elif isinstance(item, _WorkerFailed):
                    error = error or item.error
                elif error is None:
                    yield item
        finally:
            self.close()
        if error is not None:
            raise error

    def close(self) -> None:
        """Stop fetching and wait for the workers to end (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._scheduler.stop()
        while self._running:  # unblock workers stuck on a full queue, then let them end
            if self._pages.get() is _WORKER_EXIT:
                self._running -= 1
        if self._on_close is not None:
            self._on_close()
