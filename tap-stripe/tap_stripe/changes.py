"""Change capture: which objects of a table changed since its events cursor, and how.

Listing by ``created`` only finds new objects. Stripe records every change to an object
as an event on ``/v1/events`` (kept 30 days), whose ``data.object`` is the object as it
was at that moment. From the events of one table since its cursor this module keeps, per
object, the newest one, and decides what the warehouse must receive:

* an upsert of the event's object, when that object can be trusted as the current one;
* a re-fetch by id when it cannot: the event was rendered at another API version than
  the pinned one, the table expands fields that event payloads never expand, or two
  events of the object share the newest second (their order is unknown);
* a tombstone (the object plus ``_sdc_deleted_at``) for a ``*.deleted`` event of a table
  whose objects Stripe deletes, and for a re-fetch that answers 404 or Stripe's
  ``{"deleted": true}`` stub (deleted customers).
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import msgspec
import orjson

from tap_stripe.children import listed_rows
from tap_stripe.records import RawRecord
from tap_stripe.tables import TableSpec

DAY = 86_400
# Stripe lists events of the last 30 days only.
EVENT_RETENTION_SECONDS = 30 * DAY
# A cursor is trusted only while it is a day younger than that: the events are read at
# the stream's turn, which in a long run comes hours after the run started.
RETENTION_MARGIN_SECONDS = DAY

DELETED_AT = "_sdc_deleted_at"
DELETED_AT_SCHEMA: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}


def with_deleted_at(schema: dict) -> dict:
    """``schema`` with the tombstone column a table with change capture needs."""
    properties = {**schema.get("properties", {}), DELETED_AT: DELETED_AT_SCHEMA}
    return {**schema, "properties": properties}


def cursor_usable(cursor: int, lookback: int, now: float) -> bool:
    """Whether the events from ``cursor - lookback`` on are all still listed."""
    return cursor - lookback >= now - EVENT_RETENTION_SECONDS + RETENTION_MARGIN_SECONDS


def iso_time(timestamp: float) -> str:
    """``timestamp`` as an ISO 8601 UTC date-time, or as a number past what dates hold (a
    state edited by hand can hold any number)."""
    try:
        return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{int(timestamp)} (unix seconds)"


def tombstone(raw: RawRecord, deleted_at: float) -> bytes:
    """The record of a deleted object: its last known state plus ``_sdc_deleted_at``."""
    record = orjson.loads(memoryview(raw))
    record[DELETED_AT] = iso_time(deleted_at)
    return orjson.dumps(record)


_NO_PREVIOUS = msgspec.Raw(b"{}")


class _EventData(msgspec.Struct):
    object: msgspec.Raw
    previous_attributes: msgspec.Raw = msgspec.field(default_factory=lambda: _NO_PREVIOUS)


class _Event(msgspec.Struct):
    id: str
    type: str
    created: int
    data: _EventData
    api_version: str | None = None


class _ObjectHead(msgspec.Struct):
    id: str | None = None
    object: str | None = None
    created: int | None = None


_event_decoder = msgspec.json.Decoder(_Event)
_head_decoder = msgspec.json.Decoder(_ObjectHead)


class _PayloadFile:
    """Event payloads kept in a temporary file instead of memory.

    A day of a busy account can change hundreds of thousands of invoices of several KB
    each; only their ids and a few numbers stay in memory.
    """

    def __init__(self) -> None:
        # Closed by close(), which the owning ChangeSet calls on exit.
        self._file = tempfile.TemporaryFile(prefix="tap-stripe-events-")  # noqa: SIM115
        self._end = 0
        self._dirty = False

    def put(self, raw: RawRecord) -> tuple[int, int]:
        """Store ``raw``; returns where it is (offset, length)."""
        size = self._file.write(raw)
        where = (self._end, size)
        self._end += size
        self._dirty = True
        return where

    def get(self, where: tuple[int, int]) -> bytes:
        """The payload stored at ``where`` (safe from several threads once written)."""
        if self._dirty:
            self._file.flush()
            self._dirty = False
        offset, size = where
        return os.pread(self._file.fileno(), size, offset)

    def close(self) -> None:
        self._file.close()


@dataclass
class _Latest:
    """The newest event seen for one object."""

    event_id: str
    created: int
    payload: tuple[int, int]
    trusted: bool
    tied: bool = False
    deleted_at: int | None = None


RemovedRows = dict[str, dict[str, dict[str, tuple[dict[str, Any], int]]]]
"""Per parent id and nested-list field, the rows an update event said the list held
before it: row id -> (row, that event's time)."""
ChangedFields = dict[str, set[str]]
"""Per object id, the fields its update events changed (their ``previous_attributes``)."""


@dataclass(frozen=True)
class Changes:
    """What a table's events ask for, by object id: upsert the last event's object as it
    is, re-fetch the object, or write a tombstone deleted at the given time; and the rows
    of nested lists that update events said were there before (``listed_before``)."""

    upserts: list[str]
    refetch: list[str]
    tombstones: dict[str, int]
    events: int
    listed_before: RemovedRows
    changed: ChangedFields


class ChangeSet:
    """Folds a table's events, in any order, into the newest state per object.

    Use it as a context manager: the events' objects wait in a temporary file.

    ``list_fields`` are the nested lists whose removed rows matter (those of the child
    tables being read): their previous rows are kept from every update event. With
    ``watch_fields``, the fields each object's update events changed are kept too.
    """

    def __init__(
        self,
        spec: TableSpec,
        api_version: str,
        floor: int = 0,
        list_fields: tuple[str, ...] = (),
        *,
        watch_fields: bool = False,
    ) -> None:
        self.spec = spec
        self.api_version = api_version
        self.floor = floor
        self.list_fields = list_fields
        self.watch_fields = watch_fields
        self._changed: ChangedFields = {}
        self.object_type = spec.object
        self.events = 0
        self._latest: dict[str, _Latest] = {}
        self._listed_before: RemovedRows = {}
        self._payloads = _PayloadFile()

    def __enter__(self) -> ChangeSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._payloads.close()

    def add(self, raw_events: Iterable[RawRecord]) -> None:
        """Take one page of events into account."""
        for raw in raw_events:
            self._add(_event_decoder.decode(raw))

    def _add(self, event: _Event) -> None:
        self.events += 1
        head = _head_decoder.decode(event.data.object)
        # invoice.upcoming carries an invoice that does not exist yet (no id); and a
        # wildcard could match an event about another kind of object.
        if head.id is None or head.object != self.object_type:
            return
        if head.created is not None and head.created < self.floor:
            return
        if (self.list_fields or self.watch_fields) and (
            event.data.previous_attributes is not _NO_PREVIOUS
        ):
            self._keep_previous(head.id, event)
        latest = self._latest.get(head.id)
        deleted = self.spec.is_delete_event(event.type)
        if latest is not None and latest.deleted_at is not None:
            return  # a deleted object stays deleted: ids are never reused
        if latest is not None and not deleted:
            if event.created < latest.created or event.id == latest.event_id:
                return
            if event.created == latest.created:
                latest.tied = True
                return
        trusted = event.api_version == self.api_version and not self.spec.expand
        self._latest[head.id] = _Latest(
            event.id,
            event.created,
            self._payloads.put(event.data.object),
            trusted,
            deleted_at=event.created if deleted else None,
        )

    def _keep_previous(self, object_id: str, event: _Event) -> None:
        """Keep which fields the event changed, and the rows its ``previous_attributes``
        lists held before it; a row held before several events keeps the latest one (its
        removal is no earlier)."""
        previous = orjson.loads(memoryview(event.data.previous_attributes))
        if not isinstance(previous, dict):
            return
        if self.watch_fields:
            self._changed.setdefault(object_id, set()).update(previous)
        for field in self.list_fields:
            for row in listed_rows(previous, field):
                row_id = row.get("id")
                if not isinstance(row_id, str):
                    continue
                rows = self._listed_before.setdefault(object_id, {}).setdefault(field, {})
                if row_id not in rows or rows[row_id][1] <= event.created:
                    rows[row_id] = (row, event.created)

    def changes(self) -> Changes:
        """The upserts, re-fetches and tombstones the events add up to."""
        upserts: list[str] = []
        refetch: list[str] = []
        tombstones: dict[str, int] = {}
        for object_id, latest in self._latest.items():
            if latest.deleted_at is not None:
                tombstones[object_id] = latest.deleted_at
            elif latest.trusted and not latest.tied:
                upserts.append(object_id)
            else:
                refetch.append(object_id)
        return Changes(
            upserts, refetch, tombstones, self.events, self._listed_before, self._changed
        )

    def payload(self, object_id: str) -> bytes:
        """The object carried by the newest event of ``object_id``."""
        return self._payloads.get(self._latest[object_id].payload)


class _DeletedStub(msgspec.Struct):
    deleted: bool = False


_stub_decoder = msgspec.json.Decoder(_DeletedStub)


def is_deleted_stub(body: bytes) -> bool:
    """Whether a retrieved object is Stripe's stub of a deleted one (``deleted: true``)."""
    return _stub_decoder.decode(body).deleted
