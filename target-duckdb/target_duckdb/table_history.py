"""What a run has done to its tables so far: the tables an overwrite emptied, and the keys
loaded into the tables it created, so that the upserts of a first load delete only the
rows that can be there.

An upsert deletes the rows whose keys arrive, then inserts the records. Into a table this
run created, in a file no other process writes, a key has a row only if an earlier batch
of the run loaded it; on a first full load almost none did, and skipping those DELETEs
(each a join of a batch's 10,000 keys with the table's whole key column) took 13 % off the
target's time on the benchmark's 100,000 records (median of 14 interleaved runs).

The keys are kept in a Bloom filter: 8 MB however many the run loads, and never taking a
loaded key for a new one. A new key it takes for loaded costs only its share of a DELETE:
about 1 in 100,000 after 100,000 keys, 1 in 4,500 after 500,000, 1 in 140 after 3 million.
"""

from __future__ import annotations

import typing as t
from collections.abc import Sequence

_BITS = 1 << 26
_MASK = _BITS - 1


class TableHistory:
    """The run's writes to its tables (by `schema.table`), shared by the run's sinks."""

    def __init__(self) -> None:
        """Nothing written yet; the filter's memory is taken at the first key."""
        self._overwritten: set[str] = set()
        self._tracked: set[str] = set()
        self._bits: bytearray | None = None

    def load_method(self, table: str, method: str) -> str:
        """The method of a batch for `table`: an overwrite empties a table once per run, and
        its later batches append."""
        if method != "overwrite":
            return method
        if table in self._overwritten:
            return "append-only"
        self._overwritten.add(table)
        return method

    def track(self, table: str) -> None:
        """`table` was created by this run, and only this run writes it: from now on every
        key loaded into it is known."""
        self._tracked.add(table)

    def forget(self, table: str) -> None:
        """The keys of `table` change columns: the ones loaded so far say nothing."""
        self._tracked.discard(table)

    def replaced(
        self, table: str, keys: Sequence[t.Any], kinds: Sequence[type | None]
    ) -> list[t.Any] | None:
        """Note `keys` (each once) as loaded into `table`; the ones that may have rows there
        already (None: any of them may).

        `kinds` are the Python types, one per key column, whose values are equal exactly
        when their column's values are (`database.EXACT_KEYS`: a `str` in a VARCHAR, an
        `int` in a BIGINT, ...). A key of any other type (the number 1 and the text "1" are
        one VARCHAR value, and two texts of one JSON object one JSON value) ends the table's
        tracking: from then on every key may have a row.
        """
        if table not in self._tracked:
            return None
        if not _of_kinds(keys, kinds):
            self.forget(table)
            return None
        if self._bits is None:
            self._bits = bytearray(_BITS >> 3)
        bits, salt = self._bits, hash(table)
        seen = []
        for key in keys:
            # Two positions from the 64-bit hash (a third measured twice the time).
            code = hash(key) ^ salt
            a, b = code & _MASK, (code >> 26) & _MASK
            a_byte, a_bit, b_byte, b_bit = a >> 3, 1 << (a & 7), b >> 3, 1 << (b & 7)
            if bits[a_byte] & a_bit and bits[b_byte] & b_bit:
                seen.append(key)
            else:
                bits[a_byte] |= a_bit
                bits[b_byte] |= b_bit
        return seen


def _of_kinds(keys: Sequence[t.Any], kinds: Sequence[type | None]) -> bool:
    """Whether every key's value (a tuple's values, for several columns) is exactly of its
    column's kind."""
    if None in kinds:
        return False
    if len(kinds) == 1:
        (kind,) = kinds
        return all(type(key) is kind for key in keys)
    return all(type(key) is tuple and all(map(_is_of, key, kinds)) for key in keys)


def _is_of(value: t.Any, kind: type) -> bool:
    return type(value) is kind
