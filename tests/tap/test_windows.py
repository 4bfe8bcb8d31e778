"""Window scheduling: adaptive splitting and the contiguous-prefix bookmark."""

from __future__ import annotations

import itertools

from tap_stripe.windows import Frontier, Scheduler, Window


def test_a_dense_window_splits_below_its_page_when_workers_are_idle() -> None:
    scheduler = Scheduler([Window(0, 1000)], workers=4)
    window = scheduler.take()

    cont = scheduler.continue_after(window, last_created=800, last_id="ch_1")

    queued = []
    while (next_window := scheduler.take()) is not None:
        queued.append(next_window)
        scheduler.done()
    # The continuation keeps its cursor and still contains the cursor object.
    assert cont.cursor == "ch_1" and cont.lo <= 800 and cont.hi == 1000
    # Together the windows cover [0, 1000) exactly once.
    pieces = sorted((w.lo, w.hi) for w in queued)
    assert pieces[0][0] == 0 and pieces[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert len(queued) == 4


def test_no_split_when_every_worker_is_busy() -> None:
    scheduler = Scheduler([Window(0, 100), Window(100, 200)], workers=2)
    first = scheduler.take()
    scheduler.take()

    cont = scheduler.continue_after(first, last_created=50, last_id="x")

    assert cont == Window(0, 100, "x")


def test_windows_are_handed_out_oldest_first() -> None:
    scheduler = Scheduler([Window(300, 400), Window(0, 100), Window(100, 300)], workers=1)

    order = []
    while (window := scheduler.take()) is not None:
        order.append(window.lo)
        scheduler.done()

    assert order == [0, 100, 300]


def test_stop_ends_every_take() -> None:
    scheduler = Scheduler([Window(0, 10)], workers=1)
    scheduler.stop()

    assert scheduler.take() is None


def test_frontier_moves_only_over_a_contiguous_prefix() -> None:
    frontier = Frontier(0)

    assert not frontier.complete(Window(50, 100))
    assert frontier.position == 0
    assert frontier.complete(Window(0, 20))
    assert frontier.position == 20
    assert frontier.complete(Window(20, 50))
    assert frontier.position == 100
