"""The progress report: periodic lines from meters and request counters (a fake clock,
``tick`` called directly), the end-of-run summary, and its thread."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import pytest
from tap_stripe.report import MAX_TABLE_LINES, Report, TableMeter, duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    """A report over live counters, logging into a list; ``tick`` returns the lines."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.requests: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.logged: list[str] = []
        self.report = Report(
            self.requests, self.throttled, log=self.logged.append, clock=self.clock
        )

    def tick(self) -> list[str]:
        self.logged.clear()
        self.report.tick()
        return list(self.logged)


@pytest.fixture
def harness() -> Harness:
    return Harness()


def table_line(lines: list[str], table: str) -> str:
    found = [line for line in lines if line.startswith(f"  {table}: ")]
    assert len(found) == 1, lines
    return found[0]


def test_durations_read_as_seconds_minutes_or_hours() -> None:
    assert [duration(s) for s in (0, 42.4, 185, 3720, 90_000)] == [
        "0s",
        "42s",
        "3m05s",
        "1h02m",
        "25h00m",
    ]


def test_requests_per_second_come_from_the_counter_deltas_of_each_interval(harness) -> None:
    meter = harness.report.meter("charges")
    meter.add_records(1)
    harness.clock.advance(10)
    harness.requests["charges"] += 100
    assert "10.0 req/s" in table_line(harness.tick(), "charges")

    # The next interval counts only the requests made during it, over its own length.
    harness.clock.advance(20)
    harness.requests["charges"] += 50
    meter.add_records(1)
    assert "2.5 req/s" in table_line(harness.tick(), "charges")


def test_the_header_totals_records_requests_per_second_and_429s(harness) -> None:
    harness.report.meter("charges").add_records(1_500)
    harness.report.meter("customers").add_records(250)
    harness.requests.update({"charges": 30, "customers": 10, "balance": 20})
    harness.throttled.update({"charges": 4, "balance": 1})
    harness.clock.advance(125)

    header = harness.tick()[0]

    assert header == (
        "progress: 2m05s elapsed, 1,750 records, 0.5 requests/s, 5 answered 429, 2 tables active"
    )


def test_share_of_the_range_and_time_left_from_the_cover_rate_so_far(harness) -> None:
    meter = harness.report.meter("invoices")
    meter.set_range(1_000_000, 1_001_000)
    harness.clock.advance(10)
    meter.cover(250)  # 25 seconds of range per wall second: 750 left take 30 s

    line = table_line(harness.tick(), "invoices")

    assert "25.0% of range" in line
    assert line.endswith("left 30s")


def test_the_empty_years_before_the_first_object_leave_the_share_and_the_time_left(
    harness,
) -> None:
    """A range from 1970 whose first pages find the 50 years before the account's first
    object empty: what counts is the part that holds objects."""
    meter = harness.report.meter("charges")
    meter.set_range(0, 1_100_000)
    harness.clock.advance(10)
    meter.cover(1_000_000, empty=1_000_000)  # the prehistory, one empty page
    meter.cover(25_000)  # a quarter of the 100,000 seconds that hold objects, in 10 s

    line = table_line(harness.tick(), "charges")

    assert "25.0% of range" in line
    assert line.endswith("left 30s")


def test_a_range_found_empty_throughout_shows_as_done(harness) -> None:
    meter = harness.report.meter("topups")
    meter.set_range(0, 1_000)
    harness.clock.advance(1)
    meter.cover(1_000, empty=1_000)

    line = table_line(harness.tick(), "topups")

    assert "100.0% of range" in line
    assert line.endswith("left 0s")


def test_time_left_uses_the_rate_over_the_whole_run_not_the_last_interval(harness) -> None:
    meter = harness.report.meter("invoices")
    meter.set_range(0, 10_000)
    harness.clock.advance(100)
    meter.cover(1_000)
    harness.tick()
    harness.clock.advance(100)
    meter.cover(3_000)  # 4,000 in 200 s: 20/s, 6,000 left take 300 s

    line = table_line(harness.tick(), "invoices")

    assert "40.0% of range" in line
    assert line.endswith("left 5m00s")


def test_the_last_range_set_wins(harness) -> None:
    meter = harness.report.meter("invoices")
    meter.set_range(0, 100)
    meter.set_range(0, 1_000)
    harness.clock.advance(5)
    meter.cover(100)

    assert "10.0% of range" in table_line(harness.tick(), "invoices")


