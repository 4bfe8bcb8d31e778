"""A stream's records detached for loading (a Batch), and the same records cut to the input
lines before a given one.

An upsert loads the last record per key. The records a later one with the same key
replaced stay with the batch (rarely any): when a load fails at some input line, the batch
cut to the lines before it loads, per key, the last record among those lines, which may
be one the full batch had replaced. The database loads a batch (`Database.load_batch`);
`commit` decides which batches, and which cuts of them, are committed.
"""

from __future__ import annotations

import dataclasses
import operator
import typing as t
from dataclasses import dataclass

import msgspec

Text = bytes | msgspec.Raw


def last_per_key(
    texts: list[Text], lines: list[int], keys: list
) -> tuple[list[Text], list[int], list, list[tuple[int, t.Any, Text]]]:
    """Each key's last record: (texts, lines, keys) in the order the keys first appear, and
    the (line, key, text) of the records they replaced (the lists as given when none)."""
    last = dict(zip(keys, range(len(keys)), strict=True))
    superseded: list[tuple[int, t.Any, Text]] = []
    if len(last) < len(keys):
        kept = set(last.values())
        superseded = [(lines[i], keys[i], texts[i]) for i in range(len(keys)) if i not in kept]
        texts = [texts[i] for i in last.values()]
        lines = [lines[i] for i in last.values()]
    return texts, lines, list(last), superseded


@dataclass
class Batch:
    """One stream's records to load, detached from the sink so another thread can load it.

    `payload` is the records' JSON texts, each ending with a newline (empty once written to
    `file`). `lines[i]` is the input line of the i-th record of the payload, `record_keys[i]`
    its key (upserts only); `superseded` holds (line, key, text) of the records a later one
    with the same key replaced.
    """

    schema_name: str
    table: str
    stream: str
    file: str
    payload: bytes
    lines: list[int]
    record_keys: list | None
    # Upserts: the keys that may have rows already, whose rows the load deletes (None: any
    # of the keys may, see `table_history`).
    replaced: list | None
    superseded: list[tuple[int, t.Any, Text]]
    columns: dict[str, str]
    keys: list[str]
    method: str
    hard_delete: bool
    legacy_keys: tuple[str, ...] = ()  # key columns an upsert matches NULL in
    deduplicated: bool = False  # repeated property names reduced to the last value

    @property
    def count(self) -> int:
        """Records to load."""
        return len(self.lines)

    def texts(self) -> list[bytes]:
        """The records' JSON texts, from the payload or, once written, from the file."""
        payload = self.payload
        if not payload:
            with open(self.file, "rb") as handle:
                payload = handle.read()
        return payload.split(b"\n")[:-1]

    def before(self, line: int, texts: list[bytes]) -> Batch | None:
        """This batch cut to the records of input lines before `line` (None if none).

        `texts` are the batch's texts (`texts()`, read once). Upserts keep the last record
        per key among those lines, which may be one the full batch had superseded.
        """
        if self.record_keys is None:
            chosen = [(n, text) for n, text in zip(self.lines, texts, strict=True) if n < line]
            kept_keys = replaced = None
        else:
            versions = sorted(
                [*zip(self.lines, self.record_keys, texts, strict=True), *self.superseded],
                key=operator.itemgetter(0),
            )
            last: dict[t.Any, tuple[int, Text]] = {}
            for n, key, text in versions:
                if n < line:
                    last[key] = (n, text)
            chosen = list(last.values())
            kept_keys = list(last)
            replaced = None if self.replaced is None else list(set(self.replaced) & last.keys())
        if not chosen:
            return None
        return dataclasses.replace(
            self,
            payload=b"\n".join(text for _, text in chosen) + b"\n",
            lines=[n for n, _ in chosen],
            record_keys=kept_keys,
            replaced=replaced,
            superseded=[],
        )

    def without_duplicate_names(self, texts: list[bytes]) -> Batch:
        """This batch with each record's repeated property names reduced to the last one.

        DuckDB refuses `{"id": 1, "id": 2}`; msgspec (the key, the checks) and every other
        path keep the last value, so the load does too.
        """

        def last_wins(text: Text) -> bytes:
            return msgspec.json.encode(msgspec.json.decode(text, type=dict[str, msgspec.Raw]))

        return dataclasses.replace(
            self,
            payload=b"\n".join(map(last_wins, texts)) + b"\n",
            superseded=[(n, key, last_wins(text)) for n, key, text in self.superseded],
            deduplicated=True,
        )
