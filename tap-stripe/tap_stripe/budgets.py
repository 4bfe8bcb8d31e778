"""Request budgets: the run's one global rate, and an endpoint's own after a 429 blamed on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tap_stripe.tables import TABLES

# Below Stripe's published read limits (100/s live, 25/s test mode).
DEFAULT_LIVE_RATE = 90.0
DEFAULT_TEST_RATE = 20.0
# Stripe's documented limit of one endpoint, when the global budget is unlimited.
DEFAULT_ENDPOINT_RATE = 25.0

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
    """Request budgets of single endpoints, on top of the global one.

    Stripe also limits each endpoint (25 requests/s unless documented otherwise). No
    budget exists until an endpoint is answered 429 for its own limit: then that endpoint
    alone slows down (and recovers, as the global budget does), while the other streams
    keep the global budget.
    """

    def __init__(self, max_rate: float | None) -> None:
        self.max_rate = max_rate or DEFAULT_ENDPOINT_RATE
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def get(self, endpoint: str) -> RateLimiter | None:
        """The endpoint's budget, if it has one."""
        return self._limiters.get(endpoint)

    def throttled(self, endpoint: str, pause: float) -> None:
        """The endpoint hit its own limit: slow it down and pause it for ``pause`` s."""
        with self._lock:
            limiter = self._limiters.get(endpoint)
            if limiter is None:
                limiter = RateLimiter(self.max_rate)
                self._limiters[endpoint] = limiter
        limiter.throttled(pause)
