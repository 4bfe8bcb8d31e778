"""Stripe's rate limiters: whether a request is admitted, and the reason when it is not.

Stripe gives each account (the ``Stripe-Account`` a request acts for; none: the
platform) a global rate, 100 requests/s with a live key and 25/s in test mode, and a rate
per endpoint, 25/s by default, where an endpoint is a method plus a path template
(``GET /v1/charges/{id}`` whatever the id). Concurrency limiters bound the requests in
flight. A refused request is answered 429 with the limiter's name in
``Stripe-Rate-Limited-Reason``. The simulator's older ``rate_limit`` knob is one more
global limiter, shared by every account, that applies whether Stripe's limits are on or not.

Each limiter is checked before any spends a token, so a request one limiter refuses costs
the others nothing.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from stripe_sim.tables import PLURALS, SPECS

if TYPE_CHECKING:
    from stripe_sim.config import SimConfig

GLOBAL_CONCURRENCY = "global-concurrency"
ENDPOINT_CONCURRENCY = "endpoint-concurrency"
GLOBAL_RATE = "global-rate"
ENDPOINT_RATE = "endpoint-rate"
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


@dataclass
class LimitKnobs:
    """Stripe's limits, changeable while the server runs (``POST /_sim/knobs``).

    Rates are requests a second and limits requests in flight; 0 turns one off.
    """

    limits: bool
    live_rate: float
    test_rate: float
    endpoint_rate: float
    concurrency_limit: int
    endpoint_concurrency_limit: int

    @classmethod
    def of(cls, config: SimConfig) -> LimitKnobs:
        return cls(**{name: getattr(config, name) for name in LIMIT_KNOBS})


LIMIT_KNOBS: tuple[str, ...] = tuple(knob.name for knob in fields(LimitKnobs))

# A path template as segments, None where it holds an id.
Segments = tuple[str | None, ...]


def _segments(template: str) -> Segments:
    return tuple(None if part.startswith("{") else part for part in template.strip("/").split("/"))


def _render(segments: Segments) -> str:
    return "/" + "/".join("{id}" if part is None else part for part in segments)


def _served_templates() -> set[str]:
    """Every path the API serves, from the registry: lists, retrieves by id, nested lists
    and the children's own list and retrieve paths."""
    templates = {f"/v1/{plural}/{{id}}" for plural in PLURALS}
    for spec in SPECS.values():
        templates.add(spec.path)
        templates.update(template.partition("?")[0] for template in spec.nested_lists.values())
        if spec.retrieve:
            templates.add(spec.retrieve)
    return templates


def _by_length(templates: Iterable[str]) -> dict[int, list[tuple[Segments, str]]]:
    """Templates by segment count, those with fewer ids first (a literal beats an id)."""
    grouped: dict[int, list[tuple[Segments, str]]] = {}
    for template in templates:
        segments = _segments(template)
        grouped.setdefault(len(segments), []).append((segments, _render(segments)))
    for candidates in grouped.values():
        candidates.sort(key=lambda candidate: (candidate[0].count(None), candidate[1]))
    return grouped


TEMPLATES = _by_length(_served_templates())
LITERALS = frozenset(
    part for group in TEMPLATES.values() for segments, _ in group for part in segments if part
)


def template_of(path: str) -> str:
    """``/v1/customers/cus_1/payment_methods`` -> ``/v1/customers/{id}/payment_methods``.

    The served route whose literal segments ``path`` has; a path the API does not serve
    keeps ``/v1/<collection>`` and the segments some route uses, the others being ids.
    """
    parts = path.strip("/").split("/")
    for segments, template in TEMPLATES.get(len(parts), ()):
        if all(want is None or want == part for want, part in zip(segments, parts, strict=True)):
            return template
    return _render(
        tuple(part if index < 2 or part in LITERALS else None for index, part in enumerate(parts))
    )


def is_live(authorization: str | None) -> bool:
    """The request's key (Bearer, or Basic with the key as user name) is a live one."""
    scheme, _, credential = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            credential = base64.b64decode(credential).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return False
    return credential.strip().startswith(LIVE_KEY_PREFIXES)


