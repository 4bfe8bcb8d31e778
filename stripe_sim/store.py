"""Immutable, newest-first tables of pre-encoded objects with Stripe's list semantics.

A table is replaced as a whole when the data mutates, so request threads read a
consistent snapshot without locks.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson


def encode(obj: Any) -> bytes:
    """JSON bytes sized exactly (orjson's buffer keeps spare capacity that adds up)."""
    return bytes(memoryview(orjson.dumps(obj)))


class Row(NamedTuple):
    """One object: sort keys, its JSON bytes and the few attributes list filters read."""

    created: int
    id: str
    body: bytes
    attrs: dict[str, Any]


Predicate = Callable[[Row], bool]


class CursorMissing(LookupError):
    """``starting_after``/``ending_before`` names an object the table does not hold."""


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    has_more: bool


@dataclass(frozen=True)
class Table:
    """Rows sorted by ``created`` descending, then ``id`` descending (Stripe's list order)."""

    rows: tuple[Row, ...]
    neg_created: list[int] = field(repr=False)
    position: dict[str, int] = field(repr=False)

    @classmethod
    def of(cls, rows: Iterable[Row]) -> Table:
        ordered = tuple(sorted(rows, key=lambda r: (r.created, r.id), reverse=True))
        return cls(
            rows=ordered,
            neg_created=[-r.created for r in ordered],
            position={r.id: i for i, r in enumerate(ordered)},
        )

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, object_id: str) -> Row | None:
        index = self.position.get(object_id)
        return None if index is None else self.rows[index]

    def bounds(self, gte: int | None, lte: int | None) -> tuple[int, int]:
        """Index range of rows with ``gte <= created <= lte``."""
        lo = 0 if lte is None else bisect_left(self.neg_created, -lte)
        hi = len(self.rows) if gte is None else bisect_right(self.neg_created, -gte)
        return lo, max(lo, hi)

    def page(
        self,
        *,
        gte: int | None = None,
        lte: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        limit: int = 10,
        predicate: Predicate | None = None,
    ) -> Page:
        lo, hi = self.bounds(gte, lte)
        cursor = starting_after or ending_before
        pivot = None
        if cursor is not None:
            pivot = self.position.get(cursor)
            if pivot is None:
                raise CursorMissing(cursor)
        if predicate is None:
            indices: range | list[int] = range(lo, hi)
        else:
            rows = self.rows
            indices = [i for i in range(lo, hi) if predicate(rows[i])]
        if starting_after is not None:
            start = bisect_right(indices, pivot)
            chosen = indices[start : start + limit]
            has_more = start + limit < len(indices)
        elif ending_before is not None:
            end = bisect_left(indices, pivot)
            start = max(0, end - limit)
            chosen = indices[start:end]
            has_more = start > 0
        else:
            chosen = indices[:limit]
            has_more = limit < len(indices)
        return Page(rows=[self.rows[i] for i in chosen], has_more=has_more)

    def replaced(self, upserts: Iterable[Row] = (), deletes: Iterable[str] = ()) -> Table:
        """A new table with ``upserts`` added or replacing rows by id and ``deletes`` removed."""
        merged = {r.id: r for r in self.rows}
        for object_id in deletes:
            merged.pop(object_id, None)
        for row in upserts:
            merged[row.id] = row
        return Table.of(merged.values())
