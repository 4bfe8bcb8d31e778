"""What a run asked of the simulator, per endpoint, and the fastest it could have gone.

An endpoint is a method and a path template, as Stripe counts its limits:
``GET /v1/customers/{id}/payment_methods`` is one endpoint for every customer. The
counts come from the simulator's request log of the run (``/_sim/stats?log=1``), its
paths turned into templates by the simulator's own limiter (``stripe_sim.limits``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from stripe_sim.limits import template_of

RATE_LIMITED = "429"


@dataclass(frozen=True)
class Requests:
    """The requests of one run: those answered (any status but 429) per endpoint, and
    those refused with 429."""

    answered: Counter[str]
    refused: int

    @classmethod
    def of(cls, stats: dict[str, Any]) -> Requests:
        """From a stats snapshot taken with ``log=1`` after the run."""
        log = stats["log"]
        if stats["total"] != len(log):
            raise ValueError(
                f"the simulator's request log holds {len(log):,} of {stats['total']:,} requests"
            )
        answered: Counter[str] = Counter()
        refused = 0
        for entry in log:
            if entry["status"] == RATE_LIMITED:
                refused += 1
            else:
                answered[f"{entry['method']} {template_of(entry['path'])}"] += 1
        return cls(answered, refused)

    @property
    def total(self) -> int:
        """Every request made, the refused ones too."""
        return sum(self.answered.values()) + self.refused

    @property
    def refused_share(self) -> float:
        return self.refused / self.total if self.total else 0.0

    def busiest(self) -> tuple[str, int]:
        """The endpoint answered most often and how often."""
        return self.answered.most_common(1)[0] if self.answered else ("(none)", 0)

    def ceiling_seconds(self, global_rate: float, endpoint_rate: float) -> float:
        """The least time these answers take within Stripe's budgets: all of them at the
        global rate, or the busiest endpoint's at its own rate, whichever is longer.

        The refused requests are left out: the tap needed only the answered ones, and a
        refusal spends no budget.
        """
        return max(sum(self.answered.values()) / global_rate, self.busiest()[1] / endpoint_rate)

    def describe(self, top: int = 3) -> str:
        """``12,345 requests (10 answered 429); busiest: GET /v1/x 2,000, ...``"""
        busiest = ", ".join(f"{name} {n:,}" for name, n in self.answered.most_common(top))
        return f"{self.total:,} requests ({self.refused:,} answered 429); busiest: {busiest}"
