"""Stripe records as raw JSON: decode only what the tap must look at.

Parsing a page into Python objects and serialising every record again is what makes
a tap slow (and what could alter a value). Here a page is split into each record's raw
JSON bytes (msgspec ``Raw``), which are written out unchanged; the tap decodes only the
page's ``has_more``, the last record's ``id``/``created`` (the cursor), the state of nested
lists, and checks top-level property names against the schema without building objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache

import msgspec
import orjson

RawRecord = bytes | msgspec.Raw


class _ListPage(msgspec.Struct):
    """Stripe's list object. Both fields are required: a 200 answer without them (a
    gateway's JSON error) read as an empty page would move every bookmark to the run's end.
    """

    data: list[msgspec.Raw]
    has_more: bool


class _NestedList(msgspec.Struct):
    has_more: bool = False


_page_decoder = msgspec.json.Decoder(_ListPage)


def split_page(body: bytes) -> tuple[list[msgspec.Raw], bool]:
    """A list object's records as raw JSON, and its ``has_more``.

    Raises ``msgspec.ValidationError`` when ``body`` is not a list object of objects.
    """
    page = _page_decoder.decode(body)
    for raw in page.data:
        if memoryview(raw)[:1] != b"{":
            raise msgspec.ValidationError("Expected `object` in `$.data`")
    return page.data, page.has_more


CursorOf = Callable[[RawRecord], tuple[str, int]]


@cache
def cursor_reader(created_field: str = "created") -> CursorOf:
    """What reads ``(id, creation time)`` of a raw record whose creation time is in
    ``created_field`` (``date`` for invoice items)."""
    struct = msgspec.defstruct(
        "Cursor",
        [("id", str), ("created", int, msgspec.field(name=created_field, default=0))],
    )
    decode = msgspec.json.Decoder(struct).decode

    def read(record: RawRecord) -> tuple[str, int]:
        cursor = decode(record)
        return cursor.id, cursor.created

    return read


cursor_of: CursorOf = cursor_reader()
"""``(id, created)`` of a raw record."""


class _Id(msgspec.Struct):
    id: str


_decode_id = msgspec.json.Decoder(_Id).decode


def id_of(record: RawRecord) -> str:
    """The ``id`` of a raw record (a list's cursor), whatever else it holds."""
    return _decode_id(record).id


class ParentColumn:
    """Sets one top-level property of raw records (a child row's parent id) without
    decoding the rest: spliced in first when the record lacks it, left as it is when it
    already holds that value (a payment method's ``customer``), else set by a decode."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._member = orjson.dumps(name) + b":"
        struct = msgspec.defstruct(
            "Member", [("value", msgspec.Raw, msgspec.field(name=name, default=None))]
        )
        self._decode = msgspec.json.Decoder(struct).decode

    def set(self, record: RawRecord, value: str) -> RawRecord:
        """``record`` with this property set to ``value``."""
        encoded = orjson.dumps(value)
        current = self._decode(record).value
        if current is not None and bytes(current) == encoded:
            return record
        view = memoryview(record)
        if current is None and not _empty(view):
            return b"".join((b"{", self._member, encoded, b",", view[1:]))
        row = orjson.loads(view)
        row[self.name] = value
        return orjson.dumps(row)


class KeyCheck:
    """Tells whether raw records carry only known top-level properties, cheaply.

    Decodes into a struct whose fields are the known names (values kept raw) and which
    forbids unknown fields: no Python objects are built for the values.
    """

    def __init__(self, known: Iterable[str]) -> None:
        self.known = frozenset(known)
        fields = [
            (f"f{i}", msgspec.Raw, msgspec.field(name=name, default=None))
            for i, name in enumerate(sorted(self.known))
        ]
        struct = msgspec.defstruct("KnownProperties", fields, forbid_unknown_fields=True)
        self._decoder = msgspec.json.Decoder(struct)

    def all_known(self, records: Sequence[RawRecord]) -> bool:
        """Whether no record in ``records`` has a top-level property outside ``known``."""
        decode = self._decoder.decode
        try:
            for record in records:
                decode(record)
        except msgspec.ValidationError:
            return False
        return True


class NestedListCheck:
    """Finds raw records whose nested lists (``invoice.lines``...) say ``has_more``."""

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = tuple(fields)
        struct = msgspec.defstruct(
            "NestedLists",
            [
                (f"f{i}", _NestedList | None, msgspec.field(name=name, default=None))
                for i, name in enumerate(self.fields)
            ],
        )
        self._decoder = msgspec.json.Decoder(struct)

    def cut_short(self, record: RawRecord) -> bool:
        """Whether one of the nested lists of ``record`` is incomplete."""
        decoded = self._decoder.decode(record)
        return any(
            nested is not None and nested.has_more
            for nested in (getattr(decoded, f"f{i}") for i in range(len(self.fields)))
        )


@cache
def parent_column(name: str) -> ParentColumn:
    """The one :class:`ParentColumn` of property ``name`` (each builds a decoder type)."""
    return ParentColumn(name)


def _empty(view: memoryview) -> bool:
    """Whether the raw object in ``view`` has no member (``{}``, maybe with spaces)."""
    return len(view) < 16 and bytes(view[1:]).strip() == b"}"
