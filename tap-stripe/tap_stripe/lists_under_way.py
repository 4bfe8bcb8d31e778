"""A parent table's per-parent lists started and not yet known to be written.

Each list writes its own rows (``family.ListedChild``), so the parent's writer goes on to
its next pages while they run: one page's lists then overlap the next page's instead of
each page waiting for its slowest list (a payout with thousands of balance transactions is
one list read a page at a time). What must wait is the state: before a bookmark is saved,
the lists of the parents it covers must be written. Every list is kept with its page's
``created_below`` (``fetcher.Page``), so a page finishing a window waits only for the lists
of the parents below the window's end.
"""

from __future__ import annotations

from concurrent import futures
from concurrent.futures import Future

from tap_stripe.baton import Baton

# Lists left under way while the writer goes on (a few hundred bytes each: a parent's id).
MAX_LISTS_AHEAD = 2000


class ListsUnderWay:
    """Lists started, each with the ``created_below`` of its parents' page."""

    def __init__(self, baton: Baton, limit: int = MAX_LISTS_AHEAD) -> None:
        self._baton = baton
        self.limit = limit
        self._lists: list[tuple[Future[None], int | None]] = []

    def add(self, lists: list[Future[None]], created_below: int | None) -> None:
        """Keep the lists of one page of parents, all created before ``created_below``
        (``None``: not known)."""
        self._lists += [(future, created_below) for future in lists]

    def wait(self, below: int | None = None) -> None:
        """Wait (without the baton) for the lists of the parents created before ``below``
        (all when ``None``; those of pages not known to be, always); raise the first
        failure among them."""
        waited = [
            future
            for future, page_below in self._lists
            if below is None or page_below is None or page_below <= below
        ]
        if waited:
            chosen = set(waited)
            self._lists = [entry for entry in self._lists if entry[0] not in chosen]
            self._wait_for(waited)

    def bound(self) -> None:
        """Forget the lists written (raising a failure), and wait for the oldest while more
        than ``limit`` are under way."""
        done = [future for future, _ in self._lists if future.done()]
        self._lists = [entry for entry in self._lists if not entry[0].done()]
        excess = len(self._lists) - self.limit
        if excess > 0:
            done += [future for future, _ in self._lists[:excess]]
            self._lists = self._lists[excess:]
        self._wait_for(done)

    def drop(self) -> None:
        """Forget every list (the table failed or stopped: nothing is saved after)."""
        self._lists = []

    def _wait_for(self, lists: list[Future[None]]) -> None:
        if not lists:
            return
        if not all(future.done() for future in lists):
            with self._baton.released():
                futures.wait(lists)
        for future in lists:
            future.result()
