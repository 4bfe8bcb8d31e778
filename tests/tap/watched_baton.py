"""A baton for the tests that must know when a writer lets it go to wait."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tap_stripe.baton import Baton


class WatchedBaton(Baton):
    """A baton that tells when the writer lets it go to wait (for its next page, or a
    list under way)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    @contextmanager
    def released(self) -> Iterator[None]:
        self.waiting.set()
        with super().released():
            yield
