"""Window scheduling: density-sized splitting and the contiguous-prefix bookmark."""

from __future__ import annotations

import itertools

from tap_stripe.windows import Frontier, Scheduler, Window


def drain(scheduler: Scheduler) -> list[Window]:
    taken = []
    while (window := scheduler.take()) is not None:
        taken.append(window)
        scheduler.done(window)
    return taken


def test_a_dense_window_splits_into_pieces_of_several_pages() -> None:
    scheduler = Scheduler([Window(0, 1000)], workers=4, pages_per_window=2)
    window = scheduler.take()

    # The page spanned 100 seconds: two pages' worth is 200 seconds, then doubling.
    cont = scheduler.continue_after(window, first_created=900, last_created=800, last_id="ch_1")

    # The continuation keeps its cursor and still contains the cursor object.
    assert cont == Window(601, 1000, "ch_1", top=800)
    pieces = sorted((w.lo, w.hi) for w in drain(scheduler))
    assert pieces == [(0, 401), (401, 601), (601, 1000)]


def test_the_oldest_piece_takes_the_rest_of_history() -> None:
    scheduler = Scheduler([Window(0, 1_000_000)], workers=2, pages_per_window=1)
    window = scheduler.take()

    cont = scheduler.continue_after(window, 999_990, 999_980, "x")

    pieces = sorted((w.lo, w.hi) for w in drain(scheduler))
    assert cont.lo == 999_971
    assert pieces[0] == (0, 999_961)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert pieces[-1][1] == 1_000_000


def test_no_split_when_little_is_left() -> None:
    scheduler = Scheduler([Window(0, 1000)], workers=8, pages_per_window=10)
    window = scheduler.take()

    cont = scheduler.continue_after(window, first_created=500, last_created=400, last_id="x")

    assert cont == Window(0, 1000, "x", top=400)


def test_no_split_when_every_worker_is_busy_and_spares_are_queued() -> None:
    windows = [Window(i * 100, i * 100 + 100) for i in range(3)]
    scheduler = Scheduler(windows, workers=2, pages_per_window=1)
    first = scheduler.take()
    scheduler.take()

    cont = scheduler.continue_after(first, first_created=90, last_created=50, last_id="x")

    assert cont == Window(0, 100, "x", top=50)


def test_windows_are_handed_out_oldest_first() -> None:
    scheduler = Scheduler([Window(300, 400), Window(0, 100), Window(100, 300)], workers=1)

    assert [w.lo for w in drain(scheduler)] == [0, 100, 300]


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
