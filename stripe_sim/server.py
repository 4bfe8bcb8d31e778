"""The HTTP server: keep-alive, one thread per connection, Stripe's API plus ``/_sim`` admin.

Around the API it adds the knobs: latency per request, a token-bucket rate limit answered
with 429 and Stripe's headers, and injected faults (5xx or a dropped connection).
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

from stripe_sim import api, errors
from stripe_sim.admin import handle_admin
from stripe_sim.config import API_VERSION
from stripe_sim.state import SimState

LOG_LIMIT = 100_000


class RateLimiter:
    """Token bucket: ``rate`` requests a second, bursts up to one second's worth (at least 1)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens = 0.0
        self.stamp = time.monotonic()
        self.rate = 0.0

    def allow(self, rate: float) -> bool:
        if rate <= 0:
            return True
        with self.lock:
            now = time.monotonic()
            capacity = max(1.0, rate)
            if rate != self.rate:
                self.rate, self.tokens = rate, capacity
            self.tokens = min(capacity, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


def route_of(path: str) -> str:
    """``/v1/invoices/in_1/lines`` -> ``/v1/invoices/{id}/lines``: counts per endpoint."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "v1":
        parts[3] = "{id}"
    return "/".join(parts)


class Stats:
    """Request counts per path and status, plus a bounded request log."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.by_path: dict[str, Counter[str]] = {}
        self.by_route: dict[str, Counter[str]] = {}
        self.by_status: Counter[str] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)

    def record(self, method: str, path: str, query: str, status: str, account: str | None) -> None:
        with self.lock:
            self.by_path.setdefault(path, Counter())[status] += 1
            self.by_route.setdefault(route_of(path), Counter())[status] += 1
            self.by_status[status] += 1
            self.log.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "account": account,
                }
            )

    def snapshot(self, with_log: bool, reset: bool) -> dict[str, Any]:
        with self.lock:
            result: dict[str, Any] = {
                "total": sum(self.by_status.values()),
                "by_status": dict(self.by_status),
                "by_path": {path: dict(counts) for path, counts in self.by_path.items()},
                "by_route": {route: dict(counts) for route, counts in self.by_route.items()},
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
        self.limiter = RateLimiter()
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
        server = self.server
        knobs = server.state.knobs
        account = self.headers.get("Stripe-Account")
        allowed = server.limiter.allow(knobs.rate_limit)
        fault = server.draw_fault() if allowed else None
        if knobs.latency_ms > 0:
            time.sleep(knobs.latency_ms / 1000.0)
        if not allowed:
            error = errors.rate_limited()
            extra = {"Stripe-Rate-Limited-Reason": "global-rate", "Stripe-Should-Retry": "true"}
            status, body = error.status, error.body()
        elif fault == "drop":
            server.stats.record(self.command, path, query, "dropped", account)
            self.close_connection = True
            return
        elif fault == "truncate":
            response = api.handle(server.state, self.command, path, query, self.headers)
            server.stats.record(self.command, path, query, "truncated", account)
            self.close_connection = True
            self.send(response.status, response.body, {}, cut=len(response.body) // 2)
            return
        elif fault is not None:
            error = errors.api_error()
            status, body = int(fault), error.body()
            extra = {"Stripe-Should-Retry": "true"}
        else:
            response = api.handle(server.state, self.command, path, query, self.headers)
            status, body, extra = response.status, response.body, {}
        server.stats.record(self.command, path, query, str(status), account)
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
