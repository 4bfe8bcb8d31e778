"""A parent table's output: its own records, and the rows of its child tables.

The rows of an invoice's lines, a subscription's items or a customer's cards arrive
inside the parent (its nested list, completed past Stripe's cut by ``children.py``), so
they are written from the parent's pages, listed or changed, with no request of their
own. The rows of a child Stripe embeds nowhere (a customer's payment methods, a payout's
balance transactions) are listed once per parent: for every parent of a listed page, and
for a parent an event changed when the child has no events of its own. Each row carries
its parent's id in the child table's parent column.

A row a parent no longer lists gets a tombstone: the rows of a deleted parent, and those
an update event's ``previous_attributes`` held but the parent's current list does not
(an item removed from a subscription, a line removed from a draft invoice). A parent
read whole under a table version retires its children under the same version, but for
the children listed between two listings of every parent (``relisting.py``).
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from tap_stripe import shutdown
from tap_stripe.availability import unavailable_reason
from tap_stripe.baton import Baton
from tap_stripe.changes import (
    DELETED_AT,
    ChangedFields,
    RemovedRows,
    iso_time,
)
from tap_stripe.children import GONE_STATUS, list_pages, listed_rows
from tap_stripe.client import StripeAPIError
from tap_stripe.emit import Emitter
from tap_stripe.fetcher import Page
from tap_stripe.lists_under_way import ListsUnderWay
from tap_stripe.records import RawRecord, parent_column
from tap_stripe.run import Run
from tap_stripe.tables import ParentParam, TableSpec

Row = dict[str, Any]


@dataclass
class ChildOutput:
    """One selected child table made of a nested list of its parent, and its emitter."""

    spec: TableSpec
    emitter: Emitter

    @property
    def field(self) -> str:
        """The parent's nested list holding the rows."""
        assert self.spec.parent is not None and self.spec.parent.embedded_field is not None
        return self.spec.parent.embedded_field

    @property
    def column(self) -> str:
        """The rows' column holding the parent's id."""
        assert self.spec.parent is not None
        return self.spec.parent.column

    def rows(self, parent: Mapping[str, Any]) -> list[Row]:
        """The child rows ``parent`` lists, each with the parent's id."""
        return embedded_rows(self.spec, parent)


def embedded_rows(spec: TableSpec, parent: Mapping[str, Any]) -> list[Row]:
    """The rows of embedded-child table ``spec`` that ``parent`` lists (those of the
    table's object, where the list mixes several: a customer's ``sources``), each with
    the parent's id in the table's parent column."""
    assert spec.parent is not None and spec.parent.embedded_field is not None
    return [
        {**row, spec.parent.column: parent["id"]}
        for row in listed_rows(parent, spec.parent.embedded_field)
        if of_table(spec, row)
    ]


def of_table(spec: TableSpec, row: Mapping[str, Any]) -> bool:
    """Whether a row of a list holding several kinds of object is one of ``spec``'s."""
    return row.get("object", spec.object) in spec.object.split("|")


