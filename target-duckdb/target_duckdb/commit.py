"""The rule that commits data and state together: a STATE value is held until a flush commits
every record received before it (all streams, one transaction that also writes the state
row), and only then is it written to stdout.

`States` holds the STATE values received and makes each flush's `Commit` of the batches
the sinks hand over (none when there is neither a record nor a new state). `Commit.run`
runs on the database's loader thread: each batch is loaded by `Database.load_batch` and
the state saved, in one transaction, then the state is emitted.

When DuckDB refuses the load, the flush finds the first input line whose record fails
(bisecting over the lines of its records, all streams together, starting from the line
DuckDB's message points at), commits the records before that line with the last state
received before it, emits that state, and raises a LoadError naming the line. Records of
later lines (and later flushes) are never committed: the Database fails every later job.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from target_duckdb.batch import Batch
from target_duckdb.database import Database
from target_duckdb.errors import LoadError, StatementError

logger = logging.getLogger("target-duckdb")

# DuckDB names the batch file and a line of it (approximate for some errors): a hint.
_FILE_LINE = re.compile(r' in file "(?P<file>[^"]*)", in line (?P<line>\d+)')


class States:
    """The STATE values received, each held until a commit covers every record before it."""

    def __init__(self, state_id: str) -> None:
        """No state received yet; `state_id` names the state row."""
        self.latest: object | None = None  # the newest value received
        self._received: list[tuple[int, object]] = []  # (line, value) since the last flush
        self._committed: bytes | None = None  # the state the flushes so far commit
        self.state_id = state_id

    def receive(self, line: int, value: object) -> None:
        """A STATE value arrived at input line `line`: the next flush commits it."""
        self.latest = value
        self._received.append((line, value))

    def commit(self, batches: list[Batch]) -> Commit | None:
        """This flush's Commit of `batches` and the newest state (saved only when it changed
        since the last flush), or None when there is nothing to commit."""
        state = msgspec.json.encode(self.latest) if self.latest is not None else None
        states, self._received = self._received, []
        if not batches and state == self._committed:
            return None
        commit = Commit(
            batches=batches,
            states=states,
            state=state if state != self._committed else None,
            previous=self._committed,
            state_id=self.state_id,
            emit=emit_state,
        )
        self._committed = state
        return commit


@dataclass
class Commit:
    """What one flush commits; `submit` runs it on the database's loader thread."""

    batches: list[Batch]
    # (input line, value) of each STATE received since the previous flush, oldest first.
    states: list[tuple[int, object]]
    # The state this flush saves and emits (None: unchanged), and the one committed before.
    state: bytes | None
    previous: bytes | None
    state_id: str
    emit: Callable[[bytes], None]

    def submit(self, database: Database) -> None:
        """Run this commit on the loader thread once the previous one finished (and succeeded)."""
        if self.state is not None:
            database.states.ensure()
        database.submit(lambda: self.run(database))

    def run(self, database: Database) -> None:
        """Commit, or commit the part before the first failing line and raise LoadError."""
        started = time.perf_counter()
        batches = self.batches
        try:
            self._commit(database, batches, self.state)
        except StatementError as error:
            if not _FILE_LINE.search(str(error)):
                self._recover(database, batches, error)
            # read_json refused a record: maybe one naming a property twice, which DuckDB
            # refuses (or reads the first of) while every other path keeps the last value.
            batches = _without_duplicate_names(batches)
            try:
                self._commit(database, batches, self.state)
            except StatementError as again:
                self._recover(database, batches, again)
        loaded = sum(batch.count for batch in batches)
        if loaded:
            logger.info(
                "Committed %d records from %d streams in %.2fs",
                loaded,
                len(batches),
                time.perf_counter() - started,
            )
        if self.state is not None:
            self.emit(self.state)

    def _commit(self, database: Database, batches: Sequence[Batch], state: bytes | None) -> None:
        """One transaction: the batches and the state. Retried whole while it conflicts with
        another writer's commit (a DuckLake), the batch files kept until it commits."""

        def body() -> None:
            for batch in batches:
                database.load_batch(batch)
            if state is not None:
                database.states.save(self.state_id, state.decode())

        database.committed(body, f"Committing {sum(b.count for b in batches)} records")
        for batch in batches:
            os.truncate(batch.file, 0)

    def _recover(self, database: Database, batches: Sequence[Batch], error: StatementError) -> None:
        # Repeated names are no failure (the last value wins): reduce them in every batch
        # first, so that only a record DuckDB truly refuses can fail the bisection.
        batches = _without_duplicate_names(batches)
        texts = [batch.texts() for batch in batches]
        lines = sorted(
            {n for batch in batches for n in batch.lines}
            | {n for batch in batches for n, _, _ in batch.superseded}
        )
        bad, message = _first_failing(database, batches, texts, lines, error)
        if bad is None:  # the records load: saving the state failed (or DuckDB did, once)
            bad = self.states[0][0] if self.states else lines[0]
        before = [
            part
            for batch, batch_texts in zip(batches, texts, strict=True)
            if (part := batch.before(bad, batch_texts)) is not None
        ]
        covered = [value for line, value in self.states if line < bad]
        state = msgspec.json.encode(covered[-1]) if covered else None
        if state == self.previous:
            state = None
        self._commit(database, before, state)
        if state is not None:
            self.emit(state)
        failure = LoadError(_without_file(message))
        failure.line_number = bad
        raise failure from error


