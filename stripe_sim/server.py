"""The HTTP server: keep-alive, one thread per connection, Stripe's API plus ``/_sim`` admin.

Around the API it adds the knobs: Stripe's rate limits (``limits.py``) answered with 429
and Stripe's headers, latency per request, and injected faults (5xx or a dropped
connection).
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from stripe_sim import api, errors, limits
from stripe_sim.admin import handle_admin
from stripe_sim.config import API_VERSION, MAIN_ACCOUNT
from stripe_sim.limits import LimitKnobs, Limits
from stripe_sim.state import SimState

LOG_LIMIT = 100_000
# A limiter refuses without data work: one body for every 429.
RATE_LIMITED_BODY = errors.rate_limited().body()


class Stats:
    """Request counts per path, route, account (no ``Stripe-Account``: the platform's) and
    status, refusals per limiter, a bounded request log."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.by_path: dict[str, Counter[str]] = {}
        self.by_route: dict[str, Counter[str]] = {}
        self.by_account: dict[str, Counter[str]] = {}
        self.by_status: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.refused_by_endpoint: dict[str, Counter[str]] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)

    def record(
        self, request: limits.Request, path: str, query: str, status: str, reason: str | None = None
    ) -> None:
        """One answered request; ``reason``: the limiter that refused it."""
        with self.lock:
            self.by_path.setdefault(path, Counter())[status] += 1
            self.by_route.setdefault(request.route, Counter())[status] += 1
            account = request.account or MAIN_ACCOUNT
            self.by_account.setdefault(account, Counter())[status] += 1
            if reason is not None:
                self.refused[reason] += 1
                self.refused_by_endpoint.setdefault(request.endpoint, Counter())[reason] += 1
            self.by_status[status] += 1
            self.log.append(
                {
                    "method": request.method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "account": request.account,
                }
            )

    def snapshot(self, with_log: bool, reset: bool) -> dict[str, Any]:
        with self.lock:
            result: dict[str, Any] = {
                "total": sum(self.by_status.values()),
                "by_status": dict(self.by_status),
                "by_path": {path: dict(counts) for path, counts in self.by_path.items()},
                "by_route": {route: dict(counts) for route, counts in self.by_route.items()},
                "by_account": {
                    account: dict(counts) for account, counts in self.by_account.items()
                },
                "rate_limited": {
                    "by_reason": dict(self.refused),
                    "by_endpoint": {
                        endpoint: dict(counts)
                        for endpoint, counts in self.refused_by_endpoint.items()
                    },
                },
            }
            if with_log:
                result["log"] = list(self.log)
            if reset:
                self.reset()
            return result


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, state: SimState, address: tuple[str, int]) -> None:
        super().__init__(address, SimHandler)
        self.state = state
        self.limits = Limits(LimitKnobs.of(state.config))
        self.stats = Stats()
        self.fault_rng = random.Random(state.config.seed)
        self.fault_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def draw_fault(self) -> str | None:
        """``"drop"``, ``"truncate"``, an HTTP status as text, or None, at the fault rate."""
        rate = self.state.knobs.fault_rate
        if rate <= 0:
            return None
        with self.fault_lock:
            if self.fault_rng.random() >= rate:
                return None
            return self.fault_rng.choice(self.state.config.fault_kinds)


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # seconds an idle keep-alive connection (and its thread) may linger
    server: SimServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; stats are available at ``/_sim/stats``."""

    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith("/_sim/"):
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b""
            status, body = handle_admin(self.server, self.command, path, parse_qs(query), payload)
            self.send(status, body, {})
            return
        self.serve_api(path, query)

    def serve_api(self, path: str, query: str) -> None:
        """Admit the request (or answer 429 at once), then answer it after the latency."""
        limiter = self.server.limits
        request = limits.Request.of(self.command, path, self.headers)
        admission = limiter.admit(request, self.server.state.knobs.rate_limit)
        if admission.reason is not None:
            self.refuse(request, path, query, admission.reason)
            return
        try:
            self.answer(request, path, query)
        finally:
            limiter.release(admission)

    def refuse(self, request: limits.Request, path: str, query: str, reason: str) -> None:
        """Stripe's 429: no ``Stripe-Should-Retry`` (nor ``Retry-After``). With Stripe's
        limits off, the ``rate_limit`` knob's 429 says ``Stripe-Should-Retry: true``, as
        it always has."""
        extra = {"Stripe-Rate-Limited-Reason": reason}
        if not self.server.limits.knobs.limits:
            extra["Stripe-Should-Retry"] = "true"
        self.server.stats.record(request, path, query, "429", reason)
        self.send(429, RATE_LIMITED_BODY, extra)

    def answer(self, request: limits.Request, path: str, query: str) -> None:
        server = self.server
        knobs = server.state.knobs
        fault = server.draw_fault()
        if knobs.latency_ms > 0:
            time.sleep(knobs.latency_ms / 1000.0)
        if fault == "drop":
            server.stats.record(request, path, query, "dropped")
            self.close_connection = True
            return
        if fault == "truncate":
            response = api.handle(server.state, self.command, path, query, self.headers)
            server.stats.record(request, path, query, "truncated")
            self.close_connection = True
            self.send(response.status, response.body, {}, cut=len(response.body) // 2)
            return
        if fault is not None:
            status, body = int(fault), errors.api_error().body()
            extra = {"Stripe-Should-Retry": "true"}
        else:
            response = api.handle(server.state, self.command, path, query, self.headers)
            status, body, extra = response.status, response.body, {}
        server.stats.record(request, path, query, str(status))
        self.send(status, body, extra)

    def send(self, status: int, body: bytes, extra: dict[str, str], cut: int | None = None) -> None:
        """Write status line, headers and body in one send (no Nagle stalls on keep-alive).

        ``cut`` sends only that many body bytes (a truncated-response fault).
        """
        reason = self.responses.get(status, ("",))[0]
        lines = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"Request-Id: req_{secrets.token_hex(7)}",
            f"Stripe-Version: {API_VERSION}",
        ]
        lines.extend(f"{name}: {value}" for name, value in extra.items())
        if self.close_connection and cut is None:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (body if cut is None else body[:cut]))


def serve(state: SimState, host: str, port: int) -> SimServer:
    """Bind (port 0 picks a free one); the caller runs ``serve_forever``."""
    return SimServer(state, (host, port))