def test_no_share_and_an_unknown_time_left_without_a_range_or_before_any_cover(harness) -> None:
    whole = harness.report.meter("balance")  # read whole: no range
    empty = harness.report.meter("payouts")
    empty.set_range(500, 500)
    waiting = harness.report.meter("refunds")
    waiting.set_range(0, 1_000)
    for meter in (whole, empty, waiting):
        meter.add_records(1)
    harness.clock.advance(10)

    lines = harness.tick()

    assert table_line(lines, "balance") == "  balance: 1 record, 0.0 req/s, left ?"
    assert table_line(lines, "payouts") == "  payouts: 1 record, 0.0 req/s, left ?"
    assert table_line(lines, "refunds") == "  refunds: 1 record, 0.0 req/s, 0.0% of range, left ?"


def test_a_range_covered_past_its_end_shows_as_done(harness) -> None:
    meter = harness.report.meter("invoices")
    meter.set_range(0, 100)
    harness.clock.advance(10)
    meter.cover(150)

    line = table_line(harness.tick(), "invoices")

    assert "100.0% of range" in line
    assert line.endswith("left 0s")


def test_a_finished_table_drops_out_of_the_periodic_lines(harness) -> None:
    done = harness.report.meter("coupons")
    harness.report.meter("charges").add_records(1)
    done.add_records(3)
    done.finish()
    harness.clock.advance(10)

    lines = harness.tick()

    assert not any(line.startswith("  coupons:") for line in lines)
    assert "charges" in lines[1]
    assert lines[0].endswith("4 records, 0.0 requests/s, 0 answered 429, 1 table active")


def test_quiet_tables_are_not_repeated_but_counted(harness) -> None:
    busy = harness.report.meter("charges")
    quiet = harness.report.meter("customers")
    busy.add_records(1)
    quiet.add_records(1)
    harness.clock.advance(10)
    assert len(harness.tick()) == 3

    harness.clock.advance(10)
    busy.cover(5)
    lines = harness.tick()

    assert lines[1].startswith("  charges: ")
    assert lines[2:] == ["  +1 more table (1 quiet)"]


def test_forty_tables_show_the_busiest_and_a_count_of_the_rest(harness) -> None:
    for i in range(40):
        name = f"table_{i:02d}"
        harness.report.meter(name).add_records(1)
        harness.requests[name] += i  # table_39 is the busiest
    harness.clock.advance(10)

    lines = harness.tick()

    shown = [line.split(":")[0].strip() for line in lines[1:-1]]
    assert shown == [f"table_{i:02d}" for i in range(39, 39 - MAX_TABLE_LINES, -1)]
    assert lines[-1] == f"  +{40 - MAX_TABLE_LINES} more tables"
    assert lines[0].endswith("40 tables active")


def test_activity_ranks_requests_then_records_then_range_covered(harness) -> None:
    for name in ("a_cover", "b_records", "c_requests"):
        harness.report.meter(name)
    harness.report.meter("a_cover").cover(1)
    harness.report.meter("b_records").add_records(1)
    harness.requests["c_requests"] += 1
    harness.clock.advance(10)

    lines = harness.tick()

    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "c_requests",
        "b_records",
        "a_cover",
    ]


def test_meter_is_get_or_create(harness) -> None:
    first = harness.report.meter("charges")
    assert harness.report.meter("charges") is first
    assert harness.report.meter("customers") is not first


def columns_end(line: str) -> list[int]:
    return [match.end() for match in re.finditer(r"\S+", line)]


def test_the_summary_is_an_aligned_table_by_name_with_totals(harness) -> None:
    charges = harness.report.meter("charges")
    harness.clock.advance(5)
    customers = harness.report.meter("customers")
    charges.add_records(12_345)
    customers.add_records(7)
    harness.requests.update({"charges": 130, "customers": 2, "events": 4})
    harness.throttled.update({"charges": 3})
    harness.clock.advance(20)
    customers.finish()
    harness.clock.advance(40)

    lines = harness.report.summary()

    assert lines[0].split() == ["table", "records", "requests", "429s", "seconds"]
    rows = [lines[0], *lines[2:-2], lines[-1]]
    assert [line.split() for line in rows[1:]] == [
        ["charges", "12,345", "130", "3", "65.0"],  # unfinished: up to the summary
        ["customers", "7", "2", "0", "20.0"],  # first use to finish
        ["events", "-", "4", "0", "-"],  # requests, but no meter
        ["total", "12,352", "136", "3", "65.0"],
    ]
    assert set(lines[1]) == {"-"} and lines[1] == lines[-2]
    assert len({len(line) for line in lines}) == 1
    # Names start at the left edge; numbers end under their column's heading.
    assert all(not line.startswith(" ") for line in rows)
    assert {tuple(columns_end(line)[1:]) for line in rows} == {tuple(columns_end(lines[0])[1:])}


