"""Request budgets: the run's one global rate, and one per endpoint inside it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from tap_stripe.tables import TABLES

# A little under Stripe's published limits: 100 requests/s in live mode and 25 in a
# sandbox per account, and 25/s per endpoint by default.
DEFAULT_LIVE_RATE = 95.0
DEFAULT_TEST_RATE = 24.0
DEFAULT_ENDPOINT_RATE = 24.0

# The literal segments of the registry's paths (``issuing``, ``cards``, ``lines``).
COLLECTION_SEGMENTS = frozenset(
    segment
    for spec in TABLES
    for path in (spec.path, *spec.nested_lists.values())
    for segment in path.split("?")[0].split("/")
    if segment and not segment.startswith("{")
)

Sleep = Callable[[float], None]
Clock = Callable[[], float]


def default_rate_for_key(api_key: str) -> float:
    """Requests per second to allow by default, from the key's mode."""
    return DEFAULT_TEST_RATE if "_test_" in api_key else DEFAULT_LIVE_RATE


class RateLimiter:
    """A thread-safe request budget shared by every request of the run.

    Requests are spaced evenly at the current rate. A 429 halves the rate and pauses
    everyone for the wait Stripe asked for; each success then wins back a little of the
    configured rate (multiplicative decrease, additive increase).
    """

    def __init__(
        self,
        max_rate: float | None,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.max_rate = max_rate if max_rate and max_rate > 0 else None
        self.rate = self.max_rate
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._next = 0.0
        self._lock = threading.Lock()
        # When this budget's requests of the last second left (``note_sent``), newest
        # last; read and written under ``_SENDING`` only.
        self._sent: deque[float] = deque()

    def acquire(self) -> None:
        """Wait for this request's slot in the budget."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            if self.rate is not None:
                self._next = slot + 1.0 / self.rate
            else:
                self._next = slot
        if slot > now:
            self._sleep(slot - now)

    def throttled(self, pause: float) -> None:
        """Stripe rate-limited a request: slow down and pause everyone for ``pause`` s."""
        with self._lock:
            if self.rate is not None:
                self.rate = max(1.0, self.rate / 2)
            self._next = max(self._next, self._clock() + pause)

    def succeeded(self) -> None:
        """A request went through: recover part of the configured rate."""
        if self.rate is not None and self.rate < self.max_rate:
            with self._lock:
                self.rate = min(self.max_rate, self.rate + self.max_rate / 50)

    def wait_before_sending(self, now: float) -> float:
        """Seconds a request leaving at ``now`` must wait so that no second holds more
        than the rate's requests, counted when they leave (0: it may go)."""
        if self.rate is None:
            return 0.0
        sent = self._sent
        while sent and now - sent[0] >= 1.0:
            sent.popleft()
        if len(sent) < max(1, int(self.rate)):
            return 0.0
        return 1.0 - (now - sent[0])

    def note_sent(self, now: float) -> None:
        """A request left at ``now``."""
        if self.rate is not None:
            self._sent.append(now)


# Guards the check and the note of ``send_when_clear`` across the budgets of a request.
_SENDING = threading.Lock()


def send_when_clear(limiters: tuple[RateLimiter, ...]) -> None:
    """Wait until a request may leave under every one of ``limiters``, counted when it
    leaves, and note that it does.

    ``acquire`` hands out evenly spaced slots, but a request may leave long after its
    slot: it waits for the next budget and for a place among the requests in flight, and
    a busy machine wakes sleeping threads late, all at once. Requests whose slots passed
    together would then reach Stripe together, many more in one second than the budget.
    Counting them as they leave keeps every second of every endpoint under its budget.
    """
    clock = limiters[0]._clock
    sleep = limiters[0]._sleep
    while True:
        with _SENDING:
            now = clock()
            wait = max(limiter.wait_before_sending(now) for limiter in limiters)
            if wait <= 0:
                for limiter in limiters:
                    limiter.note_sent(now)
                return
        sleep(wait)


def endpoint_of(path: str) -> str:
    """The Stripe endpoint a GET of ``path`` calls, its object ids replaced by ``{id}``.

    Stripe counts ``GET /v1/customers/cus_1`` and ``GET /v1/customers/cus_2`` against one
    endpoint's limit (``/v1/customers/{id}``), and ``/v1/invoices/in_1/lines`` against
    ``/v1/invoices/{id}/lines``. A segment after the first is an id unless the registry's
    paths use it as a collection (``/v1/issuing/cards``, ``/v1/checkout/sessions``): ids
    can be any text (a coupon's is chosen by its creator).
    """
    parts = path.split("/")
    for index in range(3, len(parts)):
        if parts[index] and parts[index] not in COLLECTION_SEGMENTS:
            parts[index] = "{id}"
    return "/".join(parts)


class EndpointBudgets:
    """The budgets of single endpoints, inside the global one.

    Stripe limits each endpoint on its own (25 requests/s unless documented otherwise):
    every endpoint gets a budget a little under it at its first request, spent before
    Stripe refuses, so a table whose endpoint is full waits while the others use the
    global budget. A 429 blamed on an endpoint slows that endpoint alone (and it recovers
    as the global budget does). ``max_rate`` of ``None`` leaves endpoints unlimited.
    """

    def __init__(
        self,
        max_rate: float | None,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.max_rate = max_rate if max_rate and max_rate > 0 else None
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def get(self, endpoint: str) -> RateLimiter:
        """The endpoint's budget, made at its first use."""
        limiter = self._limiters.get(endpoint)
        if limiter is None:
            with self._lock:
                limiter = self._limiters.get(endpoint)
                if limiter is None:
                    limiter = RateLimiter(self.max_rate, clock=self._clock, sleep=self._sleep)
                    self._limiters[endpoint] = limiter
        return limiter

    def throttled(self, endpoint: str, pause: float) -> None:
        """The endpoint hit its own limit: slow it down and pause it for ``pause`` s."""
        limiter = self.get(endpoint)
        if limiter.max_rate is None:
            # Unlimited until Stripe said otherwise: from now on, Stripe's default.
            limiter.max_rate = limiter.rate = DEFAULT_ENDPOINT_RATE
        limiter.throttled(pause)
