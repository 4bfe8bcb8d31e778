"""Whose budget a request spends: the key's, or its account's own.

Stripe does not document whether a ``Stripe-Account`` request counts against the
platform's budget or the connected account's: by default every request spends the key's
(one shared budget), and ``budget_per_account`` gives each account its own.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from tap_stripe.budgets import EndpointBudgets, RateLimiter
from tap_stripe.in_flight import InFlights


class Budgets(NamedTuple):
    """What one request spends: the account's global budget and its endpoints', and a
    place among its requests in flight."""

    rate: RateLimiter
    endpoints: EndpointBudgets
    in_flight: InFlights


class AccountBudgets:
    """The budgets of the run's accounts: one shared pair, or a pair per account."""

    def __init__(self, shared: Budgets, *, per_account: bool) -> None:
        self.shared = shared
        self.per_account = per_account
        self._own: dict[str, Budgets] = {}
        self._lock = threading.Lock()

    def of(self, account: str | None) -> Budgets:
        """The budgets a request for ``account`` spends (``None``: the key's own account)."""
        if not self.per_account or account is None:
            return self.shared
        with self._lock:
            budgets = self._own.get(account)
            if budgets is None:
                budgets = self._own[account] = Budgets(
                    RateLimiter(self.shared.rate.max_rate),
                    EndpointBudgets(self.shared.endpoints.max_rate),
                    InFlights(self.shared.in_flight.ceiling),
                )
            return budgets
