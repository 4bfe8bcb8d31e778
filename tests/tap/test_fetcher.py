"""Sharing between streams: the writer's baton, the page budget, and a fetcher's report of
how much of its range it read."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import orjson
import pytest
from tap_stripe.baton import Baton
from tap_stripe.fetcher import Page, PageBudget, PageFetcher
from tap_stripe.windows import Window

from tests.tap.watched_baton import WatchedBaton


@dataclass
class FakeFetcher:
    active: bool = False
    closed: bool = False


def test_the_page_budget_holds_back_only_the_fetchers_nobody_reads() -> None:
    budget = PageBudget(limit=2)
    waiting, current = FakeFetcher(), FakeFetcher(active=True)
    budget.acquire(waiting)  # type: ignore[arg-type]
    budget.acquire(waiting)  # type: ignore[arg-type]

    budget.acquire(current)  # type: ignore[arg-type] - never waits
    blocked = threading.Thread(target=budget.acquire, args=(waiting,))
    blocked.start()
    budget.release()
    budget.release()
    blocked.join(timeout=5)

    assert not blocked.is_alive()


def test_the_baton_is_let_go_only_by_the_thread_holding_it() -> None:
    baton = Baton()
    with baton.released():  # not held: nothing to let go
        assert not baton.held()
    with baton.holding():
        assert baton.held()
        seen_elsewhere = []
        other = threading.Thread(target=lambda: seen_elsewhere.append(baton.held()))
        other.start()
        other.join()
        with baton.released():
            assert not baton.held()
            other = threading.Thread(target=lambda: seen_elsewhere.append(_take(baton)))
            other.start()
            other.join(timeout=5)
        assert baton.held()
    assert seen_elsewhere == [False, True]


def _take(baton: Baton) -> bool:
    with baton.holding():
        return baton.held()


def test_a_writer_waiting_for_its_next_page_lets_another_table_write() -> None:
    baton = Baton()
    page_may_come = threading.Event()

    def fetch(window: Window) -> tuple[list[bytes], bool]:
        page_may_come.wait(timeout=10)
        return [orjson.dumps({"id": "ch_1", "created": 5})], False

    fetcher = PageFetcher("t", fetch, [Window(0, 10)], workers=1, baton=baton)
    other_wrote = []

    def other_table() -> None:
        with baton.holding():
            other_wrote.append(True)
        page_may_come.set()

    with baton.holding():
        threading.Thread(target=other_table).start()
        pages = list(fetcher)  # waits for the page: the other table writes meanwhile
        assert baton.held()

    assert other_wrote == [True]
    assert [page.finished for page in pages] == [Window(0, 10)]


def test_the_pages_of_a_range_report_covering_all_of_it_once() -> None:
    """Windows split and continue after cursors; what their pages cover adds up to the
    range, neither more nor less."""
    created = list(range(10_000, 0, -7))  # newest first, as Stripe lists
    rows = [{"id": f"ch_{c}", "created": c} for c in created]

    def fetch(window: Window) -> tuple[list[bytes], bool]:
        inside = [r for r in rows if window.lo <= r["created"] < window.hi]
        if window.cursor is not None:
            inside = [r for r in inside if r["created"] < int(window.cursor[3:])]
        page = inside[:100]
        return [orjson.dumps(r) for r in page], len(inside) > 100

    covered: list[float] = []
    lock = threading.Lock()

    def cover(seconds: float, empty: float) -> None:
        with lock:
            covered.append(seconds)

    fetcher = PageFetcher("t", fetch, [Window(0, 10_001)], workers=4, on_cover=cover)
    records = sum(len(page.raws) for page in fetcher)

    assert records == len(rows)
    assert sum(covered) == 10_001


@pytest.mark.parametrize("band", [(900_000, 1_000_000), (0, 100_000), (450_000, 550_000)])
def test_the_parts_of_a_range_without_objects_are_reported_empty(band: tuple[int, int]) -> None:
    """Objects only in ``band`` of [0, 1,000,000), one every 50 s: the windows' pages find
    the rest of the range empty (above their newest object, and below the oldest of a
    window's last page), so what is covered and not empty is the band, give or take a
    50 s gap between two objects per page."""
    created = list(range(band[1] - 10, band[0], -50))
    rows = [{"id": f"ch_{c}", "created": c} for c in created]

    def fetch(window: Window) -> tuple[list[bytes], bool]:
        inside = [r for r in rows if window.lo <= r["created"] < window.hi]
        if window.cursor is not None:
            inside = [r for r in inside if r["created"] < int(window.cursor[3:])]
        return [orjson.dumps(r) for r in inside[:100]], len(inside) > 100

    covered: list[tuple[float, float]] = []
    lock = threading.Lock()

    def cover(seconds: float, empty: float) -> None:
        with lock:
            covered.append((seconds, empty))

    fetcher = PageFetcher("t", fetch, [Window(0, 1_000_000)], workers=4, on_cover=cover)
    assert sum(len(page.raws) for page in fetcher) == len(rows)

    assert sum(seconds for seconds, _ in covered) == 1_000_000
    assert all(0 <= empty <= seconds for seconds, empty in covered)
    holding = sum(seconds - empty for seconds, empty in covered)
    assert abs(holding - (created[0] - created[-1])) <= 50 * len(covered)


class Row(bytearray):
    """A raw record a test can hold a weak reference to (``bytes`` takes none)."""


def test_a_worker_waiting_for_its_next_request_holds_no_page() -> None:
    """At the account's limit a worker waits seconds for its next request: the page it
    fetched before (and the body its raw records are cut from) must not wait with it,
    nor with the writer waiting for the next page."""
    asked_again = threading.Event()
    may_answer = threading.Event()
    first: list[weakref.ref[Row]] = []

    def fetch(window: Window) -> tuple[list[bytearray], bool]:
        if window.cursor is None:
            row = Row(orjson.dumps({"id": "ch_2", "created": 6}))
            first.append(weakref.ref(row))
            return [row], True
        asked_again.set()
        may_answer.wait(timeout=10)
        return [Row(orjson.dumps({"id": "ch_1", "created": 5}))], False

    baton = WatchedBaton()
    fetcher = PageFetcher("t", fetch, [Window(0, 10)], workers=1, baton=baton)  # type: ignore[arg-type]
    pages = iter(fetcher)
    assert next(pages).more
    baton.waiting.clear()
    rest: list[Page] = []
    writer = threading.Thread(target=lambda: rest.extend(pages))
    writer.start()
    assert asked_again.wait(timeout=10) and baton.waiting.wait(timeout=10)

    alive = first[0]() is not None
    may_answer.set()
    writer.join(timeout=10)

    assert not alive, "the last page was held while the next one was asked for"
    assert [page.finished for page in rest] == [Window(0, 10, "ch_2", top=6)]
