"""Requests in flight: limits that Stripe's concurrency limiter teaches.

Besides their rate, Stripe limits the requests an account has in flight at once, and
those of one endpoint, and names the limiter that refused a request
(``Stripe-Rate-Limited-Reason: global-concurrency`` or ``endpoint-concurrency``); it
publishes no figure. Such a 429 is about overlap, not pace: halving the rate (the rate
limiter's answer) leaves the requests as concurrent as they were and idles the run.

So a refusal cuts the limit of requests in flight to nine tenths of the level it came at
(those in flight and the refused one), and successes win it back: one request in flight
per ``limit`` successes up to just below that level, then one per ``PROBE`` times
``limit``, which finds out slowly whether the level has risen. Against a fixed limit of L
in flight that is one refusal per about ``PROBE`` times L requests (0.4 % at 5, 0.1 % at
20), with nearly L in flight. More requests than the connection pool holds never go out
(the ceiling; ``client.py``).

A burst of refusals is one lesson: a refusal of a request that started before the last
cut says nothing the cut did not take into account.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

# The share of the level a refusal came at that stays allowed in flight.
CUT = 0.9
# Successes, per request in flight, that win one more back at the last refusal's level.
PROBE = 50
# The reasons Stripe gives for a refusal by its concurrency limiters.
GLOBAL_CONCURRENCY = "global-concurrency"
ENDPOINT_CONCURRENCY = "endpoint-concurrency"


class InFlight:
    """One limit of requests in flight (an account's, or an endpoint's)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(self.ceiling)
        self._active = 0
        self._cuts = 0  # how many times the limit was cut: the round a request started in
        self._refused_at = float("inf")  # requests in flight when the last refusal came
        self._cond = threading.Condition()

    def acquire(self) -> int:
        """Take a place among the requests in flight, waiting for one to be free; returns
        the round the request starts in, for :meth:`refused`."""
        with self._cond:
            while self._active >= int(self.limit):
                self._cond.wait()
            self._active += 1
            return self._cuts

    def release(self) -> None:
        """Let a place go."""
        with self._cond:
            self._active -= 1
            self._cond.notify()

    @contextlib.contextmanager
    def slot(self) -> Iterator[int]:
        """A place held while the block runs (see :meth:`acquire`)."""
        started_in = self.acquire()
        try:
            yield started_in
        finally:
            self.release()

    def refused(self, started_in: int) -> None:
        """Stripe refused a request started in round ``started_in`` (after its slot was
        let go): cut the limit, unless a refusal since that round cut it already."""
        with self._cond:
            if started_in != self._cuts:
                return
            self._cuts += 1
            self._refused_at = min(self.limit, self._active + 1)
            self.limit = max(1.0, self._refused_at * CUT)

    def succeeded(self) -> None:
        """A request went through: win back one request in flight per ``limit`` successes,
        or per ``PROBE`` times ``limit`` at the level of the last refusal."""
        if self.limit >= self.ceiling:
            return
        with self._cond:
            before = int(self.limit)
            probing = self.limit + 1 >= self._refused_at
            step = 1 / (self.limit * (PROBE if probing else 1))
            self.limit = min(float(self.ceiling), self.limit + step)
            if int(self.limit) > before:
                self._cond.notify()


class Place:
    """One request's place in flight, in its endpoint's limit and its account's."""

    def __init__(self, endpoint: InFlight, account: InFlight) -> None:
        self.endpoint, self.account = endpoint, account
        self._rounds = (0, 0)

    def __enter__(self) -> Place:
        started_in = self.endpoint.acquire()
        try:
            self._rounds = (started_in, self.account.acquire())
        except BaseException:
            self.endpoint.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.account.release()
        self.endpoint.release()

    def succeeded(self) -> None:
        """The request went through."""
        self.endpoint.succeeded()
        self.account.succeeded()

    def refused(self, reason: str) -> None:
        """Stripe refused the request (after its place was let go) for ``reason``, its
        ``Stripe-Rate-Limited-Reason``: a concurrency limiter's cuts that limit."""
        if reason == ENDPOINT_CONCURRENCY:
            self.endpoint.refused(self._rounds[0])
        elif reason == GLOBAL_CONCURRENCY:
            self.account.refused(self._rounds[1])


class InFlights:
    """An account's limits of requests in flight: of all its requests, and of each
    endpoint's (made at the endpoint's first request)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.account = InFlight(ceiling)
        self._endpoints: dict[str, InFlight] = {}
        self._lock = threading.Lock()

    def of(self, endpoint: str) -> InFlight:
        """``endpoint``'s limit."""
        limit = self._endpoints.get(endpoint)
        if limit is None:
            with self._lock:
                limit = self._endpoints.setdefault(endpoint, InFlight(self.ceiling))
        return limit

    def place(self, endpoint: str) -> Place:
        """A place in flight for a request to ``endpoint`` (a context manager)."""
        return Place(self.of(endpoint), self.account)
