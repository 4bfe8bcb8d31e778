"""The simulator's knobs, shared by the command line and the Python context manager."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from stripe_sim.errors import UNAVAILABLE_ANSWERS
from stripe_sim.tables import COUNTED, DERIVED, SPECS

API_KEY = "sk_test_simulator"
API_VERSION = "2023-08-16"
OTHER_API_VERSION = "2020-08-27"
MAIN_ACCOUNT = "acct_1SimMainAccount0"
CONNECTED_ACCOUNT = "acct_1SimConnectedAcc"
# The other connected accounts with data: this prefix and their index, 16 alphanumerics
# after ``acct_`` as Stripe's ids have.
CONNECTED_PREFIX = "acct_1SimConn"

# Objects per table made from its shape alone, unless a count says otherwise.
DERIVED_COUNT = 50
DEFAULT_COUNTS: dict[str, int] = {
    "charge": 1000,
    "customer": 200,
    "subscription": 150,
    "invoice": 400,
    "product": 20,
    "price": 50,
    "coupon": 15,
    **dict.fromkeys(DERIVED, DERIVED_COUNT),
}
# A dropped connection closes without answering; a truncated one sends the headers and
# half the body, then closes (the client sees an incomplete read).
FAULT_KINDS = ("drop", "truncate", "500", "502", "503")
# The knobs of Stripe's limits (``limits.py``) that are numbers, each >= 0.
LIMIT_NUMBERS = (
    "live_rate",
    "test_rate",
    "endpoint_rate",
    "concurrency_limit",
    "endpoint_concurrency_limit",
)
if set(DEFAULT_COUNTS) != set(COUNTED):
    raise RuntimeError(f"stripe_sim: DEFAULT_COUNTS must name exactly {', '.join(COUNTED)}")


def connected_account_id(index: int) -> str:
    """The id of the ``index``-th connected account with data (0: ``CONNECTED_ACCOUNT``)."""
    return CONNECTED_ACCOUNT if index == 0 else f"{CONNECTED_PREFIX}{index:08d}"


def unavailable_problem(value: object) -> str | None:
    """What is wrong with an ``unavailable`` setting (table -> answer), or None."""
    if not isinstance(value, dict):
        return "unavailable must be an object of table -> answer"
    for table, answer in value.items():
        if table not in SPECS or answer not in UNAVAILABLE_ANSWERS:
            return (
                f"unavailable: {table}={answer}: expected a table and one of "
                f"{', '.join(UNAVAILABLE_ANSWERS)}"
            )
    return None


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes the simulated account and the server's behaviour.

    ``counts`` sets objects per seed table (``balancetransaction`` and ``event`` follow from
    the others); ``connected_accounts`` connected accounts have data of their own, each
    sized by ``connected_scale`` relative to the main one; ``now`` is the simulated clock
    at start (defaults to the real time), and the clock advances in real time afterwards.
    """

    counts: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_COUNTS))
    days: float = 365.0
    seed: int = 42
    now: int | None = None
    latency_ms: float = 0.0
    rate_limit: float = 0.0
    # Stripe's limits (``limits.py``): rates in requests/s, concurrency in requests in
    # flight; 0 turns one off.
    limits: bool = False
    live_rate: float = 100.0
    test_rate: float = 25.0
    endpoint_rate: float = 25.0
    concurrency_limit: int = 0
    endpoint_concurrency_limit: int = 0
    # False: query parameters the API does not know are ignored, not answered 400.
    strict_params: bool = True
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    other_api_version_rate: float = 0.0
    newer_fields_rate: float = 0.05
    connected_accounts: int = 1
    connected_scale: float = 0.05
    # Table -> how Stripe refuses it (``errors.UNAVAILABLE_ANSWERS``): tables turned off.
    unavailable: dict[str, str] = field(default_factory=dict)
    api_key: str = API_KEY
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.counts) - set(DEFAULT_COUNTS))
        if unknown:
            raise ValueError(f"unknown table(s) in counts: {', '.join(unknown)}")
        if any(n < 0 for n in self.counts.values()):
            raise ValueError("counts must be >= 0")
        if self.count("price") == 0 and (self.count("subscription") or self.count("invoice")):
            raise ValueError("subscriptions and invoices need at least one price")
        if self.count("product") == 0 and self.count("price"):
            raise ValueError("prices need at least one product")
        problem = unavailable_problem(self.unavailable)
        if problem:
            raise ValueError(problem)
        bad_kinds = sorted(set(self.fault_kinds) - set(FAULT_KINDS))
        if bad_kinds or not self.fault_kinds:
            raise ValueError(f"fault kinds must be some of {', '.join(FAULT_KINDS)}")
        for name in ("fault_rate", "other_api_version_rate", "newer_fields_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.days <= 0 or self.latency_ms < 0 or self.rate_limit < 0:
            raise ValueError("days must be > 0; latency_ms and rate_limit must be >= 0")
        for name in LIMIT_NUMBERS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 1 <= self.connected_accounts < 10**8:
            raise ValueError("connected_accounts must be between 1 and 99,999,999")

    def count(self, table: str) -> int:
        return self.counts.get(table, DEFAULT_COUNTS[table])

    def connected_account_ids(self) -> tuple[str, ...]:
        """The connected accounts with data of their own, in order."""
        return tuple(connected_account_id(i) for i in range(self.connected_accounts))

    def start_time(self) -> int:
        return int(self.now if self.now is not None else time.time())
