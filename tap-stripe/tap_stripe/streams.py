"""One generic Stripe stream, built from a :class:`~tap_stripe.tables.TableSpec`.

The stream owns its record path instead of the SDK's per-record loop:

* pages are fetched by a pool of threads, window by window (see ``windows.py``), all
  under the client's one rate budget;
* the main thread writes each record's JSON exactly as Stripe sent it (see
  ``records.py``: no conform/validate pass, no parse and re-serialise), and re-announces
  the SCHEMA when a record carries a top-level property the last SCHEMA did not declare;
* the ``created`` bookmark is managed here (not by the SDK's max-value logic, which
  would be wrong for newest-first pages and out-of-order windows): it moves to the end
  of the contiguous prefix of completed windows, after their records are written.
"""

from __future__ import annotations

import copy
import datetime
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

import msgspec
import orjson
from singer_sdk import Stream
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import (
    ActivateVersionMessage,
    Metadata,
    MetadataMapping,
    RecordMessage,
    SchemaMessage,
)

from tap_stripe import shutdown
from tap_stripe.changes import (
    DELETED_AT,
    EVENT_RETENTION_SECONDS,
    ChangeSet,
    cursor_usable,
    event_queries,
    is_deleted_stub,
    iso_time,
    tombstone,
)
from tap_stripe.client import StripeAPIError, StripeClient, StripeError
from tap_stripe.fetcher import FetchPage, Page, PageFetcher
from tap_stripe.output import FastSingerWriter
from tap_stripe.records import KeyCheck, NestedListCheck, RawRecord, cursor_of, split_page
from tap_stripe.state import iso, times_after
from tap_stripe.tables import TableSpec
from tap_stripe.windows import Frontier, Window

if TYPE_CHECKING:
    from singer_sdk.helpers import types

    from tap_stripe.tap import TapStripe

PAGE_SIZE = 100
# State key of the table version of a full read that a run stopped before its end.
UNFINISHED_VERSION = "unfinished_table_version"
EVENTS_PATH = "/v1/events"
# Objects re-fetched by id per round: enough to keep every request slot busy.
REFETCH_CHUNK = 500


def _at_most(value: int, ceiling: int | None) -> int:
    return value if ceiling is None else min(value, ceiling)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def infer_schema(value: Any) -> dict:
    """A permissive JSON Schema for a property first seen with ``value``."""
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "integer"
    elif isinstance(value, float):
        kind = "number"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, dict):
        kind = "object"
    elif isinstance(value, list):
        kind = "array"
    else:
        return {}
    return {"type": [kind, "null"]}


@dataclass(frozen=True)
class ReadPlan:
    """What one run reads of a table; decided once, when the table's reading starts.

    Attributes:
        start, end: The ``created`` range to list, ``end`` being the run's start.
        bookmark: The ``created`` bookmark the run started from.
        events_since: Read the table's events from here (incremental change capture).
        version: Table version of a full read that retires the rows it did not see
            (Singer ACTIVATE_VERSION); set for tables whose objects change or go, on
            the run that starts the read and on each run that resumes it.
        catch_up: A full re-read because the events could not be used: the bookmark
            stays put until the read is complete.
    """

    start: int
    end: int
    bookmark: int | None = None
    events_since: int | None = None
    version: int | None = None
    catch_up: bool = False


@dataclass
class _Reading:
    """One run's reading of a table: its plan, its listed pages, its events' pages."""

    plan: ReadPlan
    pages: Iterable[Page]
    events: list[PageFetcher]

    def close(self) -> None:
        """Stop whatever is still being fetched."""
        for fetcher in (self.pages, *self.events):
            if isinstance(fetcher, PageFetcher):
                fetcher.close()