@dataclass(frozen=True)
class Request:
    """What the limiters look at: whose budget (the ``Stripe-Account``), which mode,
    which endpoint."""

    account: str | None
    live: bool
    method: str
    route: str  # the path template, ``/v1/charges/{id}``

    @classmethod
    def of(cls, method: str, path: str, headers: Any) -> Request:
        """``headers``: any mapping with ``.get``."""
        live = is_live(headers.get("Authorization"))
        return cls(headers.get("Stripe-Account"), live, method, template_of(path))

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.route}"


@dataclass
class Bucket:
    """Token bucket holding at most one second's worth (at least 1); it starts full, and
    again when its rate changes."""

    rate: float = 0.0
    tokens: float = 0.0
    stamp: float = 0.0

    def has_token(self, rate: float, now: float) -> bool:
        """Refill up to ``now`` at ``rate``; whether a token is there (none is spent)."""
        capacity = max(1.0, rate)
        if rate != self.rate:
            self.rate, self.tokens = rate, capacity
        else:
            self.tokens = min(capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        return self.tokens >= 1.0


@dataclass
class Budget:
    """One account's buckets and requests in flight, in one mode (live or test)."""

    rate: Bucket = field(default_factory=Bucket)
    endpoint_rates: dict[str, Bucket] = field(default_factory=dict)
    in_flight: int = 0
    endpoint_in_flight: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Admission:
    """A limiter's answer: ``reason`` None admits the request, which holds its place in
    ``budget``'s requests in flight until :meth:`Limits.release`."""

    reason: str | None
    request: Request | None = None
    budget: Budget | None = None


class Limits:
    """Every account's budgets plus the ``rate_limit`` knob's bucket shared by all."""

    def __init__(self, knobs: LimitKnobs, clock: Callable[[], float] = time.monotonic) -> None:
        self.knobs = knobs
        self.clock = clock
        self.lock = threading.Lock()
        self.shared = Bucket()
        # Live and test mode have budgets of their own, as on Stripe.
        self.budgets: dict[tuple[str | None, bool], Budget] = {}

    def admit(self, request: Request, rate_limit: float) -> Admission:
        """Concurrency first, then the global rate, then the endpoint's; the request
        spends a token of each rate limiter only when all admit it."""
        with self.lock:
            budget = self._budget(request) if self.knobs.limits else None
            reason = self._full(request, budget)
            if reason is not None:
                return Admission(reason)
            rates = self._rates(request, budget, rate_limit)
            now = self.clock()
            for reason, bucket, rate in rates:
                if not bucket.has_token(rate, now):
                    return Admission(reason)
            for _, bucket, _ in rates:
                bucket.tokens -= 1.0
            if budget is not None:
                budget.in_flight += 1
                budget.endpoint_in_flight[request.endpoint] += 1
            return Admission(None, request, budget)

    def release(self, admission: Admission) -> None:
        """The admitted request is answered: it leaves the requests in flight."""
        if admission.budget is None or admission.request is None:
            return
        with self.lock:
            admission.budget.in_flight -= 1
            admission.budget.endpoint_in_flight[admission.request.endpoint] -= 1

    def _budget(self, request: Request) -> Budget:
        return self.budgets.setdefault((request.account, request.live), Budget())

    def _full(self, request: Request, budget: Budget | None) -> str | None:
        """The concurrency limiter a request would exceed, or None."""
        if budget is None:
            return None
        limit, endpoint_limit = self.knobs.concurrency_limit, self.knobs.endpoint_concurrency_limit
        if limit and budget.in_flight >= limit:
            return GLOBAL_CONCURRENCY
        if endpoint_limit and budget.endpoint_in_flight[request.endpoint] >= endpoint_limit:
            return ENDPOINT_CONCURRENCY
        return None

    def _rates(
        self, request: Request, budget: Budget | None, rate_limit: float
    ) -> list[tuple[str, Bucket, float]]:
        """The rate limiters that apply, in order: ``(reason, bucket, rate)``."""
        rates = [(GLOBAL_RATE, self.shared, rate_limit)]
        if budget is not None:
            knobs = self.knobs
            rate = knobs.live_rate if request.live else knobs.test_rate
            endpoint = budget.endpoint_rates.setdefault(request.endpoint, Bucket())
            rates.append((GLOBAL_RATE, budget.rate, rate))
            rates.append((ENDPOINT_RATE, endpoint, knobs.endpoint_rate))
        return [limiter for limiter in rates if limiter[2] > 0]