def field_value(row: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` (``price.recurring.usage_type``) in ``row``, or None."""
    value: Any = row
    for name in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


@dataclass
class ListedChild:
    """One selected child table listed once per parent, and its emitter.

    ``parents_of`` gives the rows it is listed for from one of the family's parents when
    its parent is itself a child (a subscription's items, for their usage summaries).
    The lists of the parents are read concurrently, on a pool made on first use, and each
    writes its rows a page at a time as they come (holding the baton): no list is held in
    memory, and the parent's writer need not wait for one page's lists to start the
    next's. A parent whose list Stripe refuses (gone since it was listed, or a list the
    key may not read for that parent) is left out, with one warning per table and a count
    at the end.
    """

    spec: TableSpec
    emitter: Emitter
    run: Run
    logger: logging.Logger
    parents_of: Callable[[Mapping[str, Any]], list[Row]] | None = None
    refused: int = 0
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def column(self) -> str:
        """The rows' column holding the parent's id."""
        assert self.spec.parent is not None
        return self.spec.parent.column

    def has_list(self, parent: Mapping[str, Any]) -> bool:
        """Whether Stripe has this child's list for ``parent`` (``Parent.only_if``)."""
        assert self.spec.parent is not None
        only_if = self.spec.parent.only_if
        return all(field_value(parent, key) == value for key, value in only_if.items())

    def refreshed_by(self, changed: set[str]) -> bool:
        """Whether a parent change of the fields ``changed`` may have changed its rows."""
        assert self.spec.parent is not None
        if self.spec.event_types:
            return False  # the child's own events carry its changes
        refresh_on = self.spec.parent.refresh_on
        return not refresh_on or bool(changed & set(refresh_on))

    def rows(self, parents: Sequence[Mapping[str, Any]]) -> list[Row]:
        """Every row of the lists of these parents of the family (or of their rows this
        child belongs to), each with its parent's id: read, not written."""
        pool = self._executor()
        lists = [pool.submit(self._rows_of, parent_id) for parent_id in self._wanted(parents)]
        with self.run.baton.released():
            return [row for rows in lists for row in rows.result()]

    def start(
        self, parents: Sequence[Mapping[str, Any]], time_extracted: datetime.datetime
    ) -> list[Future[None]]:
        """Start listing and writing the rows of these parents (see :meth:`rows`), stamped
        ``time_extracted``; each future is done once its list is written."""
        wanted = self._wanted(parents)
        if not wanted:
            return []
        pool = self._executor()
        return [pool.submit(self._write_list, parent_id, time_extracted) for parent_id in wanted]

    def _wanted(self, parents: Sequence[Mapping[str, Any]]) -> list[str]:
        """The ids of the parents (or of their rows) that have this child's list."""
        if self.parents_of is not None:
            parents = [row for parent in parents for row in self.parents_of(parent)]
        return [str(parent["id"]) for parent in parents if self.has_list(parent)]

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.run.concurrency,
                    thread_name_prefix=f"tap-stripe-{self.spec.name}",
                )
            return self._pool

    def _write_list(self, parent_id: str, time_extracted: datetime.datetime) -> None:
        """List ``parent_id``'s rows and write each page of them as it comes."""
        column = parent_column(self.column)
        for raws in self._pages_of(parent_id):
            page = Page([column.set(raw, parent_id) for raw in raws], None)
            page.time_extracted = time_extracted
            with self.run.baton.holding():
                if self._closed:
                    return  # the table failed or stopped: nothing more goes out
                self.emitter.emit(page)
            # Not held while the next page is asked for (a wait for the budget).
            del raws, page

    def _rows_of(self, parent_id: str) -> list[Row]:
        return [
            {**orjson.loads(memoryview(raw)), self.column: parent_id}
            for raws in self._pages_of(parent_id)
            for raw in raws
        ]

    def _pages_of(self, parent_id: str) -> Iterator[list[RawRecord]]:
        """The pages of ``parent_id``'s list; none once Stripe refuses it."""
        parent = self.spec.parent
        assert parent is not None
        params: dict[str, Any] = dict(self.spec.filters)
        path = self.spec.path
        if parent.location is ParentParam.PATH:
            path = path.replace(f"{{{parent.parameter}}}", parent_id)
        else:
            params[parent.parameter] = parent_id
        try:
            yield from list_pages(self.run.client, path, params, stream=self.spec.name)
        except StripeAPIError as exc:
            reason = unavailable_reason(exc, self.spec)
            if reason is None and exc.status != GONE_STATUS:
                raise
            self._refused(parent_id, reason or f"HTTP {exc.status} {exc.message}")

    def _refused(self, parent_id: str, reason: str) -> None:
        with self._lock:
            self.refused += 1
            first = self.refused == 1
        if first:
            self.logger.warning(
                "table '%s': Stripe refused the list of %s (%s); such parents are left out",
                self.spec.name,
                parent_id,
                reason,
            )

    def close(self) -> None:
        """Let the pool go, for good: lists not started are dropped, those under way
        write nothing more (not waited for on a stop)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            with self.run.baton.released():
                pool.shutdown(wait=not shutdown.stopping(), cancel_futures=True)
        if self.refused:
            self.logger.warning(
                "table '%s': %d parents' lists were refused and left out",
                self.spec.name,
                self.refused,
            )
            self.refused = 0


class Family:
    """Writes a parent table's pages: the parent's records (``parent`` is ``None`` when only
    its children are selected) and each selected child's rows.

    ``listed_children`` are listed per parent; ``strip`` are the nested lists expanded
    only for children, left out of the parent's rows; ``list_owned``: whether the parents
    of listed pages have the lists of children with events of their own read too (a run
    without change capture), or leave their changes to those events. ``relist``, when
    given, chooses the parents of listed pages whose per-parent lists are read
    (``relisting.py``).
    """

    def __init__(
        self,
        parent: Emitter | None,
        children: Sequence[ChildOutput],
        listed_children: Sequence[ListedChild] = (),
        *,
        strip: Sequence[str] = (),
        list_owned: bool = True,
        relist: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        self.parent = parent
        self.children = tuple(children)
        self.listed_children = tuple(listed_children)
        self.strip = tuple(strip)
        self.list_owned = list_owned
        self.relist = relist
        baton = self.listed_children[0].run.baton if self.listed_children else Baton()
        self._lists = ListsUnderWay(baton)

    @property
    def list_fields(self) -> tuple[str, ...]:
        """The parent's nested lists the selected children are made of."""
        return tuple(dict.fromkeys(child.field for child in self.children))

    def emit(
        self,
        page: Page,
        removed: RemovedRows | None = None,
        changed: ChangedFields | None = None,
    ) -> int:
        """Write a page of current parents and their children; return how many parents.

        ``removed``: rows the parents' events listed before; those a parent does not list
        now are written as tombstones. ``changed``: for parents written from events, the
        fields their events changed (``None``: a listed page).

        The per-parent lists of a page followed by more of its reading (``Page.more``) go
        on while the next pages are written. A page that finishes a window returns once
        the lists of every page below the window's end are written, and any other page
        once all are: the state saved after it (the bookmark never passes a window not
        finished) covers their rows.
        """
        written = self._emit_page(page, removed, changed)
        if page.more:
            self._lists.bound()
        elif page.finished is not None:
            self._lists.wait(below=page.finished.hi)
        else:
            self._lists.wait()
        return written

    def _emit_page(
        self, page: Page, removed: RemovedRows | None, changed: ChangedFields | None
    ) -> int:
        if not (self.children or self.listed_children or self.strip) or not page.raws:
            return self.parent.emit(page) if self.parent is not None else len(page.raws)
        parents = page.records()
        self._emit_parents(parents, page)
        for child in self.children:
            rows = [row for parent in parents for row in child.rows(parent)]
            if removed:
                rows += self._gone(child, parents, removed)
            self._write(child.emitter, rows, page)
        for listed in self.listed_children:
            if changed is None:
                chosen = parents if self.list_owned or not listed.spec.event_types else []
                if self.relist is not None:
                    chosen = [parent for parent in chosen if self.relist(parent)]
            else:
                chosen = [p for p in parents if listed.refreshed_by(changed.get(p["id"], set()))]
            self._lists.add(listed.start(chosen, page.time_extracted), page.created_below)
        return len(parents)

    def _emit_parents(self, parents: list[Row], page: Page) -> None:
        if self.parent is None:
            return
        if not self.strip:
            self.parent.emit(page)
            return
        own = [{k: v for k, v in parent.items() if k not in self.strip} for parent in parents]
        self._write(self.parent, own, page)

    def emit_tombstones(self, page: Page, removed: RemovedRows | None = None) -> None:
        """Write tombstones of parents (``_sdc_deleted_at`` set), and of every child row
        the deleted parents listed, or listed before (``removed``)."""
        if not page.raws:
            return
        parents = page.records()
        self._emit_parents(parents, page)
        for child in self.children:
            rows = [
                {**row, DELETED_AT: parent[DELETED_AT]}
                for parent in parents
                for row in child.rows(parent)
            ]
            if removed:
                rows += self._gone(child, parents, removed)
            self._write(child.emitter, rows, page)

    @staticmethod
    def _gone(child: ChildOutput, parents: list[Row], removed: RemovedRows) -> list[Row]:
        """Tombstones of the rows ``removed`` holds for these parents that they no longer list."""
        tombstones = []
        for parent in parents:
            before = removed.get(parent["id"], {}).get(child.field, {})
            if not before:
                continue
            listed = {row.get("id") for row in listed_rows(parent, child.field)}
            for row_id, (row, gone_at) in before.items():
                if row_id not in listed and of_table(child.spec, row):
                    tombstones.append(
                        {**row, child.column: parent["id"], DELETED_AT: iso_time(gone_at)}
                    )
        return tombstones

    @staticmethod
    def _write(emitter: Emitter, rows: list[Row], page: Page) -> None:
        if not rows:
            return
        out = Page([orjson.dumps(row) for row in rows], None)
        out.time_extracted = page.time_extracted
        emitter.emit(out)

    def flush(self) -> None:
        """Write out every buffered record, once every list started is written."""
        self._lists.wait()
        for emitter in self.emitters():
            emitter.flush()

    def close(self) -> None:
        """Let the per-parent listers' pools go; lists not written by now (a failure or a
        stop: a finished reading ends with a page that waits for them) are dropped."""
        self._lists.drop()
        for listed in self.listed_children:
            listed.close()

    def emitter_of(self, name: str) -> Emitter:
        """The emitter of child table ``name`` (its own events are written with it)."""
        return next(
            c.emitter for c in (*self.children, *self.listed_children) if c.spec.name == name
        )

    def emitters(self) -> list[Emitter]:
        """The parent's emitter (when selected) and the children's."""
        own = [self.parent] if self.parent is not None else []
        children = [child.emitter for child in (*self.children, *self.listed_children)]
        return own + children
