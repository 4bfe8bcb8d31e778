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
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
import orjson
from singer_sdk import Stream
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage, SchemaMessage

from tap_stripe.client import StripeClient, StripeError
from tap_stripe.fetcher import Page, PageFetcher
from tap_stripe.output import FastSingerWriter
from tap_stripe.records import KeyCheck, NestedListCheck, RawRecord, cursor_of, split_page
from tap_stripe.tables import TableSpec
from tap_stripe.windows import Frontier, Window

if TYPE_CHECKING:
    from singer_sdk.helpers import types

    from tap_stripe.tap import TapStripe

PAGE_SIZE = 100


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


class StripeStream(Stream):
    """A Stripe table: a paged list endpoint, or a single object (``account``)."""

    is_sorted = False

    def __init__(self, tap: TapStripe, spec: TableSpec, schema: dict) -> None:
        self.spec = spec
        super().__init__(tap, schema=schema, name=spec.name)
        self.primary_keys = ("id",)
        self.replication_key = spec.replication_key
        self._stripe_tap = tap
        self._nested_check = NestedListCheck(spec.nested_lists) if spec.nested_lists else None
        self._nested_pool: ThreadPoolExecutor | None = None
        self._prefetched: tuple[Iterable[Page], int | None, int] | None = None
        self._nested_lock = threading.Lock()

    @property
    def client(self) -> StripeClient:
        """The tap's one HTTP client."""
        return self._stripe_tap.client

    # ---- reading -------------------------------------------------------------------

    def _list_params(self, window: Window | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": PAGE_SIZE, **self.spec.filters}
        if window is not None:
            if window.hi > window.lo:
                params["created[gte]"] = window.lo
                params["created[lt]"] = window.hi
            if window.cursor:
                params["starting_after"] = window.cursor
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
        body = self.client.get_bytes(self.spec.path, self._list_params(window), stream=self.name)
        try:
            raws, has_more = split_page(body)
        except msgspec.DecodeError as exc:
            msg = f"stream '{self.name}': Stripe sent a list that could not be read: {exc}"
            raise StripeError(msg) from exc
        records: list[RawRecord] = list(raws)
        self._complete_nested_lists(records)
        return records, has_more and bool(records)

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

    # ---- bookmark ------------------------------------------------------------------

    @property
    def _incremental(self) -> bool:
        """The catalog may force FULL_TABLE: then read from start_date and keep no bookmark."""
        return self.replication_method == "INCREMENTAL"

    def _bookmark(self) -> int | None:
        if not self._incremental:
            return None
        state = self.get_context_state(None)
        if state.get("replication_key") != self.replication_key:
            return None
        value = state.get("replication_key_value")
        return int(value) if isinstance(value, (int, float)) else None

    def _set_bookmark(self, value: int) -> None:
        if not self._incremental:
            return
        state = self.get_context_state(None)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = value
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _start_of_range(self, bookmark: int | None) -> int:
        start_date = self.config.get("start_date")
        floor = 0
        if start_date:
            parsed = datetime.datetime.fromisoformat(str(start_date).replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=datetime.UTC)
            floor = int(parsed.timestamp())
        if bookmark is None:
            return floor
        lookback = int(self.config.get("lookback_window", 300))
        return max(floor, bookmark - lookback)

    def _pages(self) -> tuple[Iterable[Page], int | None, int]:
        """Every page to read, the bookmark the run started from, the range's start."""
        if self.spec.replication_key is None:
            return self._pages_full_table(), None, 0
        bookmark = self._bookmark()
        start = self._start_of_range(bookmark)
        end = int(self._stripe_tap.sync_started_at)
        if start >= end:
            self.logger.info("Nothing to read: range starts at %d, sync started at %d", start, end)
            return iter(()), bookmark, start
        self.logger.info("Reading created in [%d, %d)", start, end)
        fetcher = PageFetcher(
            f"tap-stripe-{self.name}",
            self._fetch,
            [Window(start, end)],
            workers=self._stripe_tap.concurrency,
            slots=self._stripe_tap.fetch_slots,
            budget=self._stripe_tap.page_budget,
            on_close=self._close_nested_pool,
        )
        return fetcher, bookmark, start

    # ---- prefetch ------------------------------------------------------------------

    def prefetch(self) -> None:
        """Start fetching now, ahead of this stream's turn to be written."""
        if self._prefetched is None and self.spec.replication_key is not None:
            self._prefetched = self._pages()

    def cancel_prefetch(self) -> None:
        """Stop any fetching this stream still does (its turn never came, or failed)."""
        if self._prefetched is not None:
            pages = self._prefetched[0]
            if isinstance(pages, PageFetcher):
                pages.close()
            self._prefetched = None

    # ---- emitting ------------------------------------------------------------------

    def _sync_records(
        self,
        context: types.Context | None = None,
        *,
        write_messages: bool = True,
    ) -> Iterable[dict]:
        """Fetch and emit every record, managing the bookmark (replaces the SDK loop)."""
        if not write_messages:
            return list(self.get_records(context))
        emitter = _Emitter(self)
        pages, bookmark, start = self._prefetched or self._pages()
        self._prefetched = None
        frontier = Frontier(start)
        with self.get_record_counter() as counter, self.get_sync_timer():
            try:
                for page in pages:
                    counter.increment(emitter.emit(page))
                    if page.finished is None:
                        continue
                    if frontier.complete(page.finished) and (
                        bookmark is None or frontier.position > bookmark
                    ):
                        self._set_bookmark(frontier.position)
            finally:
                emitter.flush()
                self.logger.info(
                    "%d requests, %d answered 429",
                    self.client.requests_by_stream[self.name],
                    self.client.throttled_by_stream[self.name],
                )
        self._write_state_message()
        return ()

    def get_records(self, context: types.Context | None) -> Iterable[dict]:
        """Every record, without the tap's bookmarking (for SDK callers such as tests)."""
        pages, _, _ = self._pages()
        for page in pages:
            yield from page.records()


class _Emitter:
    """Writes a stream's records: exact, schema re-announced when needed."""

    def __init__(self, stream: StripeStream) -> None:
        self.stream = stream
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

    def emit(self, page: Page) -> int:
        """Write ``page``'s records; return how many."""
        raws = page.raws
        if not raws:
            return 0
        suffix = b',"time_extracted":' + orjson.dumps(page.time_extracted) + b"}\n"
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
                            time_extracted=time_extracted,
                        )
                    )

    def flush(self) -> None:
        """Write out buffered records."""
        if isinstance(self.writer, FastSingerWriter):
            self.writer.flush()
