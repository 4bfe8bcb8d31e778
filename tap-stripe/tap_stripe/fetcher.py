"""Fetching a stream's windows with worker threads, handing pages to the main thread.

Every selected stream starts fetching when the sync starts; the main thread then
consumes the streams one after the other. Fetched pages wait in a bounded queue per
stream, and the streams still waiting for their turn share a budget of pages, so they
stop fetching once it is used up and the tap's fetch slots (one per request in flight)
go to the streams that can still use them.
"""

from __future__ import annotations

import datetime
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import orjson

from tap_stripe import shutdown
from tap_stripe.records import CursorOf, RawRecord, cursor_of
from tap_stripe.windows import Scheduler, Window

# Pages waiting for the main thread, per stream; bounds memory (raw bytes, ~250 KB each).
MAX_QUEUED_PAGES = 256
# Pages all the streams still waiting for their turn may hold together.
WAITING_PAGES_BUDGET = 256


class FetchSlots:
    """Requests in flight at once, shared by every stream's fetchers.

    The stream being written comes first: the streams waiting for their turn get a slot
    only while it has no window waiting to be fetched (its last pages, or a small
    stream), so prefetching fills the gaps instead of slowing the stream being written.
    """

    # Waiting streams re-check this often whether the current stream still wants slots.
    POLL_SECONDS = 0.02

    def __init__(self, size: int) -> None:
        self._free = max(1, size)
        self._cond = threading.Condition()
        self.current: PageFetcher | None = None

    def yields_to_current(self, fetcher: PageFetcher) -> bool:
        """Whether ``fetcher`` must leave free slots to the stream being written.

        A waiting stream's first page is never held back: it splits the stream's range
        into windows, ready to use every slot the moment the current stream winds down.
        """
        current = self.current
        return (
            current is not None
            and current is not fetcher
            and fetcher.pages_fetched > 0
            and not current.closed
            and current.has_waiting_windows()
        )

    @contextmanager
    def slot(self, fetcher: PageFetcher) -> Iterator[None]:
        """Hold one request slot for ``fetcher``."""
        with self._cond:
            while self._free == 0 or self.yields_to_current(fetcher):
                if fetcher.closed:
                    break
                self._cond.wait(self.POLL_SECONDS)
            self._free -= 1
        try:
            yield
        finally:
            with self._cond:
                self._free += 1
                self._cond.notify_all()


class PageBudget:
    """How many fetched pages the streams waiting for their turn may hold together.

    The stream being written never waits for the budget (it could not be freed
    otherwise); the others stop fetching while the budget is used up, whichever of them
    holds it, so the next stream in line can keep fetching while the current one ends.
    """

    def __init__(self, limit: int = WAITING_PAGES_BUDGET) -> None:
        self.limit = limit
        self._used = 0
        self._cond = threading.Condition()

    def acquire(self, fetcher: PageFetcher) -> None:
        """Take room for one page of ``fetcher``."""
        with self._cond:
            while self._used >= self.limit and not (fetcher.active or fetcher.closed):
                self._cond.wait()
            self._used += 1

    def release(self) -> None:
        """A page left its queue."""
        with self._cond:
            self._used -= 1
            self._cond.notify_all()

    def wake(self) -> None:
        """A fetcher became active or closed: let its waiting workers look again."""
        with self._cond:
            self._cond.notify_all()


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
        slots: FetchSlots | None = None,
        budget: PageBudget | None = None,
        on_close: Callable[[], None] | None = None,
        cursor: CursorOf = cursor_of,
    ) -> None:
        self._fetch = fetch
        self._cursor = cursor
        self._slots = slots
        self._budget = budget or PageBudget()
        self._on_close = on_close
        self.active = False
        self.pages_fetched = 0
        self._scheduler = Scheduler(windows, workers)
        self._pages: queue.Queue = queue.Queue(maxsize=MAX_QUEUED_PAGES)
        self._running = workers
        self.closed = False
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def _slot(self) -> AbstractContextManager:
        return self._slots.slot(self) if self._slots is not None else nullcontext()

    def has_waiting_windows(self) -> bool:
        """Whether windows of this stream wait for a worker (a hint, not locked)."""
        return self._scheduler.waiting() > 0

    def _work(self) -> None:
        scheduler, pages = self._scheduler, self._pages
        try:
            while (window := scheduler.take()) is not None:
                with self._slot():
                    raws, has_more = self._fetch(window)
                if has_more:
                    last_id, last_created = self._cursor(raws[-1])
                    first_created = self._cursor(raws[0])[1]
                    self._put(Page(raws, None))
                    scheduler.continue_after(window, first_created, last_created, last_id)
                else:
                    self._put(Page(raws, window))
                    scheduler.done(window)
        except BaseException as exc:  # handed to the main thread, which raises it
            scheduler.stop()
            pages.put(_WorkerFailed(exc))
        finally:
            pages.put(_WORKER_EXIT)

    def _put(self, page: Page) -> None:
        self._budget.acquire(self)
        self._pages.put(page)
        self.pages_fetched += 1

    def _get(self) -> object:
        item = self._pages.get()
        if isinstance(item, Page):
            self._budget.release()
        return item

    def __iter__(self) -> Iterator[Page]:
        self.active = True
        if self._slots is not None:
            self._slots.current = self
        self._budget.wake()
        error: BaseException | None = None
        try:
            while self._running:
                item = self._get()
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
        """Stop fetching and wait for the workers to end (idempotent).

        When the tap is stopping (``shutdown.py``) the workers are not waited for: one may
        be in a request for up to its timeout, and the process ends without them.
        """
        if self.closed:
            return
        self.closed = True
        self._scheduler.stop()
        self._budget.wake()
        if shutdown.stopping():
            return
        while self._running:  # unblock workers stuck on a full queue, then let them end
            if self._get() is _WORKER_EXIT:
                self._running -= 1
        if self._on_close is not None:
            self._on_close()
