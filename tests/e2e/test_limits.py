"""The pipe against Stripe's real limits: a live key, 100 requests/s for the account and
25/s per endpoint in the simulator, the tap at its defaults (what a new user runs)."""

from __future__ import annotations

import json
from pathlib import Path

from stripe_sim.runner import run_simulator
from tests.e2e.harness import (
    SIM_KNOBS,
    assert_matches_truth,
    quiet_run_requests,
    run_pipe,
    write_configs,
)

LIVE_KEY = "sk_live_simulatorLimits"


def test_a_full_sync_and_a_quiet_run_under_stripes_limits_see_almost_no_429(
    tmp_path: Path,
) -> None:
    with run_simulator(**SIM_KNOBS, limits=True, api_key=LIVE_KEY) as sim:
        configs = write_configs(tmp_path, sim)
        tap = json.loads(configs.tap.read_text())
        # The defaults: 95/s, 24/s per endpoint.
        del tap["max_requests_per_second"], tap["max_requests_per_second_per_endpoint"]
        configs.tap.write_text(json.dumps(tap))

        run = run_pipe(configs)
        full = sim.stats()
        assert_matches_truth(configs.database, sim)
        sim.reset_stats()
        run_pipe(configs, resume=True)
        quiet = sim.stats()
        expected_quiet = quiet_run_requests(sim)

    refused = sum(full["rate_limited"]["by_reason"].values())
    assert refused <= full["total"] // 100, full["rate_limited"]
    assert sum(quiet["rate_limited"]["by_reason"].values()) == 0
    assert quiet["total"] == expected_quiet
    # Retries are said once a minute per endpoint, not once per request.
    assert run.stderr.count("retry ") <= len(full["rate_limited"]["by_endpoint"])


def test_stripes_concurrency_limiter_cuts_requests_in_flight_not_the_rate(
    tmp_path: Path,
) -> None:
    """4 requests in flight per account and 2 per endpoint, 50 ms each: the tap's first
    requests overlap past them, and each 429 they get teaches a limit of requests in
    flight (``in_flight.py``). In this small sync most endpoints make a few requests, so
    each one's first refusal counts: 2-4 % of the requests were refused (8 % when a
    refusal halved the rate instead)."""
    knobs = {**SIM_KNOBS, "latency_ms": 50}
    limits = {"concurrency_limit": 4, "endpoint_concurrency_limit": 2}
    with run_simulator(**knobs, **limits, limits=True, api_key=LIVE_KEY) as sim:
        configs = write_configs(tmp_path, sim)
        tap = json.loads(configs.tap.read_text())
        del tap["max_requests_per_second"], tap["max_requests_per_second_per_endpoint"]
        configs.tap.write_text(json.dumps(tap))

        run_pipe(configs)
        full = sim.stats()
        assert_matches_truth(configs.database, sim)

    by_reason = full["rate_limited"]["by_reason"]
    assert sum(by_reason.values()) <= full["total"] // 16, by_reason