def _first_failing(
    database: Database,
    batches: Sequence[Batch],
    texts: list[list[bytes]],
    lines: list[int],
    error: StatementError,
) -> tuple[int | None, str]:
    """The first input line whose record makes the load fail, and DuckDB's message for it.

    Bisection over the flush's lines: loading every record up to `lines[hi]` fails (the
    whole flush did), up to `lines[lo - 1]` succeeds. DuckDB's own pointer is tried first.
    """
    message = str(error)
    if not lines or not _fails(database, batches, texts, lines[-1] + 1):
        return None, message
    hint = _hinted_line(batches, message)
    probes = [lines.index(hint), lines.index(hint) - 1] if hint in lines else []
    lo, hi = 0, len(lines) - 1
    while lo < hi:
        mid = next((p for p in probes if lo <= p < hi), (lo + hi) // 2)
        probes = [p for p in probes if p != mid]
        failure = _fails(database, batches, texts, lines[mid] + 1)
        if failure:
            hi, message = mid, failure
        else:
            lo = mid + 1
    return lines[hi], message


def _fails(
    database: Database, batches: Sequence[Batch], texts: list[list[bytes]], end: int
) -> str | None:
    """DuckDB's message when loading the records of input lines before `end` fails."""
    try:
        with database.trial():
            for batch, batch_texts in zip(batches, texts, strict=True):
                part = batch.before(end, batch_texts)
                if part is not None:
                    database.load_batch(part)
    except StatementError as error:
        return str(error)
    return None


def _hinted_line(batches: Sequence[Batch], message: str) -> int | None:
    match = _FILE_LINE.search(message)
    if match is None:
        return None
    for batch in batches:
        index = int(match["line"]) - 1
        if batch.file == match["file"] and 0 <= index < len(batch.lines):
            return batch.lines[index]
    return None


def _without_duplicate_names(batches: Sequence[Batch]) -> list[Batch]:
    """The batches with each record's repeated property names reduced to the last value."""
    reduced = []
    for batch in batches:
        if not batch.deduplicated:
            texts = batch.texts()
            batch = batch.without_duplicate_names(texts)
            logger.warning(
                "Stream '%s': DuckDB refused its batch; loading it again with the last value "
                "of any property a record names twice",
                batch.stream,
            )
        reduced.append(batch)
    return reduced


def _without_file(message: str) -> str:
    """DuckDB's message without the temporary file and its line (the input line replaces them)."""
    return _FILE_LINE.sub("", message)


def emit_state(state: bytes) -> None:
    """Write a committed state to stdout as one JSON line."""
    sys.stdout.write(state.decode() + "\n")
    sys.stdout.flush()
