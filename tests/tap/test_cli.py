"""The ``tap-stripe`` command as a process: config sources, one-line errors, the key never shown.

A tiny HTTP server on 127.0.0.1 stands in for Stripe so the real executable runs end to
end; it echoes the key back in its 401 message, as a careless API might.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TAP = Path(sys.executable).parent / "tap-stripe"
GOOD_KEY = "sk_test_51CliKeyNeverPrinted0000000000000000"
REFUSED_KEY = "sk_test_51RefusedKeyNeverPrinted111111111111"


class FakeStripeHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {GOOD_KEY}":
            key = auth.removeprefix("Bearer ")
            body = {
                "error": {
                    "type": "invalid_request_error",
                    "message": f"Invalid API Key provided: {key}",
                }
            }
            self._send(401, body)
            return
        if self.path.split("?")[0] == "/v1/account":
            self._send(200, {"id": "acct_1", "object": "account"})
        elif self.path.startswith("/v1/charges"):
            data = [
                {"id": f"ch_{i}", "object": "charge", "created": 1_700_000_000 + i} for i in (2, 1)
            ]
            self._send(
                200, {"object": "list", "data": data, "has_more": False, "url": "/v1/charges"}
            )
        else:
            self._send(200, {"object": "list", "data": [], "has_more": False, "url": self.path})

    def _send(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Request-Id", "req_cli")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStripeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TAP_STRIPE_")}
    return subprocess.run(
        [str(TAP), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line or "error:" in line]


def test_passing_run_emits_records_and_never_the_key(tmp_path: Path, api_url: str) -> None:
    config = write_config(tmp_path, {"api_key": GOOD_KEY, "api_url": api_url})

    done = run(["--config", str(config)])

    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert {m["type"] for m in records} >= {"SCHEMA", "RECORD", "STATE"}
    assert [
        m["record"]["id"] for m in records if m["type"] == "RECORD" and m["stream"] == "charge"
    ] == ["ch_2", "ch_1"]
    assert GOOD_KEY not in done.stdout + done.stderr


def test_refused_key_is_one_clear_line_without_the_key(tmp_path: Path, api_url: str) -> None:
    config = write_config(tmp_path, {"api_key": REFUSED_KEY, "api_url": api_url})

    done = run(["--config", str(config)])

    assert done.returncode == 1
    assert done.stdout.count("RECORD") == 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tap-stripe: error: stream '")
    assert "HTTP 401 Stripe refused the API key" in last and "req_cli" in last
    assert "Traceback" not in done.stderr
    assert REFUSED_KEY not in done.stdout + done.stderr


def test_config_from_environment_variables(api_url: str) -> None:
    env = {"TAP_STRIPE_API_KEY": GOOD_KEY, "TAP_STRIPE_API_URL": api_url}

    done = run(["--config", "ENV"], env)

    assert done.returncode == 0, done.stderr
    assert '"stream":"charge"' in done.stdout
    assert GOOD_KEY not in done.stdout + done.stderr


def test_unreachable_api_fails_with_one_line(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "api_key": GOOD_KEY,
            "api_url": "http://127.0.0.1:9",
            "retry_backoff_seconds": 0.001,
            "request_timeout": 2,
            "max_requests_per_second": 0,
        },
    )

    done = run(["--config", str(config)])

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("tap-stripe: error: stream '")
    assert "giving up after 8 attempts" in done.stderr
    assert "Traceback" not in done.stderr
    assert GOOD_KEY not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ('{"api_key": ', "config.json: not JSON"),
        ("{}", "config: api_key is required"),
        ('{"api_key": "pk_test_publishable"}', "not a Stripe secret or restricted key"),
        (
            f'{{"api_key": "{GOOD_KEY}", "lookback_window": "soon"}}',
            "config: lookback_window must be",
        ),
    ],
)
def test_bad_config_is_a_clear_error_and_non_zero_exit(
    tmp_path: Path, config_text: str, expected: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(config_text)

    done = run(["--config", str(path)])

    assert done.returncode != 0
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert any(expected in line for line in error_lines(done.stderr))
    assert GOOD_KEY not in done.stdout + done.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    done = run(["--config", str(tmp_path / "nope.json")])

    assert done.returncode == 1
    assert error_lines(done.stderr) == [
        f"tap-stripe: error: config file {tmp_path / 'nope.json'}: not found"
    ]


def test_discovery_needs_no_key(tmp_path: Path) -> None:
    """``--discover`` (and so ``meltano select --list``) makes no request: no key needed."""
    done = run(["--config", str(write_config(tmp_path, {})), "--discover"])

    assert done.returncode == 0, done.stderr
    streams = {entry["tap_stream_id"] for entry in json.loads(done.stdout)["streams"]}
    assert {"charge", "customer", "subscription", "invoice", "account"} <= streams
