"""Requests in flight: limits that Stripe's concurrency limiter teaches.

Besides their rate, Stripe limits the requests an account has in flight at once, and
those of one endpoint, and names the limiter that refused a request
(``Stripe-Rate-Limited-Reason: global-concurrency`` or ``endpoint-concurrency``); it
publishes no figure. Such a 429 is about overlap, not pace: halving the rate (the rate
limiter's answer) leaves the requests as concurrent as they were and idles the run.

So a refusal cuts the limit of requests in flight to nine tenths of the level the refused
request was sent at (the requests then in flight, itself included; a whole number, one
less at least), and successes win it
back: one request in flight per ``limit`` successes up to just below that level, then one
per ``PROBE`` times ``limit`` until one past it, which finds out slowly whether Stripe
allows more now. Against a fixed limit of L
in flight that is one refusal per about ``PROBE`` times L requests (0.4 % at 5, 0.1 % at
20), with nearly L in flight. More requests than the connection pool holds never go out
(the ceiling; ``client.py``).

A burst of refusals is one lesson: a refusal of a request that started before the last
cut says nothing the cut did not take into account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tap_stripe.responses import Cancelled

# The share of the level a refusal came at that stays allowed in flight.
CUT = 0.9
# Successes, per request in flight, that win one more back at the last refusal's level.
PROBE = 50
# The reasons Stripe gives for a refusal by its concurrency limiters.
GLOBAL_CONCURRENCY = "global-concurrency"
ENDPOINT_CONCURRENCY = "endpoint-concurrency"
# How often a request waiting for its place looks whether the sync is ending.
WAIT_STEP_SECONDS = 0.25


class InFlight:
    """One limit of requests in flight (an account's, or an endpoint's)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(self.ceiling)
        self._active = 0  # places taken (their requests sent, or waiting for another limit)
        self._sent = 0  # requests sent and not answered yet: the level Stripe sees
        self._cuts = 0  # how many times the limit was cut: the round a request started in
        self._refused_at = float("inf")  # the level of the last refusal, until passed
        self._cond = threading.Condition()

    def acquire(self, stopped: Callable[[], bool]) -> int | None:
        """Take a place among the requests in flight, waiting for one to be free; returns
        the round the request starts in (for :meth:`refused`), or None once ``stopped``."""
        with self._cond:
            while self._active >= int(self.limit):
                if stopped():
                    return None
                self._cond.wait(WAIT_STEP_SECONDS)
            self._active += 1
            return self._cuts

    def release(self) -> None:
        """Let a place go."""
        with self._cond:
            self._active -= 1
            self._cond.notify()

    def send(self) -> int:
        """A request goes out: the requests in flight as Stripe sees them, itself included."""
        with self._cond:
            self._sent += 1
            return self._sent

    def answered(self) -> None:
        """A request sent came back."""
        with self._cond:
            self._sent -= 1

    def refused(self, started_in: int, level: int) -> None:
        """Stripe refused a request started in round ``started_in`` and sent at ``level``
        (see :meth:`send`): cut the limit, unless a refusal since that round did."""
        with self._cond:
            if started_in != self._cuts:
                return
            self._cuts += 1
            self._refused_at = min(self.limit, level)
            # A whole number, one below the level at least: the slow climb back to it
            # then spans a whole request (from 2, nine tenths would be 1.8, a few
            # successes from 2 again).
            below = min(self._refused_at - 1, self._refused_at * CUT)
            self.limit = max(1.0, float(int(below)))

    def succeeded(self) -> None:
        """A request went through: win back one request in flight per ``limit`` successes,
        or per ``PROBE`` times ``limit`` on the way from just below the level refused to
        one past it."""
        if self.limit >= self.ceiling:
            return
        with self._cond:
            before = int(self.limit)
            probing = self.limit + 1 >= self._refused_at
            step = 1 / (self.limit * (PROBE if probing else 1))
            self.limit = min(float(self.ceiling), self.limit + step)
            if self.limit >= self._refused_at + 1:
                self._refused_at = float("inf")  # passed: Stripe allows more now
            if int(self.limit) > before:
                self._cond.notify()


class Place:
    """One request's place in flight: in its endpoint's limit, its account's, and the
    client's connections (``gate``), taken in that order and let go in the other.

    ``stopped`` ends a wait for a place (the sync is ending): :class:`Cancelled`.
    """

    def __init__(
        self,
        endpoint: InFlight,
        account: InFlight,
        gate: threading.Semaphore,
        stopped: Callable[[], bool],
    ) -> None:
        self.endpoint, self.account = endpoint, account
        self._gate = gate
        self._stopped = stopped
        self._rounds = (0, 0)
        self._levels = (0, 0)

    def __enter__(self) -> Place:
        rounds: list[int] = []
        try:
            for limit in (self.endpoint, self.account):
                started_in = limit.acquire(self._stopped)
                if started_in is None:
                    raise Cancelled("request cancelled while waiting: the sync is ending")
                rounds.append(started_in)
            while not self._gate.acquire(timeout=WAIT_STEP_SECONDS):
                if self._stopped():
                    raise Cancelled("request cancelled while waiting: the sync is ending")
        except BaseException:
            for limit in (self.endpoint, self.account)[: len(rounds)]:
                limit.release()
            raise
        self._rounds = (rounds[0], rounds[1])
        self._levels = (self.endpoint.send(), self.account.send())
        return self

    def __exit__(self, *exc: object) -> None:
        self.account.answered()
        self.endpoint.answered()
        self._gate.release()
        self.account.release()
        self.endpoint.release()

    def succeeded(self) -> None:
        """The request went through."""
        self.endpoint.succeeded()
        self.account.succeeded()

    def refused(self, reason: str) -> None:
        """Stripe refused the request for ``reason`` (its ``Stripe-Rate-Limited-Reason``):
        a concurrency limiter's cuts that limit, from the level the request was sent at."""
        if reason == ENDPOINT_CONCURRENCY:
            self.endpoint.refused(self._rounds[0], self._levels[0])
        elif reason == GLOBAL_CONCURRENCY:
            self.account.refused(self._rounds[1], self._levels[1])


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

    def place(self, endpoint: str, gate: threading.Semaphore, stopped: Callable[[], bool]) -> Place:
        """A place in flight for a request to ``endpoint`` (a context manager)."""
        return Place(self.of(endpoint), self.account, gate, stopped)
