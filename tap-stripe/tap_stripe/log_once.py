"""Warnings said once a minute per kind, not once per request.

A sync at the rate limit's edge can see hundreds of retries: one line per endpoint and
kind of fault a minute, with how many went unsaid, tells the same without the noise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

INTERVAL_SECONDS = 60.0


class OncePerMinute:
    """Which warnings are due: the first of a kind, then one a minute."""

    def __init__(
        self, interval: float = INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._unsaid: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def due(self, kind: Hashable) -> int | None:
        """``None`` if a warning of ``kind`` was said less than a minute ago (it is
        counted), else how many went unsaid since the last one (the caller says it now)."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._unsaid[kind] = self._unsaid.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._unsaid.pop(kind, 0)
