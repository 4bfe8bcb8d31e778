"""The run: what every part of the tap is handed, built once by the tap when it syncs.

No part reaches back into the tap or a stream for the client, the budgets or the clock:
each is given this object (and its table's spec, state and writer).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tap_stripe.baton import Baton
from tap_stripe.budgets import EndpointBudgets, RateLimiter
from tap_stripe.client import StripeClient
from tap_stripe.events_pass import EventsPass
from tap_stripe.fetcher import PageBudget
from tap_stripe.relisting import DEFAULT_RELIST_HOURS
from tap_stripe.report import Report

DEFAULT_LOOKBACK_SECONDS = 300


@dataclass(frozen=True)
class Run:
    """One sync's shared means and times.

    Attributes:
        client: The one HTTP client (rate budget, retries, errors, Stripe's clock).
        concurrency: Worker threads per fetcher, and per pool completing or re-fetching.
        page_budget: Pages the fetchers nobody reads yet may hold together.
        events: The run's one pass over ``/v1/events``, for every table.
        report: The progress report on stderr, a meter per table.
        started_at: When the sync started (this machine's clock): the end of every range.
        lookback: Seconds re-read below a bookmark or events cursor.
        floor: ``start_date`` as unix seconds (0 without one).
        relist_hours: How often the children listed per parent of a table read whole are
            listed for every parent (``relisting.py``); 0: every run.
    """

    client: StripeClient
    concurrency: int
    page_budget: PageBudget
    events: EventsPass
    report: Report
    started_at: float
    lookback: int
    floor: int
    relist_hours: int = DEFAULT_RELIST_HOURS

    @property
    def rate_limiter(self) -> RateLimiter:
        """The one global request budget."""
        return self.client.rate_limiter

    @property
    def endpoint_budgets(self) -> EndpointBudgets:
        """The budget of each endpoint, inside the global one."""
        return self.client.endpoint_budgets

    @property
    def baton(self) -> Baton:
        """Held by the table writing; let go around every wait (``baton.py``)."""
        return self.client.baton

    @property
    def stripe_time(self) -> float | None:
        """Stripe's clock at its first answer of the run (its ``Date``), once known."""
        return self.client.stripe_time_at_start


def lookback_of(config: Mapping[str, Any]) -> int:
    """The ``lookback_window`` setting in seconds."""
    return int(config.get("lookback_window", DEFAULT_LOOKBACK_SECONDS))


def floor_of(config: Mapping[str, Any]) -> int:
    """``start_date`` as unix seconds (0 without one)."""
    start_date = config.get("start_date")
    if not start_date:
        return 0
    parsed = datetime.datetime.fromisoformat(str(start_date).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp())
