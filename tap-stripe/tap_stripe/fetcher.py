"""Fetching a stream's windows with worker threads, handing pages to its writer.

Every selected stream starts fetching when the sync starts, and every stream is written
at once (``baton.py``), a page at a time. Fetched pages wait in a bounded queue per
stream; the fetchers whose pages nobody reads yet (a table's list while its events are
written) share a budget of pages, so they stop once it is used up. Requests in flight
are bounded by the client, whoever makes them.
"""

from __future__ import annotations

import datetime
import queue
import threading
from collections.abc import Callable, Iterator

import orjson

from tap_stripe import shutdown
from tap_stripe.baton import Baton
from tap_stripe.records import CursorOf, RawRecord, cursor_of
from tap_stripe.windows import Scheduler, Window

# Pages waiting for their writer, per stream; bounds memory (raw bytes, ~250 KB each).
MAX_QUEUED_PAGES = 64
# Pages all the fetchers not read yet may hold together.
WAITING_PAGES_BUDGET = 256


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
    """Raw records of one fetched page, and the window it finished (if it did).

    ``more``: more pages of the same reading follow it and no state is saved after it,
    so its writer need not wait for what it started (its children's lists) before going
    on. ``created_below``: every record of the page was created before it (its
    window's end; ``None``: not known).
    """

    __slots__ = ("created_below", "finished", "more", "raws", "time_extracted")

    def __init__(
        self,
        raws: list[RawRecord],
        finished: Window | None,
        *,
        more: bool = False,
        created_below: int | None = None,
    ) -> None:
        self.raws = raws
        self.finished = finished
        self.more = more
        self.created_below = created_below
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
# Told how many seconds of the ``created`` range a page finished reading, and how many of
# them it found empty (below the oldest record of a window's last page).
OnCover = Callable[[float, float], None]


class PageFetcher:
    """Fetches ``windows`` with ``workers`` threads as soon as it is created.

    Iterate it (once, from the stream's writer) to receive the pages in arrival order; an
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
        baton: Baton | None = None,
        budget: PageBudget | None = None,
        on_close: Callable[[], None] | None = None,
        cursor: CursorOf = cursor_of,
        on_cover: OnCover | None = None,
    ) -> None:
        self._fetch = fetch
        self._on_cover = on_cover
        self._cursor = cursor
        self._baton = baton or Baton()
        self._budget = budget or PageBudget()
        self._on_close = on_close
        self.active = False
        self._scheduler = Scheduler(windows, workers)
        self._pages: queue.Queue = queue.Queue(maxsize=MAX_QUEUED_PAGES)
        self._running = workers
        self.closed = False
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def _work(self) -> None:
        scheduler, pages = self._scheduler, self._pages
        try:
            while (window := scheduler.take()) is not None:
                self._fetch_page(window)
        except BaseException as exc:  # handed to the main thread, which raises it
            scheduler.stop()
            pages.put(_WorkerFailed(exc))
        finally:
            pages.put(_WORKER_EXIT)

    def _fetch_page(self, window: Window) -> None:
        """Fetch the next page of ``window`` and hand it on. A call of its own, so that
        its page is let go with it: a worker waiting for its next request's budget (for
        seconds at the account's limit) holds no page, and the page's body with it."""
        raws, has_more = self._fetch(window)
        if has_more:
            last_id, last_created = self._cursor(raws[-1])
            first_created = self._cursor(raws[0])[1]
            self._put(Page(raws, None, more=True, created_below=window.hi))
            self._scheduler.continue_after(window, first_created, last_created, last_id)
            self._covered(window, raws, continued=True)
        else:
            self._put(Page(raws, window))
            self._scheduler.done(window)
            self._covered(window, raws, continued=False)

    def _covered(self, window: Window, raws: list[RawRecord], *, continued: bool) -> None:
        """Tell how much of the range ``window``'s page read (down to its oldest record,
        or to the window's start on its last page), and how much of that
        holds no object: above the page's newest record, and on the last page below its
        oldest (all of it when the page is empty)."""
        if self._on_cover is None:
            return
        created = [self._cursor(raws[0])[1], self._cursor(raws[-1])[1]] if raws else []
        reached = created[1] if continued else window.lo
        top = window.unread_top
        if not created:
            empty = max(0, top - window.lo)
        else:
            newest, oldest = created
            empty = max(0, top - newest - 1)
            if not continued:
                empty += max(0, oldest - window.lo)
        self._on_cover(max(0, top - reached), empty)

    def _put(self, page: Page) -> None:
        self._budget.acquire(self)
        self._pages.put(page)

    def _get(self) -> object:
        """The next item, letting the baton go while none is there."""
        try:
            item = self._pages.get_nowait()
        except queue.Empty:
            with self._baton.released():
                item = self._pages.get()
        if isinstance(item, Page):
            self._budget.release()
        return item

    def __iter__(self) -> Iterator[Page]:
        self.active = True
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
                del item  # not held while the next one is waited for
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
