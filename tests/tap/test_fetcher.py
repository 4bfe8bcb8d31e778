"""Sharing between streams: the writer's baton, the page budget, and a fetcher's report of
how much of its range it read."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import orjson
from tap_stripe.baton import Baton
from tap_stripe.fetcher import PageBudget, PageFetcher
from tap_stripe.windows import Window


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

    def cover(seconds: float) -> None:
        with lock:
            covered.append(seconds)

    fetcher = PageFetcher("t", fetch, [Window(0, 10_001)], workers=4, on_cover=cover)
    records = sum(len(page.raws) for page in fetcher)

    assert records == len(rows)
    assert sum(covered) == 10_001
