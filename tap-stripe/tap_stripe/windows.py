"""``created`` windows: who fetches what next, and how far the bookmark may move.

A list table's range ``[start, end)`` of ``created`` seconds is read as windows. Each
window is paged newest first (Stripe's order) with ``created[gte]``/``created[lt]`` and
``starting_after``. When a window's page says ``has_more`` and workers are idle, the
unread part below the page's oldest record is split off into new windows: the current
window keeps its cursor but narrows its lower bound to a point at or below that record
(so the cursor object is still inside its filter), and the rest becomes fresh windows.
Dense ranges therefore split until every worker is busy, sparse ones cost one request.

The bookmark may only move to the end of the contiguous run of completed windows that
starts at ``start``; windows finishing out of order wait in :class:`Frontier`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """``created`` in ``[lo, hi)``, continuing after object ``cursor`` when set.

    ``top``: when continuing, the newest ``created`` not read yet (the cursor object's);
    it travels with the window because another worker may take the window the moment it
    is queued.
    """

    lo: int
    hi: int
    cursor: str | None = None
    top: int | None = None

    @property
    def unread_top(self) -> int:
        """The newest ``created`` of the window not read yet."""
        return self.hi if self.top is None else self.top


class Scheduler:
    """Thread-safe queue of windows to fetch, oldest first, with adaptive splitting."""

    def __init__(self, windows: list[Window], workers: int, pages_per_window: int = 10) -> None:
        self.workers = max(1, workers)
        self.pages_per_window = max(1, pages_per_window)
        # Windows kept queued beyond the busy workers, so a worker that finishes finds
        # work at once instead of waiting for the next page to be split.
        self.spare = self.workers // 2
        self._heap: list[tuple[int, int, Window]] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._stopped = False
        self._cond = threading.Condition()
        for window in windows:
            self._push(window)

    def _push(self, window: Window) -> None:
        heapq.heappush(self._heap, (window.lo, next(self._seq), window))

    def take(self) -> Window | None:
        """The next window to fetch; ``None`` once everything is fetched or on stop."""
        with self._cond:
            while not self._heap and self._in_flight and not self._stopped:
                self._cond.wait()
            if self._stopped or not self._heap:
                return None
            self._in_flight += 1
            return heapq.heappop(self._heap)[2]

    def continue_after(
        self, window: Window, first_created: int, last_created: int, last_id: str
    ) -> Window:
        """``window``'s page (``first_created`` down to ``last_created``, ending at object
        ``last_id``) has more to come: queue the rest.

        While workers are idle, the rest is cut into pieces, newest first: the first
        expected (from this page's density) to hold ``pages_per_window`` pages, each
        older one twice as long as the one before, the oldest taking whatever history
        remains. Every window ends with a partial page, so much smaller pieces would
        spend requests; doubling keeps a long, mostly empty history to a few requests,
        while a dense old piece splits again once it turns out dense.

        Returns the window that continues the cursor (possibly narrowed); any part split
        off is queued as new windows.
        """
        with self._cond:
            idle = self.workers + self.spare - (len(self._heap) + self._in_flight)
            lo = window.lo
            seconds_per_page = max(1, first_created - last_created)
            piece = seconds_per_page * self.pages_per_window
            cont_lo = max(lo, last_created + 1 - piece)
            if idle > 0 and cont_lo - lo >= seconds_per_page:
                top = cont_lo
                while top > lo and idle > 0:
                    idle -= 1
                    bottom = top - piece
                    if idle == 0 or bottom - lo < piece:  # no sliver left below
                        bottom = lo
                    self._push(Window(bottom, top))
                    top = bottom
                    piece *= 2
            else:
                cont_lo = lo
            cont = Window(cont_lo, window.hi, last_id, last_created)
            self._push(cont)
            self._in_flight -= 1
            self._cond.notify_all()
            return cont

    def done(self, window: Window) -> None:
        """``window`` (taken by this worker) is fully fetched."""
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def stop(self) -> None:
        """Make every ``take`` return ``None``."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


class Frontier:
    """End of the contiguous prefix of completed windows, starting at ``start``."""

    def __init__(self, start: int) -> None:
        self.position = start
        self._completed: dict[int, int] = {}

    def complete(self, window: Window) -> bool:
        """Mark ``[window.lo, window.hi)`` done; return whether the position moved."""
        self._completed[window.lo] = window.hi
        moved = False
        while self.position in self._completed:
            self.position = self._completed.pop(self.position)
            moved = True
        return moved