def test_the_summary_of_an_unused_report_is_a_total_of_zeros(harness) -> None:
    lines = harness.report.summary()

    assert len(lines) == 4
    assert lines[-1].split() == ["total", "0", "0", "0", "0.0"]


@contextmanager
def interleaved(*functions: Callable) -> Iterator[None]:
    """Let threads started inside switch between any two bytecodes of ``functions``.

    CPython 3.11 only switches threads at calls and backward jumps, so a bare
    ``self.n += 1`` never loses an update there and a missing lock would go unseen;
    tracing the functions' opcodes puts a call (a switch point) between every two.
    """
    codes = {function.__code__ for function in functions}

    def opcodes(frame: FrameType, event: str, arg: object) -> Callable:
        return opcodes

    def calls(frame: FrameType, event: str, arg: object) -> Callable | None:
        if frame.f_code not in codes:
            return None
        frame.f_trace_opcodes = True
        return opcodes

    trace, switch = threading.gettrace(), sys.getswitchinterval()
    threading.settrace(calls)
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        threading.settrace(trace)
        sys.setswitchinterval(switch)


def test_meters_count_exactly_under_concurrent_updates() -> None:
    meter = Report(Counter(), Counter(), log=lambda line: None).meter("charges")
    threads, per_thread = 8, 10_000

    def work() -> None:
        for _ in range(per_thread):
            meter.add_records(1)
            meter.cover(0.5)

    # Without the meter's lock, about a third of the updates are lost here.
    with interleaved(TableMeter.add_records, TableMeter.cover):
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    reading = meter.reading()
    assert reading.records == threads * per_thread
    assert reading.covered == threads * per_thread * 0.5


def test_threads_asking_for_the_same_meters_at_once_share_them(harness) -> None:
    tables = [f"table_{i}" for i in range(10_000)]
    got: list[list[TableMeter]] = []

    def ask() -> None:
        got.append([harness.report.meter(table) for table in tables])

    # Without the report's lock, some tables get two meters and lose records.
    with interleaved(Report.meter, TableMeter.__init__):
        askers = [threading.Thread(target=ask) for _ in range(8)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join()

    assert len(got) == 8
    for meters in zip(*got, strict=True):
        assert all(meter is meters[0] for meter in meters)


def test_the_thread_ticks_every_interval_until_stopped() -> None:
    logged = threading.Event()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        logged.set()

    report = Report(Counter(), Counter(), log=log, interval=0.01)
    report.meter("charges").add_records(2)
    report.start()
    try:
        assert logged.wait(timeout=10)
    finally:
        report.stop()

    assert lines[0].startswith("progress: ")
    assert "2 records" in lines[0]
    assert "1 table active" in lines[0]
    assert not report._thread.is_alive()


def test_stop_is_prompt_idempotent_and_a_short_run_logs_nothing() -> None:
    lines: list[str] = []
    report = Report(Counter(), Counter(), log=lines.append, interval=60)
    report.start()
    report.start()  # a second start makes no second thread
    thread = report._thread
    assert [t for t in threading.enumerate() if t.name == "progress-report"] == [thread]

    began = time.monotonic()
    report.stop()
    report.stop()
    took = time.monotonic() - began

    assert thread is not None
    assert not thread.is_alive()
    assert took < 5  # far less than the 60 s interval
    assert lines == []
    assert [t for t in threading.enumerate() if t.name == "progress-report"] == []


def test_a_start_after_stop_never_ticks() -> None:
    lines: list[str] = []
    report = Report(Counter(), Counter(), log=lines.append, interval=0)
    report.stop()  # before any start: nothing to end
    report.start()

    report._thread.join(timeout=5)
    assert not report._thread.is_alive()
    assert lines == []


def test_the_summary_of_many_accounts_sums_each_table_over_its_accounts(harness) -> None:
    for account, records in (("acct_1A", 10), ("acct_1B", 5)):
        meter = harness.report.meter(f"{account}/charges")
        meter.add_records(records)
        harness.requests[f"{account}/charges"] = records // 5
    harness.requests["(accounts)"] = 1

    lines = harness.report.summary()

    rows = [line.split() for line in lines]
    assert rows[2][:3] == ["(accounts)", "-", "1"]
    assert rows[3][:4] == ["charges", "15", "3", "0"]
    assert rows[-2][:3] == ["total", "15", "4"]
    assert lines[-1] == "2 accounts"
