"""A table's progress: the read plan of this run, and the state that records it.

The state entry of a stream holds the ``created`` bookmark, the events cursor and the
table version of an unfinished full read. Every time written there is on Stripe's clock:
none passes Stripe's time at its first answer of the run, and a state later than that
clock is clamped to it (``clamp``), since it would hide every object created before it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tap_stripe.changes import EVENT_RETENTION_SECONDS, cursor_usable, iso_time
from tap_stripe.run import Run
from tap_stripe.state import times_after
from tap_stripe.tables import ReadMode, TableSpec

# State key of the table version of a full read that a run stopped before its end.
UNFINISHED_VERSION = "unfinished_table_version"
# State key of the tables a parent's reading wrote (itself, its embedded children): a
# table it did not write yet needs the parent read from the start once.
WRITTEN_TABLES = "written_tables"


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
        whole: The table is read whole, without a ``created`` range (``start`` and
            ``end`` are 0).
    """

    start: int
    end: int
    bookmark: int | None = None
    events_since: int | None = None
    version: int | None = None
    catch_up: bool = False
    whole: bool = False


def _at_most(value: int, ceiling: int | None) -> int:
    return value if ceiling is None else min(value, ceiling)


class Progress:
    """Reads and moves one table's state entry.

    ``state`` is the stream's entry, changed in place; ``write_state`` sends the tap's
    STATE after a change. ``replication_key`` is the stream's (the catalog may name none),
    and ``incremental`` is false when the catalog forces FULL_TABLE:
    then the read starts at ``start_date`` and no bookmark is kept. ``written_tables`` are
    the tables the reading writes this run (the table, its selected embedded children):
    if the state's reading did not write one of them, its bookmark is not used.
    """

    def __init__(
        self,
        run: Run,
        spec: TableSpec,
        state: dict[str, Any],
        *,
        replication_key: str | None,
        incremental: bool,
        logger: logging.Logger,
        write_state: Callable[[], None],
        written_tables: list[str] | None = None,
    ) -> None:
        self.written_tables = written_tables if written_tables is not None else [spec.name]
        self.run = run
        self.spec = spec
        self.state = state
        self.replication_key = replication_key
        self.incremental = incremental
        self.logger = logger
        self.write_state = write_state

    @property
    def captures_changes(self) -> bool:
        """Whether updates and deletes of this table are read from its events."""
        return bool(self.spec.event_types)

    def number(self, key: str) -> int | None:
        """The state's ``key`` as an integer, if it holds a number."""
        value = self.state.get(key)
        return int(value) if isinstance(value, (int, float)) else None

    def bookmark(self) -> int | None:
        """The ``created`` bookmark, if the state holds one of this table's key."""
        if not self.incremental:
            return None
        if self.state.get("replication_key") != self.replication_key:
            return None
        if not set(self.written_tables) <= self._tables_written_before():
            return None
        return self.number("replication_key_value")

    def _tables_written_before(self) -> set[str]:
        """The tables the state's reading wrote; a state from before children were read
        wrote the table alone."""
        written = self.state.get(WRITTEN_TABLES, [self.spec.name])
        if not isinstance(written, list):
            return set()
        return {name for name in written if isinstance(name, str)}

    def record_written_tables(self) -> None:
        """Record, after a complete run, which tables the reading wrote."""
        if self.incremental and self.written_tables != [self.spec.name]:
            self.state[WRITTEN_TABLES] = sorted(self.written_tables)
        else:
            self.state.pop(WRITTEN_TABLES, None)

    def state_after(self, now: float) -> bool:
        """Whether the bookmark or events cursor is later than ``now``."""
        return bool(times_after(self.state, now))

    def clamp(self, now: float, clock: str) -> None:
        """Move the bookmark and events cursor later than ``now`` (on ``clock``) back to
        ``now`` minus the lookback.

        Such a time cannot be right (a state edited by hand, or written by a machine whose
        clock ran far ahead) and would hide every object created before it, forever.
        """
        late = times_after(self.state, now)
        if not late:
            return
        lookback = self.run.lookback
        clamped = int(now) - lookback
        self.state.update(dict.fromkeys(late, clamped))
        several = len(late) > 1
        self.logger.warning(
            "stream '%s': the state's %s %s later than %s (%s): %s cannot be right, so %s "
            "%s (that clock minus the %d s lookback)",
            self.spec.name,
            " and ".join(f"{key} {iso_time(value)}" for key, value in late.items()),
            "are" if several else "is",
            clock,
            iso_time(now),
            "they" if several else "it",
            "both become" if several else "it becomes",
            iso_time(clamped),
            lookback,
        )

    def whole_plan(self) -> ReadPlan:
        """The plan of a table read whole: a list read under a new table version each
        run, so rows of objects gone from Stripe retire at its end; a single object as is."""
        if self.spec.read is ReadMode.FULL:
            return ReadPlan(0, 0, version=int(self.run.started_at * 1000), whole=True)
        return ReadPlan(0, 0, whole=True)

    def plan(self) -> ReadPlan:
        """Decide what this run reads: a full read, an increment, or a catch-up."""
        run = self.run
        if run.stripe_time is not None:
            self.clamp(run.stripe_time, "Stripe's clock")
        floor = run.floor
        end = int(run.started_at)
        lookback = run.lookback
        bookmark = self.bookmark()
        version = int(run.started_at * 1000)
        if bookmark is None:
            return ReadPlan(floor, end, version=version if self.captures_changes else None)
        increment = max(floor, bookmark - lookback)
        if not self.captures_changes:
            return ReadPlan(increment, end, bookmark)
        cursor = self.number("events_cursor")
        if cursor is not None and cursor_usable(cursor, lookback, end):
            return ReadPlan(
                increment,
                end,
                bookmark,
                events_since=cursor - lookback,
                version=self.number(UNFINISHED_VERSION),
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
            self.spec.name,
            why,
            self.spec.name,
            iso_time(floor),
        )
        return ReadPlan(floor, end, bookmark, version=version, catch_up=True)

    def save(
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
        if not self.incremental:
            return
        state = self.state
        if unfinished_version is None:
            state.pop(UNFINISHED_VERSION, None)
        else:
            state[UNFINISHED_VERSION] = unfinished_version
        stripe_time = self.run.stripe_time
        ceiling = int(stripe_time) - 1 if stripe_time is not None else None
        if bookmark is not None:
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = _at_most(bookmark, ceiling)
        if events_cursor is not None and self.captures_changes:
            state["events_cursor"] = _at_most(events_cursor, ceiling)
        self.write_state()
