"""The run's one read of ``/v1/events``, dispatched to the tables whose changes it holds.

Each table with change capture says which event types it reads and from when
(:meth:`EventsPass.want`); once every table has planned its run, one pass lists every
event from the oldest of those cursors to the run's start, without a type filter, and
files each event with the tables that read its type and whose cursor it is not older
than. A quiet incremental run so costs one events request in all, instead of a query or
more per table (Stripe takes at most 20 exact types per query). The ``event`` table,
which holds every event, takes its incremental pages from the same pass.

Each table's events wait on disk past a few MB (a catch-up can hold weeks of events) and
are read back a page at a time by the table's change capture, after the pass is done:
the fold needs all of them.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO

import msgspec

from tap_stripe.baton import Baton
from tap_stripe.fetcher import Page
from tap_stripe.windows import Window

EVENTS_PATH = "/v1/events"
# A table's events kept in memory up to this size, on disk past it.
SPOOL_MEMORY_BYTES = 8 << 20
PAGE_EVENTS = 100

# Lists the events created in ``[since, end)``, a page at a time.
FetchEvents = Callable[[int, int], Iterable[Page]]
# The event types of the ``event`` table, which holds every event.
ALL_EVENTS = ("*",)


class _Head(msgspec.Struct):
    """The fields of an event the dispatch reads."""

    type: str = ""
    created: int = 0


_decode_head = msgspec.json.Decoder(_Head).decode


class EventsOf:
    """One table's events of the run: its types, its cursor, what the pass filed."""

    def __init__(self, events: EventsPass, table: str, types: Sequence[str], since: int) -> None:
        self._events = events
        self.table = table
        self.since = since
        self.exact = frozenset(name for name in types if not name.endswith("*"))
        self.prefixes = tuple(name[:-1] for name in types if name.endswith("*"))
        # The window the last page finishes (the ``event`` table's range), if any.
        self.finished: Window | None = None
        # Closed once read back (the table reads its events once).
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MEMORY_BYTES
        )
        self.read: _Read | None = None

    def reads(self, event_type: str) -> bool:
        """Whether this table reads events of ``event_type``."""
        return event_type in self.exact or event_type.startswith(self.prefixes)

    def file(self, raw: bytes) -> None:
        """Keep one event (a JSON object on one line)."""
        self._spool.write(raw)
        self._spool.write(b"\n")

    def __iter__(self) -> Iterator[Page]:
        """The table's events, once the pass that reads them is done."""
        self._events.wait_for(self)
        spool = self._spool
        spool.seek(0)
        raws: list[bytes] = []
        for line in spool:
            raws.append(line.rstrip(b"\n"))
            if len(raws) == PAGE_EVENTS:
                yield Page(raws, None)
                raws = []
        spool.close()
        if raws or self.finished is not None:
            yield Page(raws, self.finished)


class _Read:
    """One listing of the events, from the oldest cursor of its tables, in a thread."""

    def __init__(self, tables: list[EventsOf], end: int, fetch: FetchEvents) -> None:
        self.tables = tables
        self.since = min(table.since for table in tables)
        self.end = end
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._fetch = fetch
        self._routes: dict[str, list[EventsOf]] = {}
        threading.Thread(target=self._run, name="tap-stripe-events", daemon=True).start()

    def _run(self) -> None:
        try:
            for page in self._fetch(self.since, self.end):
                for raw in page.raws:
                    self._dispatch(bytes(raw))
        except BaseException as exc:  # raised by every table waiting for this read
            self.error = exc
        finally:
            self.done.set()

    def _dispatch(self, raw: bytes) -> None:
        head = _decode_head(raw)
        routes = self._routes.get(head.type)
        if routes is None:
            routes = [table for table in self.tables if table.reads(head.type)]
            self._routes[head.type] = routes
        for table in routes:
            if head.created >= table.since:
                table.file(raw)


class EventsPass:
    """The events of every table for one run, listed once."""

    def __init__(self, fetch: FetchEvents, end: int, baton: Baton, logger: logging.Logger) -> None:
        self._fetch = fetch
        self.end = end
        self._baton = baton
        self._logger = logger
        self._pending: list[EventsOf] = []
        self._lock = threading.Lock()

    def want(self, table: str, types: Sequence[str], since: int) -> EventsOf:
        """Ask for ``table``'s events of ``types`` created from ``since`` to the run's start."""
        wanted = EventsOf(self, table, types, since)
        with self._lock:
            self._pending.append(wanted)
        return wanted

    def start(self) -> None:
        """List the events the tables asked for so far (a table asking later, or reading
        its events before this, has its own listing started then)."""
        with self._lock:
            tables, self._pending = self._pending, []
            if not tables:
                return
            read = _Read(tables, self.end, self._fetch)
            for table in tables:
                table.read = read
        self._logger.info(
            "Reading the events of %d tables created since %d, in one pass",
            len(tables),
            read.since,
        )

    def wait_for(self, table: EventsOf) -> None:
        """Wait (without the baton) until ``table``'s events are all filed."""
        if table.read is None:
            self.start()
        read = table.read
        assert read is not None
        with self._baton.released():
            read.done.wait()
        if read.error is not None:
            raise read.error
