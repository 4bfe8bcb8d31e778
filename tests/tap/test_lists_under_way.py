"""The per-parent lists a parent's writer leaves under way: what a page waits for."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest
from tap_stripe.baton import Baton
from tap_stripe.lists_under_way import ListsUnderWay

from tests.tap.watched_baton import WatchedBaton


def written() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future


def test_a_window_waits_only_for_the_lists_of_parents_below_its_end() -> None:
    baton = WatchedBaton()
    lists = ListsUnderWay(baton)
    above: Future[None] = Future()
    lists.add([written()], created_below=100)
    lists.add([written()], created_below=None)
    lists.add([above], created_below=500)

    window = threading.Thread(target=lists.wait, kwargs={"below": 200})
    window.start()
    window.join(timeout=10)

    assert not window.is_alive() and not baton.waiting.is_set()
    everything = threading.Thread(target=lists.wait)
    everything.start()
    assert baton.waiting.wait(timeout=10)
    above.set_result(None)
    everything.join(timeout=10)
    assert not everything.is_alive()


def test_a_failed_list_fails_the_page_that_waits_for_it() -> None:
    lists = ListsUnderWay(Baton())
    failed: Future[None] = Future()
    failed.set_exception(RuntimeError("list refused"))
    lists.add([written(), failed], created_below=None)

    with pytest.raises(RuntimeError, match="list refused"):
        lists.bound()
    lists.wait()  # reported once: nothing left to wait for


def test_past_the_limit_the_writer_waits_for_the_oldest_lists_only() -> None:
    baton = WatchedBaton()
    lists = ListsUnderWay(baton, limit=1)
    oldest: Future[None] = Future()
    newest: Future[None] = Future()
    lists.add([oldest, newest], created_below=None)

    bounding = threading.Thread(target=lists.bound)
    bounding.start()
    assert baton.waiting.wait(timeout=10), "two under way, one allowed: the writer waits"
    oldest.set_result(None)
    bounding.join(timeout=10)

    assert not bounding.is_alive() and not newest.done()


def test_the_writer_waits_without_the_baton() -> None:
    baton = Baton()
    lists = ListsUnderWay(baton)
    pending: Future[None] = Future()
    lists.add([pending], created_below=None)

    def list_writes_its_rows() -> None:
        with baton.holding():
            pending.set_result(None)

    with baton.holding():
        threading.Thread(target=list_writes_its_rows).start()
        lists.wait()
        assert baton.held()
