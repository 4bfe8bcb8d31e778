"""Sharing between streams: request slots (current stream first) and the page budget."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tap_stripe.fetcher import FetchSlots, PageBudget


@dataclass
class FakeFetcher:
    active: bool = False
    closed: bool = False
    waiting_windows: int = 0
    pages_fetched: int = 1

    def has_waiting_windows(self) -> bool:
        return self.waiting_windows > 0


def test_waiting_streams_leave_slots_to_the_current_one_while_it_has_work() -> None:
    slots = FetchSlots(4)
    current, waiting = FakeFetcher(active=True, waiting_windows=3), FakeFetcher()
    slots.current = current  # type: ignore[assignment]

    assert slots.yields_to_current(waiting)  # type: ignore[arg-type]
    assert not slots.yields_to_current(current)  # type: ignore[arg-type]
    current.waiting_windows = 0
    assert not slots.yields_to_current(waiting)  # type: ignore[arg-type]
    current.waiting_windows, current.closed = 3, True
    assert not slots.yields_to_current(waiting)  # type: ignore[arg-type]


def test_a_waiting_stream_fetches_its_first_page_at_once() -> None:
    slots = FetchSlots(4)
    slots.current = FakeFetcher(active=True, waiting_windows=3)  # type: ignore[assignment]

    assert not slots.yields_to_current(FakeFetcher(pages_fetched=0))  # type: ignore[arg-type]


def test_a_slot_is_free_again_when_its_request_ends() -> None:
    slots = FetchSlots(1)
    fetcher = FakeFetcher()
    order = []

    def second_request() -> None:
        with slots.slot(fetcher):  # type: ignore[arg-type]
            order.append("second")

    with slots.slot(fetcher):  # type: ignore[arg-type]
        thread = threading.Thread(target=second_request)
        thread.start()
        order.append("first")
    thread.join(timeout=5)

    assert order == ["first", "second"]


def test_the_page_budget_holds_back_only_the_waiting_streams() -> None:
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
