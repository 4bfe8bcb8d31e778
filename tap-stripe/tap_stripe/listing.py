"""Pages of one table: its list read window by window, newest first down to a bookmark, a
full list, or its single object."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing
from typing import Any

import orjson

from tap_stripe.children import PAGE_SIZE, NestedLists, list_page
from tap_stripe.fetcher import FetchPage, OnCover, Page, PageFetcher
from tap_stripe.records import CursorOf, RawRecord, cursor_of, cursor_reader
from tap_stripe.run import Run
from tap_stripe.tables import TableSpec
from tap_stripe.windows import Window


def list_params(window: Window | None, base: Mapping[str, Any]) -> dict[str, Any]:
    """The query of one list page: ``base``, the window's ``created`` range and cursor."""
    params: dict[str, Any] = {"limit": PAGE_SIZE, **base}
    if window is not None:
        if window.hi > window.lo:
            params["created[gte]"] = window.lo
            params["created[lt]"] = window.hi
        if window.cursor:
            params["starting_after"] = window.cursor
    return params


def table_params(spec: TableSpec, expand: tuple[str, ...] = ()) -> dict[str, Any]:
    """The filters and expansions every list request of ``spec`` carries (``expand``:
    more fields to expand, for children)."""
    params: dict[str, Any] = dict(spec.filters)
    fields = (*spec.expand, *expand)
    if fields:
        params["expand[]"] = [f"data.{field}" for field in fields]
    return params


def fetch_list(
    run: Run, stream: str, path: str, base: Mapping[str, Any], window: Window | None
) -> tuple[list[RawRecord], bool]:
    """One page of list ``path`` in ``window``: its raw records, whether more follow."""
    raws, has_more = list_page(run.client, path, list_params(window, base), stream=stream)
    return list(raws), has_more and bool(raws)


def window_fetcher(
    run: Run,
    name: str,
    fetch: FetchPage,
    start: int,
    end: int,
    on_close: Callable[[], None] | None = None,
    cursor: CursorOf = cursor_of,
    on_cover: OnCover | None = None,
) -> PageFetcher:
    """Threads fetching the pages of ``created`` in ``[start, end)`` with ``fetch``;
    ``cursor`` reads a record's id and creation time; ``on_cover`` is told the seconds of
    the range each page finished."""
    return PageFetcher(
        name,
        fetch,
        [Window(start, end)],
        workers=run.concurrency,
        baton=run.baton,
        budget=run.page_budget,
        on_close=on_close,
        cursor=cursor,
        on_cover=on_cover,
    )


class Listing:
    """The pages of one table's own endpoint, nested lists completed."""

    def __init__(
        self,
        run: Run,
        spec: TableSpec,
        nested: NestedLists | None,
        logger: logging.Logger,
        *,
        expand: tuple[str, ...] = (),
    ) -> None:
        self.run = run
        self.spec = spec
        self.nested = nested
        self.logger = logger
        self._params = table_params(spec, expand)
        self._cursor = cursor_reader(spec.created_field)

    def fetch(
        self, window: Window | None, *, complete: bool = True
    ) -> tuple[list[RawRecord], bool]:
        """One page of ``window``: its raw records (nested lists completed unless not
        ``complete``) and whether more follow."""
        spec = self.spec
        records, has_more = fetch_list(self.run, spec.name, spec.path, self._params, window)
        if complete:
            self._complete(records)
        return records, has_more

    def _complete(self, records: list[RawRecord]) -> None:
        if self.nested is not None:
            self.nested.complete(records)

    def created_range(self, start: int, end: int) -> Iterable[Page]:
        """The pages of objects created in ``[start, end)``, fetched from now on."""
        if start >= end:
            self.logger.info("Nothing to list: range starts at %d, sync started at %d", start, end)
            return iter(())
        self.logger.info("Reading created in [%d, %d)", start, end)
        on_close = self.nested.close if self.nested is not None else None
        meter = self.run.report.meter(self.run.client.counted(self.spec.name))
        meter.set_range(start, end)
        return window_fetcher(
            self.run,
            f"tap-stripe-{self.spec.name}",
            self.fetch,
            start,
            end,
            on_close=on_close,
            cursor=self._cursor,
            on_cover=meter.cover,
        )

    def _stamped(self, body: bytes) -> bytes:
        """A single object without an id, stamped with Stripe's time (its key)."""
        field = self.spec.snapshot_field
        if field is None:
            return body
        record = orjson.loads(body)
        stripe_time = self.run.stripe_time
        record[field] = int(stripe_time if stripe_time is not None else time.time())
        return orjson.dumps(record)

    def _list_pages(self, *, complete: bool = True) -> Iterator[tuple[list[RawRecord], bool]]:
        """The list's pages without a ``created`` filter, newest first, until the caller
        stops or none follows; nested lists are completed until then (by the caller, when
        not ``complete``)."""
        cursor: str | None = None
        try:
            while True:
                raws, has_more = self.fetch(Window(0, 0, cursor), complete=complete)
                yield raws, has_more
                if not has_more:
                    return
                cursor = cursor_of(raws[-1])[0]
        finally:
            if self.nested is not None:
                self.nested.close()

    def newest_first(self, start: int, end: int) -> Iterator[Page]:
        """The pages of a list without a ``created`` filter, newest first, read down to the
        first object created before ``start``; the last page finishes ``[start, end)``.

        Objects created since ``end`` (the run's start) are written too: the next run
        reads down to its bookmark minus the lookback, so reading them twice is harmless.
        Only the kept objects' nested lists are completed: the last page's older ones
        were written by an earlier run.
        """
        self.logger.info("Reading newest first, down to created %d", start)
        meter = self.run.report.meter(self.run.client.counted(self.spec.name))
        meter.set_range(start, end)
        reached = end
        with closing(self._list_pages(complete=False)) as pages:
            for raws, has_more in pages:
                kept = [raw for raw in raws if self._cursor(raw)[1] >= start]
                oldest = max(start, self._cursor(raws[-1])[1]) if raws else start
                meter.cover(max(0, reached - oldest))
                reached = min(reached, oldest)
                self._complete(kept)
                if not has_more or len(kept) < len(raws):
                    yield Page(kept, Window(start, end))
                    return
                yield Page(kept, None, more=True)

    def whole(self) -> Iterator[Page]:
        """Every page of the table without a ``created`` filter, or its single object."""
        if self.spec.single_object:
            params = {"expand[]": list(self.spec.expand)} if self.spec.expand else None
            body = self.run.client.get_bytes(self.spec.path, params, stream=self.spec.name)
            yield Page([self._stamped(body)], None)
            return
        with closing(self._list_pages()) as pages:
            for raws, has_more in pages:
                yield Page(raws, None, more=has_more)
