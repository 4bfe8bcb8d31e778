"""``python -m stripe_sim [flags]``: serve a simulated Stripe platform and its connected
accounts on 127.0.0.1.

Prints ``listening on http://127.0.0.1:PORT`` on stdout once ready; everything else goes
to stderr. Stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType

from stripe_sim.config import API_KEY, DEFAULT_COUNTS, FAULT_KINDS, MAIN_ACCOUNT, SimConfig
from stripe_sim.server import serve
from stripe_sim.state import SimState


def parse_count(text: str) -> tuple[str, int]:
    table, _, number = text.partition("=")
    if table not in DEFAULT_COUNTS or not number.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected TABLE=N with TABLE one of {', '.join(DEFAULT_COUNTS)}, got {text!r}"
        )
    return table, int(number)


def parse_unavailable(text: str) -> tuple[str, str]:
    table, _, answer = text.partition("=")
    return table, answer or "permission"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stripe_sim", description=__doc__)
    p.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--days", type=float, default=365.0, help="time span of the data, in days")
    p.add_argument("--now", type=int, default=None, help="simulated unix time at start")
    p.add_argument(
        "--count",
        type=parse_count,
        action="append",
        default=[],
        metavar="TABLE=N",
        help=f"objects per table (repeatable); defaults: {DEFAULT_COUNTS}",
    )
    p.add_argument(
        "--unavailable",
        type=parse_unavailable,
        action="append",
        default=[],
        metavar="TABLE[=ANSWER]",
        help="refuse a table as Stripe does for an account or key that cannot read it "
        "(repeatable); ANSWER: permission (403, the default), not_set_up (400), missing (404)",
    )
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument(
        "--rate-limit", type=float, default=0.0, help="requests/s for all accounts; 0 = no limit"
    )
    p.add_argument(
        "--limits",
        action=argparse.BooleanOptionalAction,
        default=SimConfig.limits,
        help="Stripe's rate limits per account: global, per endpoint, concurrency",
    )
    p.add_argument(
        "--live-rate",
        type=float,
        default=SimConfig.live_rate,
        help="with --limits: requests/s of a live key (sk_live_, rk_live_)",
    )
    p.add_argument(
        "--test-rate",
        type=float,
        default=SimConfig.test_rate,
        help="with --limits: requests/s of any other key",
    )
    p.add_argument(
        "--endpoint-rate",
        type=float,
        default=SimConfig.endpoint_rate,
        help="with --limits: requests/s per method and path template",
    )
    p.add_argument(
        "--concurrency-limit",
        type=int,
        default=SimConfig.concurrency_limit,
        help="with --limits: requests in flight per account; 0 = no limit",
    )
    p.add_argument(
        "--endpoint-concurrency-limit",
        type=int,
        default=SimConfig.endpoint_concurrency_limit,
        help="with --limits: requests in flight per account and endpoint; 0 = no limit",
    )
    p.add_argument(
        "--strict-params",
        action=argparse.BooleanOptionalAction,
        default=SimConfig.strict_params,
        help="answer 400 to query parameters the API does not know (--no-strict-params: ignore)",
    )
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of 5xx/dropped requests")
    p.add_argument(
        "--fault-kinds",
        default=",".join(FAULT_KINDS),
        help="comma-separated faults drawn equally: drop, truncate, 500, 502, 503",
    )
    p.add_argument("--other-api-version-rate", type=float, default=0.0)
    p.add_argument("--newer-fields-rate", type=float, default=0.05)
    p.add_argument(
        "--connected-accounts",
        type=int,
        default=SimConfig.connected_accounts,
        metavar="N",
        help="connected accounts with data of their own, each read with its Stripe-Account; "
        "the platform's /v1/accounts lists them first, then accounts without data",
    )
    p.add_argument(
        "--connected-scale",
        type=float,
        default=SimConfig.connected_scale,
        help="size of each connected account's data relative to the platform's",
    )
    p.add_argument("--api-key", default=API_KEY)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = SimConfig(
            counts={**DEFAULT_COUNTS, **dict(args.count)},
            days=args.days,
            seed=args.seed,
            now=args.now,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            limits=args.limits,
            live_rate=args.live_rate,
            test_rate=args.test_rate,
            endpoint_rate=args.endpoint_rate,
            concurrency_limit=args.concurrency_limit,
            endpoint_concurrency_limit=args.endpoint_concurrency_limit,
            strict_params=args.strict_params,
            fault_rate=args.fault_rate,
            fault_kinds=tuple(k.strip() for k in args.fault_kinds.split(",") if k.strip()),
            other_api_version_rate=args.other_api_version_rate,
            newer_fields_rate=args.newer_fields_rate,
            connected_accounts=args.connected_accounts,
            connected_scale=args.connected_scale,
            api_key=args.api_key,
            port=args.port,
            unavailable=dict(args.unavailable),
        )
    except ValueError as exc:
        print(f"stripe_sim: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    state = SimState(config)
    try:
        server = serve(state, "127.0.0.1", config.port)
    except OSError as exc:
        print(f"stripe_sim: cannot listen on 127.0.0.1:{config.port}: {exc}", file=sys.stderr)
        return 1
    counts = {stream: len(table) for stream, table in state.accounts[MAIN_ACCOUNT].tables.items()}
    print(
        f"stripe_sim: generated {counts} and {config.connected_accounts} connected "
        f"account(s) in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="stripe-sim", daemon=True
    )
    thread.start()
    print(f"listening on {server.url}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    print("stripe_sim: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
