"""Run the simulator from Python: ``with run_simulator(**knobs) as sim: ...``.

By default the server runs in a thread of the calling process (fast to start, right for
tests); ``subprocess=True`` runs ``python -m stripe_sim`` instead so a benchmark's
client and the server do not share a GIL. Both are driven through the same HTTP admin API.
"""

from __future__ import annotations

import subprocess as sp
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from stripe_sim.config import CONNECTED_ACCOUNT, MAIN_ACCOUNT, SimConfig
from stripe_sim.server import serve
from stripe_sim.state import SimState

REPO_ROOT = Path(__file__).resolve().parents[1]
# Talk to 127.0.0.1 directly even when the environment names an HTTP proxy.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SimulatorStartError(RuntimeError):
    """The simulator's process exited, or printed something else, before listening."""


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class SimHandle:
    """A running simulator: its URL, API key, account ids and admin calls.

    ``connected_account_ids``: the connected accounts with data of their own, the first
    ``connected_account_id``; the platform's ``/v1/accounts`` lists them and accounts
    without data.
    """

    url: str
    api_key: str
    account_id: str = MAIN_ACCOUNT
    connected_account_id: str = CONNECTED_ACCOUNT
    connected_account_ids: tuple[str, ...] = (CONNECTED_ACCOUNT,)

    def request(
        self,
        path: str,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        *,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> HttpResult:
        """One HTTP request (API or admin); non-2xx answers are returned, not raised."""
        query = f"?{urlencode(params, doseq=True)}" if params else ""
        all_headers = {"Authorization": f"Bearer {self.api_key}"} if auth else {}
        all_headers.update(headers or {})
        data = orjson.dumps(body) if body is not None else None
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.url + path + query, data=data, method=method, headers=all_headers
        )
        try:
            with DIRECT.open(request, timeout=60) as response:
                return HttpResult(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return HttpResult(exc.code, dict(exc.headers), exc.read())

    def admin(self, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        method = "GET" if body is None else "POST"
        result = self.request(f"/_sim/{path}", params, method=method, body=body, auth=False)
        if result.status != 200:
            raise RuntimeError(f"simulator admin {path}: {result.status} {result.body!r}")
        return result.json()

    def stats(self, *, reset: bool = False, log: bool = False) -> dict[str, Any]:
        """Request counts ``{"total", "by_status", "by_path"}`` (plus ``log`` when asked)."""
        return self.admin("stats", {"reset": int(reset), "log": int(log)})

    def reset_stats(self) -> None:
        self.admin("stats/reset", body={})

    def objects(self, stream: str, account: str | None = None) -> list[dict[str, Any]]:
        """Current truth of ``stream``: every object, newest first."""
        return self.admin(f"objects/{stream}", {"account": account or self.account_id})["objects"]

    def removed(self, stream: str, account: str | None = None) -> list[dict[str, Any]]:
        """The rows of a child table removed from their parents (``id``, the parent
        column, ``removed_at``), in the order they were removed."""
        params = {"account": account or self.account_id, "ids_only": 1}
        return self.admin(f"objects/{stream}", params)["deleted"]

    def ids(self, stream: str, account: str | None = None) -> list[str]:
        params = {"account": account or self.account_id, "ids_only": 1}
        return self.admin(f"objects/{stream}", params)["ids"]

    def mutate(self, spec: dict[str, Any] | None = None, **tables: dict[str, int]) -> Any:
        """E.g. ``sim.mutate(customer={"create": 2, "delete": 1})``; see mutate.py."""
        return self.admin("mutate", body={**(spec or {}), **tables})

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs live: latency, faults, rate limits (``limits``, its rates), params."""
        return self.admin("knobs", body=knobs)

    def info(self) -> dict[str, Any]:
        return self.admin("info")


@contextmanager
def run_simulator(*, subprocess: bool = False, **knobs: Any) -> Iterator[SimHandle]:
    """Start a simulator with ``knobs`` (the fields of :class:`SimConfig`), stop it after."""
    config = SimConfig(**knobs)
    if subprocess:
        with _run_process(config) as handle:
            yield handle
        return
    state = SimState(config)
    server = serve(state, "127.0.0.1", config.port)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="stripe-sim", daemon=True
    )
    thread.start()
    try:
        yield handle_of(server.url, config)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def handle_of(url: str, config: SimConfig) -> SimHandle:
    return SimHandle(url, config.api_key, connected_account_ids=config.connected_account_ids())


def cli_args(config: SimConfig) -> list[str]:
    """Command-line flags reproducing ``config``."""
    args = [
        f"--port={config.port}",
        f"--seed={config.seed}",
        f"--days={config.days}",
        f"--latency-ms={config.latency_ms}",
        f"--rate-limit={config.rate_limit}",
        f"--fault-rate={config.fault_rate}",
        f"--fault-kinds={','.join(config.fault_kinds)}",
        f"--other-api-version-rate={config.other_api_version_rate}",
        f"--newer-fields-rate={config.newer_fields_rate}",
        f"--connected-accounts={config.connected_accounts}",
        f"--connected-scale={config.connected_scale}",
        f"--api-key={config.api_key}",
        f"--{'' if config.limits else 'no-'}limits",
        f"--live-rate={config.live_rate}",
        f"--test-rate={config.test_rate}",
        f"--endpoint-rate={config.endpoint_rate}",
        f"--concurrency-limit={config.concurrency_limit}",
        f"--endpoint-concurrency-limit={config.endpoint_concurrency_limit}",
        f"--{'' if config.strict_params else 'no-'}strict-params",
    ]
    if config.now is not None:
        args.append(f"--now={config.now}")
    args.extend(f"--count={table}={n}" for table, n in config.counts.items())
    args.extend(f"--unavailable={table}={answer}" for table, answer in config.unavailable.items())
    return args


@contextmanager
def _run_process(config: SimConfig) -> Iterator[SimHandle]:
    process = sp.Popen(
        [sys.executable, "-m", "stripe_sim", *cli_args(config)],
        cwd=REPO_ROOT,
        stdout=sp.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise SimulatorStartError(f"exit {process.poll()}: {line!r}")
        yield handle_of(line.removeprefix("listening on "), config)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except sp.TimeoutExpired:
            process.kill()
            process.wait()
