"""The account the benchmark reads, its knobs and time limits: the full run and ``--quick``.

The full account is sized by the 10-minute budget of the whole benchmark (see
bench/README.md, "Sizes"): with Stripe's limits on, the busiest endpoint's requests / 25
and all requests / 100 are floors on the full sync's time, so the bulk (charges, payment
intents and their balance transactions, read as created lists of 100 a page) and the
parents whose children are listed one request per parent (customers, subscriptions'
metered items) are chosen to take about as long as each other at those rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# A live key: the simulator then applies Stripe's live budget (100 requests/s), and the
# tap its default for a live key, as for a new user's production account.
LIVE_KEY = "sk_live_bench_simulator"


@dataclass(frozen=True)
class Plan:
    """Sizes, knobs and time limits of one benchmark run.

    ``counts``: simulator objects per table (the others at the simulator's defaults;
    balance transactions and events follow from the rest). ``max_requests_per_second``:
    None runs the tap with its own default. ``peer_seconds``: the most each connector of
    the peer comparison may run. ``target_records``: the target-alone comparison on the
    first N records of the captured file only (None: all of it). ``repeats``: its
    interleaved rounds (ours, 0.8.0, read_json), the best of each kept: on this 2-core
    machine one target's time varied by a third from run to run.
    """

    counts: Mapping[str, int]
    small_days: int
    days: int = 1095
    latency_ms: int = 300
    api_key: str = LIVE_KEY
    max_requests_per_second: int | None = None
    peer_seconds: float = 60.0
    target_records: int | None = None
    timeout: float = 480.0
    repeats: int = 2
    work: Path = Path("bench-results/work")


FULL = Plan(
    counts={
        "charge": 100_000,
        "paymentintent": 100_000,
        "customer": 1_000,
        "invoice": 15_000,
        "subscription": 1_000,
        "refund": 10_000,
        "payout": 300,
    },
    small_days=110,
    target_records=100_000,
    repeats=5,
)
# A development run of a minute or two: the same phases on a few thousand records.
QUICK = Plan(
    counts={
        "charge": 3_000,
        "paymentintent": 3_000,
        "customer": 100,
        "invoice": 500,
        "subscription": 100,
        "refund": 300,
        "payout": 30,
    },
    small_days=110,
    peer_seconds=15.0,
    timeout=180.0,
    work=Path("bench-results/work-quick"),
)