class StripeStream(Stream):
    """A Stripe table: a paged list endpoint, or a single object (``account``)."""

    is_sorted = False

    def __init__(self, tap: TapStripe, spec: TableSpec, schema: dict) -> None:
        self.spec = spec
        super().__init__(tap, schema=schema, name=spec.name)
        self.primary_keys = spec.key_properties
        self.replication_key = spec.replication_key
        self._stripe_tap = tap
        self._nested_check = NestedListCheck(spec.nested_lists) if spec.nested_lists else None
        self._nested_pool: ThreadPoolExecutor | None = None
        self._prefetched: _Reading | None = None
        self._nested_lock = threading.Lock()

    @property
    def metadata(self) -> MetadataMapping:
        """The SDK's metadata, with the tombstone column always selected.

        A field selection that left ``_sdc_deleted_at`` out (or a catalog written before
        it existed) would turn every tombstone into a plain upsert of a live-looking row.
        """
        metadata = super().metadata
        entry = metadata.get(("properties", DELETED_AT))
        if entry is not None and self._captures_changes:
            entry.inclusion = Metadata.InclusionType.AUTOMATIC
        return metadata

    @property
    def client(self) -> StripeClient:
        """The tap's one HTTP client."""
        return self._stripe_tap.client

    # ---- reading -------------------------------------------------------------------

    def _list_params(self, window: Window | None, base: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": PAGE_SIZE, **base}
        if window is not None:
            if window.hi > window.lo:
                params["created[gte]"] = window.lo
                params["created[lt]"] = window.hi
            if window.cursor:
                params["starting_after"] = window.cursor
        return params

    @property
    def _table_params(self) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.spec.filters)
        if self.spec.expand:
            params["expand[]"] = [f"data.{field}" for field in self.spec.expand]
        return params

    def _complete_nested_lists(self, raws: list[RawRecord]) -> None:
        """Replace records whose nested lists Stripe cut short (at 10) by complete ones.

        The records of a page are completed concurrently: one after the other, a page
        of invoices with long line lists would cost a round trip per invoice.
        """
        check = self._nested_check
        if check is None:
            return
        cut = [index for index, raw in enumerate(raws) if check.cut_short(raw)]
        if not cut:
            return
        with self._nested_lock:
            if self._nested_pool is None:
                self._nested_pool = ThreadPoolExecutor(
                    max_workers=self._stripe_tap.concurrency,
                    thread_name_prefix=f"tap-stripe-{self.name}-nested",
                )
        completed = self._nested_pool.map(self._completed_record, [raws[i] for i in cut])
        for index, raw in zip(cut, completed, strict=True):
            raws[index] = raw

    def _completed_record(self, raw: RawRecord) -> bytes:
        record = orjson.loads(memoryview(raw))
        for field, template in self.spec.nested_lists.items():
            self._complete_nested_list(record, field, template)
        return orjson.dumps(record)

    def _complete_nested_list(self, record: dict, field: str, template: str) -> None:
        nested = record.get(field)
        if not (isinstance(nested, dict) and nested.get("has_more")):
            return
        data = nested.get("data") or []
        path, _, query = template.format(id=record["id"]).partition("?")
        base = dict(parse_qsl(query))
        cursor = data[-1]["id"] if data else None
        while True:
            params: dict[str, Any] = {**base, "limit": PAGE_SIZE}
            if cursor:
                params["starting_after"] = cursor
            page = self.client.get(path, params, stream=self.name)
            items = page.get("data") or []
            data.extend(items)
            if not (page.get("has_more") and items):
                break
            cursor = items[-1]["id"]
        nested["data"] = data
        nested["has_more"] = False

    def _fetch(self, window: Window | None) -> tuple[list[RawRecord], bool]:
        """One page of ``window``: its raw records and whether more follow."""
        records, has_more = self._fetch_list(self.spec.path, self._table_params, window)
        self._complete_nested_lists(records)
        return records, has_more

    def _fetch_list(
        self, path: str, base: Mapping[str, Any], window: Window | None
    ) -> tuple[list[RawRecord], bool]:
        """One page of list ``path`` in ``window``: its raw records, whether more follow."""
        params = self._list_params(window, base)
        body = self.client.get_bytes(path, params, stream=self.name)
        try:
            raws, has_more = split_page(body)
        except msgspec.DecodeError as exc:
            msg = f"stream '{self.name}': Stripe sent a list that could not be read: {exc}"
            raise StripeError(msg) from exc
        return list(raws), has_more and bool(raws)

    def _close_nested_pool(self) -> None:
        with self._nested_lock:
            if self._nested_pool is not None:
                self._nested_pool.shutdown(wait=True)
                self._nested_pool = None

    def _pages_full_table(self) -> Iterator[Page]:
        if self.spec.single_object:
            params = {"expand[]": list(self.spec.expand)} if self.spec.expand else None
            body = self.client.get_bytes(self.spec.path, params, stream=self.name)
            yield Page([body], None)
            return
        cursor: str | None = None
        try:
            while True:
                raws, has_more = self._fetch(Window(0, 0, cursor))
                yield Page(raws, None)
                if not has_more:
                    return
                cursor = cursor_of(raws[-1])[0]
        finally:
            self._close_nested_pool()

    # ---- state ---------------------------------------------------------------------

    @property
    def _incremental(self) -> bool:
        """The catalog may force FULL_TABLE: then read from start_date and keep no bookmark."""
        return self.replication_method == "INCREMENTAL"

    @property
    def _captures_changes(self) -> bool:
        """Whether updates and deletes of this table are read from its events."""
        return bool(self.spec.event_types)

    def _state_number(self, key: str) -> int | None:
        """The stream state's ``key`` as an integer, if it holds a number."""
        value = self.get_context_state(None).get(key)
        return int(value) if isinstance(value, (int, float)) else None

    @property
    def _lookback(self) -> int:
        return int(self.config.get("lookback_window", 300))

    def state_after(self, now: float) -> bool:
        """Whether the bookmark or events cursor is later than ``now``."""
        return bool(times_after(self.get_context_state(None), now))

    def clamp_state(self, now: float, clock: str) -> None:
        """Move the bookmark and events cursor later than ``now`` (on ``clock``) back to
        ``now`` minus the lookback.

        Such a time cannot be right (a state edited by hand, or written by a machine whose
        clock ran far ahead) and would hide every object created before it, forever.
        """
        state = self.get_context_state(None)
        late = times_after(state, now)
        if not late:
            return
        clamped = int(now) - self._lookback
        state.update(dict.fromkeys(late, clamped))
        several = len(late) > 1
        self.logger.warning(
            "stream '%s': the state's %s %s later than %s (%s): %s cannot be right, so %s "
            "%s (that clock minus the %d s lookback)",
            self.name,
            " and ".join(f"{key} {iso(value)}" for key, value in late.items()),
            "are" if several else "is",
            clock,
            iso(now),
            "they" if several else "it",
            "both become" if several else "it becomes",
            iso(clamped),
            self._lookback,
        )

    def _bookmark(self) -> int | None:
        if not self._incremental:
            return None
        if self.get_context_state(None).get("replication_key") != self.replication_key:
            return None
        return self._state_number("replication_key_value")

    def _save_progress(
        self,
        *,
        bookmark: int | None = None,
        events_cursor: int | None,
        unfinished_version: int | None = None,
    ) -> None:
        """Move the bookmark and/or the events cursor, and emit the state.

        Both are times on Stripe's clock: a machine whose clock runs ahead of Stripe's
        would otherwise leave a gap that the lookback does not cover. Neither moves past
        Stripe's time at its first answer of the run (its ``Date``).

        ``unfinished_version`` is the table version of a full read not complete yet: the
        run that resumes it writes under that version and retires the rest at its end.
        """
        if not self._incremental:
            return
        state = self.get_context_state(None)
        if unfinished_version is None:
            state.pop(UNFINISHED_VERSION, None)
        else:
            state[UNFINISHED_VERSION] = unfinished_version
        stripe_time = self.client.stripe_time_at_start
        ceiling = int(stripe_time) - 1 if stripe_time is not None else None
        if bookmark is not None:
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = _at_most(bookmark, ceiling)
        if events_cursor is not None and self._captures_changes:
            state["events_cursor"] = _at_most(events_cursor, ceiling)
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _floor(self) -> int:
        """``start_date`` as unix seconds (0 without one)."""
        start_date = self.config.get("start_date")
        if not start_date:
            return 0
        parsed = datetime.datetime.fromisoformat(str(start_date).replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return int(parsed.timestamp())

    def _plan(self) -> ReadPlan:
        """Decide what this run reads: a full read, an increment, or a catch-up."""
        stripe_time = self.client.stripe_time_at_start
        if stripe_time is not None:
            self.clamp_state(stripe_time, "Stripe's clock")
        floor = self._floor()
        end = int(self._stripe_tap.sync_started_at)
        lookback = self._lookback
        bookmark = self._bookmark()
        version = int(self._stripe_tap.sync_started_at * 1000)
        if bookmark is None:
            return ReadPlan(floor, end, version=version if self._captures_changes else None)
        increment = max(floor, bookmark - lookback)
        if not self._captures_changes:
            return ReadPlan(increment, end, bookmark)
        cursor = self._state_number("events_cursor")
        if cursor is not None and cursor_usable(cursor, lookback, end):
            return ReadPlan(
                increment,
                end,
                bookmark,
                events_since=cursor - lookback,
                version=self._state_number(UNFINISHED_VERSION),
            )
        if cursor is None:
            why = "the state has a bookmark but no events cursor (written before change capture)"
        else:
            why = (
                f"its events cursor {iso_time(cursor)} is older than the "
                f"{EVENT_RETENTION_SECONDS // 86_400} days Stripe keeps events (less a day)"
            )
        self.logger.warning(
            "stream '%s': CATCH-UP: %s, so updates and deletes since then cannot be read from "
            "events; re-reading every %s created since %s instead. Rows no longer in Stripe are "
            "marked deleted when the re-read completes; an interrupted re-read starts over.",
            self.name,
            why,
            self.name,
            iso_time(floor),
        )
        return ReadPlan(floor, end, bookmark, version=version, catch_up=True)

    def _start_reading(self, *, with_events: bool = True) -> _Reading:
        """Plan this run's reading of the table and start fetching its pages (and events)."""
        if self.spec.replication_key is None:
            return _Reading(ReadPlan(0, 0), self._pages_full_table(), [])
        plan = self._plan()
        events = self._event_fetchers(plan) if with_events else []
        if plan.start >= plan.end:
            self.logger.info(
                "Nothing to list: range starts at %d, sync started at %d", plan.start, plan.end
            )
            return _Reading(plan, iter(()), events)
        self.logger.info("Reading created in [%d, %d)", plan.start, plan.end)
        listed = self._fetcher(
            "", self._fetch, plan.start, plan.end, on_close=self._close_nested_pool
        )
        return _Reading(plan, listed, events)

    def _fetcher(
        self,
        kind: str,
        fetch: FetchPage,
        start: int,
        end: int,
        on_close: Callable[[], None] | None = None,
    ) -> PageFetcher:
        """Threads fetching the pages of ``created`` in ``[start, end)`` with ``fetch``."""
        return PageFetcher(
            f"tap-stripe-{self.name}{kind}",
            fetch,
            [Window(start, end)],
            workers=self._stripe_tap.concurrency,
            slots=self._stripe_tap.fetch_slots,
            budget=self._stripe_tap.page_budget,
            on_close=on_close,
        )

    # ---- change capture ------------------------------------------------------------

    def _event_fetchers(self, plan: ReadPlan) -> list[PageFetcher]:
        """Fetchers of the table's events since ``plan.events_since``, one per query."""
        if plan.events_since is None or plan.events_since >= plan.end:
            return []
        return [
            self._fetcher(
                "-events",
                partial(self._fetch_list, EVENTS_PATH, query),
                plan.events_since,
                plan.end,
            )
            for query in event_queries(self.spec.event_types)
        ]

    def _capture_changes(self, reading: _Reading, emitter: _Emitter) -> int:
        """Write what changed since the events cursor, then move the cursor.

        Runs before the ``created`` pages are written: those were listed after the run
        started, so where both hold an object the listed (newer) state is written last.
        Objects go out a page at a time, so memory holds one page, not every change.
        """
        plan = reading.plan
        assert plan.events_since is not None
        with ChangeSet(self.spec, self.client.api_version, self._floor()) as changes:
            try:
                for fetcher in reading.events:
                    for page in fetcher:
                        changes.add(page.raws)
            except StripeAPIError as exc:
                if exc.status != 403:
                    raise
                msg = (
                    f"{exc}; updates and deletes of '{self.name}' are read from /v1/events: "
                    "give the key read access to Events"
                )
                raise StripeError(msg) from exc
            found = changes.changes()
            gone = dict(found.tombstones)
            changed = 0
            for ids in _chunks(found.upserts, PAGE_SIZE):
                changed += self._emit_current(emitter, [changes.payload(i) for i in ids])
            for ids in _chunks(found.refetch, REFETCH_CHUNK):
                current: list[RawRecord] = []
                for object_id, body in zip(ids, self._refetch(ids), strict=True):
                    if body is None:
                        gone[object_id] = int(time.time())
                    else:
                        current.append(body)
                changed += self._emit_current(emitter, current)
            for ids in _chunks(list(gone), PAGE_SIZE):
                tombstones = [tombstone(changes.payload(i), gone[i]) for i in ids]
                emitter.emit(Page(tombstones, None))
        self.logger.info(
            "Change capture: %d events since %s; %d objects changed (%d re-fetched), %d deleted",
            found.events,
            iso_time(plan.events_since),
            changed,
            len(found.refetch),
            len(gone),
        )
        emitter.flush()
        self._save_progress(events_cursor=plan.end, unfinished_version=plan.version)
        return changed + len(gone)

    def _emit_current(self, emitter: _Emitter, raws: list[RawRecord]) -> int:
        """Write changed objects, their nested lists completed."""
        self._complete_nested_lists(raws)
        return emitter.emit(Page(raws, None))

    def _refetch(self, ids: list[str]) -> list[bytes | None]:
        """Retrieve objects by id, concurrently; ``None`` for each that is gone (a 404,
        or Stripe's ``deleted: true`` stub)."""
        pool = ThreadPoolExecutor(
            max_workers=self._stripe_tap.concurrency,
            thread_name_prefix=f"tap-stripe-{self.name}-refetch",
        )
        try:
            return list(pool.map(self._refetch_one, ids))
        finally:
            # On a failure, the ids not started yet are dropped rather than fetched; on a
            # stop (shutdown.py), the requests under way are not waited for either.
            pool.shutdown(wait=not shutdown.stopping(), cancel_futures=True)

    def _refetch_one(self, object_id: str) -> bytes | None:
        params = {"expand[]": list(self.spec.expand)} if self.spec.expand else None
        path = f"{self.spec.path}/{quote(object_id, safe='')}"
        try:
            body = self.client.get_bytes(path, params, stream=self.name)
        except StripeAPIError as exc:
            if exc.status != 404:
                raise
            return None
        return None if is_deleted_stub(body) else body

    # ---- prefetch ------------------------------------------------------------------

    def prefetch(self) -> None:
        """Start fetching now, ahead of this stream's turn to be written."""
        if self._prefetched is None and self.spec.replication_key is not None:
            self._prefetched = self._start_reading()

    def cancel_prefetch(self) -> None:
        """Stop any fetching this stream still does (its turn never came, or failed)."""
        if self._prefetched is not None:
            self._prefetched.close()
            self._prefetched = None

    # ---- emitting ------------------------------------------------------------------

    def _sync_records(
        self,
        context: types.Context | None = None,
        *,
        write_messages: bool = True,
    ) -> Iterable[dict]:
        """Fetch and emit every record, managing the bookmark (replaces the SDK loop).

        The bookmark moves to the end of the completed windows as they complete. A full
        read that retires rows (``plan.version``) moves it past the end of its range only
        after its ACTIVATE_VERSION is out, and a catch-up not before it is complete:
        state that says the table is current must not precede the deletes.
        """
        if not write_messages:
            return list(self.get_records(context))
        reading = self._prefetched or self._start_reading()
        self._prefetched = None
        plan = reading.plan
        emitter = _Emitter(self, version=plan.version)
        frontier = Frontier(plan.start)
        events_cursor = plan.end if self._captures_changes else None
        with self.get_record_counter() as counter, self.get_sync_timer():
            try:
                if reading.events:
                    counter.increment(self._capture_changes(reading, emitter))
                for page in reading.pages:
                    counter.increment(emitter.emit(page))
                    if page.finished is None:
                        continue
                    if (
                        frontier.complete(page.finished)
                        and (plan.bookmark is None or frontier.position > plan.bookmark)
                        and not plan.catch_up
                        and not (plan.version is not None and frontier.position >= plan.end)
                    ):
                        self._save_progress(
                            bookmark=frontier.position,
                            events_cursor=events_cursor,
                            unfinished_version=plan.version,
                        )
            finally:
                reading.close()
                emitter.flush()
                self.logger.info(
                    "%d requests, %d answered 429",
                    self.client.requests_by_stream[self.name],
                    self.client.throttled_by_stream[self.name],
                )
        if plan.version is not None and plan.start < plan.end <= frontier.position:
            self._activate_version(plan.version)
            self._save_progress(bookmark=frontier.position, events_cursor=events_cursor)
        self._write_state_message()
        return ()

    def _activate_version(self, version: int) -> None:
        """Tell the target that rows not written under ``version`` are gone from Stripe."""
        for stream_map in self.stream_maps:
            self._tap.write_message(ActivateVersionMessage(stream_map.stream_alias, version))

    def get_records(self, context: types.Context | None) -> Iterable[dict]:
        """Every record, without the tap's bookmarking (for SDK callers such as tests)."""
        for page in self._start_reading(with_events=False).pages:
            yield from page.records()


class _Emitter:
    """Writes a stream's records: exact, schema re-announced when needed."""

    def __init__(self, stream: StripeStream, *, version: int | None = None) -> None:
        self.stream = stream
        self.version = version
        self.writer = stream._tap.message_writer
        maps = stream.stream_maps
        deselected = [bc for bc, selected in stream.mask.items() if bc and not selected]
        self.drop_top_level = frozenset(
            bc[1] for bc in deselected if len(bc) == 2 and bc[0] == "properties"
        )
        self.prune_nested = any(len(bc) > 2 for bc in deselected)
        # Records go out as orjson lines unless stream maps are configured, and as
        # Stripe's raw bytes unless the selection also removes properties.
        self.direct = (
            isinstance(self.writer, FastSingerWriter)
            and len(maps) == 1
            and isinstance(maps[0], SameRecordTransform)
            and maps[0].stream_alias == stream.name
        )
        self.selective = bool(deselected)
        self.raw = self.direct and not self.selective
        self.schemas = {m.stream_alias: m.transformed_schema for m in maps}
        self.keys = KeyCheck(frozenset(stream.schema.get("properties", {})) - self.drop_top_level)
        self.prefix = b'{"type":"RECORD","stream":' + orjson.dumps(stream.name) + b',"record":'
        self.version_field = b',"version":%d' % version if version is not None else b""

    def emit(self, page: Page) -> int:
        """Write ``page``'s records; return how many."""
        raws = page.raws
        if not raws:
            return 0
        suffix = self.version_field + b',"time_extracted":' + orjson.dumps(page.time_extracted)
        suffix += b"}\n"
        if self.raw:
            if not self.keys.all_known(raws):
                for record in page.records():
                    self._announce_unknown(record)
            prefix = self.prefix
            parts: list[RawRecord] = []
            for raw in raws:
                parts += (prefix, raw, suffix)
            self.writer.write_record_line(b"".join(parts))
            return len(raws)
        records = page.records()
        for record in records:
            if self.selective:
                self._prune(record)
            else:
                self._announce_unknown(record)
        if self.direct:
            dumps = orjson.dumps
            prefix = self.prefix
            self.writer.write_record_line(
                b"".join([prefix + dumps(record) + suffix for record in records])
            )
        else:
            self._emit_mapped(records, page.time_extracted)
        return len(records)

    def _prune(self, record: dict) -> None:
        """Apply the catalog's field selection.

        A selection that leaves fields out lists what the user wants: top-level
        properties it does not know (added by Stripe later) are left out too.
        """
        known = self.keys.known
        for name in [name for name in record if name not in known]:
            del record[name]
        if self.prune_nested:
            pop_deselected_record_properties(record, self.stream.schema, self.stream.mask)

    def _announce_unknown(self, record: dict) -> None:
        """Re-send the SCHEMA with the properties of ``record`` it does not declare."""
        known = self.keys.known
        new = [name for name in record if name not in known]
        if not new:
            return
        self.stream.logger.info(
            "Stripe sent properties the schema does not declare; re-announcing the schema with: %s",
            ", ".join(new),
        )
        for alias, schema in self.schemas.items():
            updated = copy.deepcopy(schema)
            properties = updated.setdefault("properties", {})
            for name in new:
                properties.setdefault(name, infer_schema(record[name]))
            self.schemas[alias] = updated
            self.stream._tap.write_message(
                SchemaMessage(
                    alias,
                    updated,
                    list(self.stream.primary_keys or []),
                    [self.stream.replication_key] if self.stream.replication_key else None,
                )
            )
        self.keys = KeyCheck(known | frozenset(new))

    def _emit_mapped(self, records: list[dict], time_extracted: datetime.datetime) -> None:
        """Slow path for configured stream maps: the SDK's mappers, still no conform."""
        for record in records:
            for stream_map in self.stream.stream_maps:
                mapped = stream_map.transform(record)
                if mapped is not None:
                    self.stream._tap.write_message(
                        RecordMessage(
                            stream=stream_map.stream_alias,
                            record=mapped,
                            version=self.version,
                            time_extracted=time_extracted,
                        )
                    )

    def flush(self) -> None:
        """Write out buffered records."""
        if isinstance(self.writer, FastSingerWriter):
            self.writer.flush()
