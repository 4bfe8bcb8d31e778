"""The progress report of a long sync: periodic lines on stderr, and a table at the end.

Fetch workers and writers update one :class:`TableMeter` per table; a daemon thread
logs, every ``interval`` seconds, a total line and a line per table that moved since the
last one (records, requests per second, share of the ``created`` range done, time left).
A run shorter than one interval logs nothing; the end-of-run table
(:meth:`Report.summary`) is the caller's to log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Table lines per tick at most; the others are counted on one "+N more" line, so that
# a run with dozens of tables active stays readable.
MAX_TABLE_LINES = 12
SUMMARY_COLUMNS = ("table", "records", "requests", "429s", "seconds")

Clock = Callable[[], float]


def duration(seconds: float) -> str:
    """``seconds`` as ``42s``, ``3m05s`` or ``1h02m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _per_second(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _aligned(rows: list[list[str]]) -> list[str]:
    """``rows`` as text columns: the first (names) left-aligned, the numbers right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    lines = []
    for name, *numbers in rows:
        cells = [n.rjust(w) for n, w in zip(numbers, widths[1:], strict=True)]
        lines.append("  ".join([name.ljust(widths[0]), *cells]))
    return lines


@dataclass(frozen=True)
class Reading:
    """A meter's values at one moment (``span``: seconds of range, 0 when none is set).

    ``empty``: the seconds of the range covered and found to hold no object, left out of
    the share and of the rate: a range from 1970 (no ``start_date``) is mostly years
    before the account's first object, which a first page or two finds empty, and would
    otherwise read as nearly done with no time left.
    """

    records: int
    covered: float
    span: int
    first_used: float
    finished_at: float | None
    empty: float = 0.0

    def share(self) -> float | None:
        """The part of the range done, from 0 to 1; ``None`` without a non-empty range."""
        span = self.span - self.empty
        if self.span <= 0:
            return None
        return min(1.0, (self.covered - self.empty) / span) if span > 0 else 1.0

    def seconds_left(self, now: float) -> float | None:
        """The range left at the rate it was covered (its empty part aside) since the
        meter's first use; ``None`` without a range, or before any of it was covered."""
        left = max(0.0, self.span - self.covered)
        rate = _per_second(self.covered - self.empty, now - self.first_used)
        if self.span <= 0 or (left and rate <= 0):
            return None
        return left / rate if left else 0.0

    def seconds(self, now: float) -> float:
        """From the meter's first use to its finish, or to ``now`` if not finished."""
        end = now if self.finished_at is None else self.finished_at
        return end - self.first_used


class TableMeter:
    """One table's progress in this run; fetch and writer threads update it at once."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._first_used = clock()
        self._span = 0
        self._covered = 0.0
        self._empty = 0.0
        self._records = 0
        self._finished_at: float | None = None

    def set_range(self, start: int, end: int) -> None:
        """The ``created`` range ``[start, end)`` this run lists (the last call wins;
        what was covered so far is kept)."""
        with self._lock:
            self._span = max(0, end - start)

    def cover(self, seconds: float, empty: float = 0.0) -> None:
        """``seconds`` more of the range are done, ``empty`` of them without an object."""
        with self._lock:
            self._covered += seconds
            self._empty += empty

    def add_records(self, count: int) -> None:
        """``count`` more records were written."""
        with self._lock:
            self._records += count

    def finish(self) -> None:
        """The table is done: it leaves the periodic lines (the first call counts)."""
        with self._lock:
            if self._finished_at is None:
                self._finished_at = self._clock()

    def reading(self) -> Reading:
        """The meter's values now, read together."""
        with self._lock:
            return Reading(
                self._records,
                self._covered,
                self._span,
                self._first_used,
                self._finished_at,
                self._empty,
            )


class Report:
    """The run's progress over its tables' meters and the client's request counters.

    ``requests`` and ``throttled`` are live counts by table name (read unlocked, each as
    one ``dict`` copy). ``tick`` logs the progress lines, one ``log`` call per line;
    ``start`` runs it every ``interval`` seconds on a daemon thread until ``stop``.
    """

    def __init__(
        self,
        requests: Mapping[str, int],
        throttled: Mapping[str, int],
        *,
        log: Callable[[str], None],
        interval: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._requests = requests
        self._throttled = throttled
        self._log = log
        self.interval = interval
        self._clock = clock
        self._started_at = clock()
        self._meters: dict[str, TableMeter] = {}
        # Guards the meters' dict and what the last tick saw (its time and counts).
        self._lock = threading.Lock()
        self._last_at = self._started_at
        self._last_requests: dict[str, int] = dict(requests)
        self._last_seen: dict[str, tuple[int, float]] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def meter(self, table: str) -> TableMeter:
        """``table``'s meter, made on first use: the table is active from then on."""
        with self._lock:
            meter = self._meters.get(table)
            if meter is None:
                meter = self._meters[table] = TableMeter(self._clock)
            return meter

    def start(self) -> None:
        """Tick every ``interval`` seconds on a daemon thread (once; later calls do nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="progress-report", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.tick()

    def stop(self) -> None:
        """End the thread now (a tick under way finishes first); safe to call again."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def tick(self) -> None:
        """Log the progress lines now."""
        with self._lock:
            lines = self._progress_lines()
        for line in lines:
            self._log(line)

    def _progress_lines(self) -> list[str]:
        """The lines of one tick; moves the last tick's memory to now (under the lock)."""
        now = self._clock()
        seconds = now - self._last_at
        requests = dict(self._requests)
        throttled = dict(self._throttled)
        readings = {name: meter.reading() for name, meter in self._meters.items()}
        active = []
        for name, reading in readings.items():
            if reading.finished_at is not None:
                continue
            records, covered = self._last_seen.get(name, (0, 0.0))
            moved = (
                requests.get(name, 0) - self._last_requests.get(name, 0),
                reading.records - records,
                reading.covered - covered,
            )
            active.append((moved, name, reading))
        new_requests = sum(requests.values()) - sum(self._last_requests.values())
        self._last_at, self._last_requests = now, requests
        self._last_seen = {name: (r.records, r.covered) for name, r in readings.items()}

        busy = sorted(
            (row for row in active if any(row[0])),
            key=lambda row: (tuple(-delta for delta in row[0]), row[1]),
        )
        lines = [
            f"progress: {duration(now - self._started_at)} elapsed, "
            f"{_count(sum(r.records for r in readings.values()), 'record')}, "
            f"{_per_second(new_requests, seconds):.1f} requests/s, "
            f"{sum(throttled.values()):,} answered 429, {_count(len(active), 'table')} active"
        ]
        for (new, _, _), name, reading in busy[:MAX_TABLE_LINES]:
            records = _count(reading.records, "record")
            line = f"  {name}: {records}, {_per_second(new, seconds):.1f} req/s"
            share = reading.share()
            if share is not None:
                line += f", {share:.1%} of range"
            left = reading.seconds_left(now)
            lines.append(f"{line}, left {'?' if left is None else duration(left)}")
        hidden = len(active) - min(len(busy), MAX_TABLE_LINES)
        if hidden:
            quiet = len(active) - len(busy)
            more = f"  +{hidden} more " + ("table" if hidden == 1 else "tables")
            lines.append(more + (f" ({quiet} quiet)" if quiet else ""))
        return lines

    def summary(self) -> list[str]:
        """The end-of-run table: a row per table used or that made requests, by name, and
        a total row. A table with no meter shows ``-`` for its records and seconds. In a
        run of many accounts (names ``account/table``) a row sums a table's accounts (its
        seconds: the longest), and a last line counts the accounts."""
        now = self._clock()
        requests = dict(self._requests)
        throttled = dict(self._throttled)
        with self._lock:
            readings = {name: meter.reading() for name, meter in self._meters.items()}
        counted = {name for counts in (requests, throttled) for name, n in counts.items() if n}
        names = readings.keys() | counted
        tables: dict[str, list[str]] = {}
        for name in names:
            tables.setdefault(name.rpartition("/")[2], []).append(name)
        rows = [list(SUMMARY_COLUMNS)]
        for table in sorted(tables):
            found = [readings[name] for name in tables[table] if name in readings]
            rows.append(
                [
                    table,
                    f"{sum(r.records for r in found):,}" if found else "-",
                    f"{sum(requests.get(name, 0) for name in tables[table]):,}",
                    f"{sum(throttled.get(name, 0) for name in tables[table]):,}",
                    f"{max(r.seconds(now) for r in found):.1f}" if found else "-",
                ]
            )
        rows.append(
            [
                "total",
                f"{sum(r.records for r in readings.values()):,}",
                f"{sum(requests.values()):,}",
                f"{sum(throttled.values()):,}",
                f"{now - self._started_at:.1f}",
            ]
        )
        lines = _aligned(rows)
        rule = "-" * len(lines[0])
        accounts = {name.rpartition("/")[0] for name in names} - {""}
        more = [f"{len(accounts):,} accounts"] if accounts else []
        return [lines[0], rule, *lines[1:-1], rule, lines[-1], *more]
