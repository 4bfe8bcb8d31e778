"""SIGTERM and SIGINT at awkward moments, and a stdout closed by its reader.

Each test runs the real ``tap-stripe`` against a small HTTP server on 127.0.0.1 that can
hold a request open, fail it, or serve thousands of large charges, and checks how the tap
ends: within 5 s of the signal, exit code 128 + signal, one line on stderr, no traceback,
no key, stdout made of whole JSON lines only, and no STATE that covers a record that did
not reach stdout before it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from tap_stripe.output import line_blocks

TAP = Path(sys.executable).parent / "tap-stripe"
API_KEY = "sk_test_51SignalKeyNeverPrinted000000000000000"
CHARGES_PATH = "/v1/charges"
ACCOUNT_PATH = "/v1/account"
# Many charges of about 1 KB: several MB of RECORD lines, flushed 1 MB at a time.
CHARGE_COUNT = 6000
FIRST_CREATED = 1_600_000_000
EXIT_WITHIN_SECONDS = 5
STOPPED_LINE = (
    "tap-stripe: stopped by {}; the last STATE written covers every record written before it"
)


class FakeStripe:
    """What the server answers; a test sets it up before starting the tap."""

    def __init__(self) -> None:
        self.charges: list[dict[str, Any]] = []
        self.hang_path: str | None = None
        self.fail_path: str | None = None
        self.arrived = threading.Event()
        self.release = threading.Event()

    def add_charges(self, count: int) -> None:
        self.charges = [
            {
                "id": f"ch_{i:06d}",
                "object": "charge",
                "created": FIRST_CREATED + i * 60,
                "description": f"charge {i} " + "x" * 1000,
            }
            for i in reversed(range(count))
        ]

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path == self.hang_path:
            self.arrived.set()
            self.release.wait()
        if path == self.fail_path:
            self.arrived.set()
            return 500, {"error": {"type": "api_error", "message": "try again"}}
        if path == ACCOUNT_PATH:
            return 200, {"id": "acct_1", "object": "account"}
        objects = self.charges if path == CHARGES_PATH else []
        return 200, page(objects, path, query)


def page(objects: list[dict[str, Any]], path: str, query: dict[str, list[str]]) -> dict:
    """One page as Stripe lists it: newest first, in the ``created`` window, after the cursor."""
    lo = int(query.get("created[gte]", ["0"])[0])
    hi = int(query.get("created[lt]", [str(2**62)])[0])
    items = [obj for obj in objects if lo <= obj["created"] < hi]
    after = query.get("starting_after", [None])[0]
    if after is not None:
        items = items[[obj["id"] for obj in items].index(after) + 1 :]
    limit = int(query.get("limit", ["10"])[0])
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": path}


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        url = urlparse(self.path)
        status, body = self.server.stripe.answer(url.path, parse_qs(url.query))
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Request-Id", "req_signals")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the tap is gone
            return

    def log_message(self, format: str, *args: object) -> None:
        return


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stripe: FakeStripe) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.stripe = stripe


@pytest.fixture
def stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    yield fake
    fake.release.set()


@pytest.fixture
def api_url(stripe: FakeStripe) -> Iterator[str]:
    server = Server(stripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stripe.release.set()
    server.shutdown()
    server.server_close()


class TapProcess:
    """``tap-stripe`` as a process; its stderr is collected by a thread as lines."""

    def __init__(self, tmp_path: Path, api_url: str, **settings: Any) -> None:
        config = {
            "api_key": API_KEY,
            "api_url": api_url,
            "max_requests_per_second": 0,
            "max_concurrency": 2,
            **settings,
        }
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_STRIPE_")}
        self.process = subprocess.Popen(
            [str(TAP), "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._lines: list[str] = []
        self._logged = threading.Condition()
        self._stderr = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr.start()
        self.stdout = bytearray()
        self._stdout: threading.Thread | None = None

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            with self._logged:
                self._lines.append(raw.decode(errors="replace"))
                self._logged.notify_all()

    def wait_for_log(self, text: str) -> None:
        """Wait until a line of stderr contains ``text``."""
        with self._logged:
            found = self._logged.wait_for(lambda: any(text in line for line in self._lines), 60)
        assert found, f"the tap never logged {text!r}:\n{self.stderr}"

    def read_stdout(self) -> None:
        """Read stdout to its end in a thread, as a target does."""
        self._stdout = threading.Thread(target=self._drain, daemon=True)
        self._stdout.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(1 << 16):
            self.stdout += chunk

    def first_record_of(self, stream: str) -> None:
        """Read stdout up to the first RECORD of ``stream``, then stop reading it."""
        assert self.process.stdout is not None
        while line := self.process.stdout.readline():
            self.stdout += line
            message = json.loads(line)
            if message["type"] == "RECORD" and message["stream"] == stream:
                return
        pytest.fail(f"the tap wrote no record of {stream}")

    def stop(self, signum: int) -> int:
        """Send ``signum``, keep reading stdout, and return the exit code (within 5 s)."""
        self.process.send_signal(signum)
        if self._stdout is None:
            self.read_stdout()
        code = self.process.wait(timeout=EXIT_WITHIN_SECONDS)
        self.join()
        return code

    def join(self) -> None:
        for thread in (self._stdout, self._stderr):
            if thread is not None:
                thread.join(timeout=30)

    @property
    def stderr(self) -> str:
        with self._logged:
            return "".join(self._lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start(tmp_path: Path, api_url: str) -> Iterator:
    started: list[TapProcess] = []

    def run(**settings: Any) -> TapProcess:
        tap = TapProcess(tmp_path, api_url, **settings)
        started.append(tap)
        return tap

    yield run
    for tap in started:
        tap.kill()


def messages_of(stdout: bytes) -> list[dict[str, Any]]:
    """Every line of ``stdout`` as JSON: the output ends with a newline, no line is cut."""
    assert not stdout or stdout.endswith(b"\n"), stdout[-200:]
    return [json.loads(line) for line in stdout.splitlines()]


def assert_stopped_cleanly(tap: TapProcess, code: int, last_line: str) -> list[dict[str, Any]]:
    """The tap ended with ``code`` and ``last_line`` only; returns its messages."""
    stderr = tap.stderr
    assert code == tap.process.returncode
    assert stderr.splitlines()[-1] == last_line, stderr[-2000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    assert API_KEY not in stderr and API_KEY.encode() not in tap.stdout
    return messages_of(bytes(tap.stdout))


def assert_states_cover_only_written_records(
    messages: list[dict[str, Any]], stripe: FakeStripe
) -> None:
    """Every STATE's charge bookmark comes after every charge created before it."""
    written: set[str] = set()
    for message in messages:
        if message["type"] == "RECORD" and message["stream"] == "charge":
            written.add(message["record"]["id"])
        elif message["type"] == "STATE":
            entry = message["value"].get("bookmarks", {}).get("charge", {})
            bookmark = entry.get("replication_key_value")
            if bookmark is not None:
                covered = {obj["id"] for obj in stripe.charges if obj["created"] < bookmark}
                assert covered <= written, f"STATE at {bookmark} before its records"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_a_request_hangs(stripe: FakeStripe, start: Any, signum: int) -> None:
    stripe.add_charges(10)
    stripe.hang_path = CHARGES_PATH
    tap = start(request_timeout=60)
    tap.read_stdout()
    assert stripe.arrived.wait(60), "the tap never asked for charges"

    code = tap.stop(signum)

    messages = assert_stopped_cleanly(
        tap, 128 + signum, STOPPED_LINE.format(signal.Signals(signum).name)
    )
    assert not [m for m in messages if m["type"] == "RECORD" and m["stream"] == "charge"]
    assert code == 128 + signum


@pytest.mark.parametrize(
    ("path", "signum"),
    [
        # Charges are fetched by worker threads; the run's own account, first, by the main
        # thread.
        (CHARGES_PATH, signal.SIGTERM),
        (ACCOUNT_PATH, signal.SIGINT),
    ],
)
def test_a_signal_during_a_retry_backoff(
    stripe: FakeStripe, start: Any, path: str, signum: int
) -> None:
    stripe.fail_path = path
    # Retry 1 waits 15 to 30 s: an exit within 5 s cuts it short.
    tap = start(retry_backoff_seconds=30)
    tap.read_stdout()
    tap.wait_for_log("retry 1 of 7 in")

    code = tap.stop(signum)

    assert code == 128 + signum
    messages = assert_stopped_cleanly(tap, code, STOPPED_LINE.format(signal.Signals(signum).name))
    if path == ACCOUNT_PATH:
        # The run's first request: no table was read yet.
        assert not any(m["type"] == "RECORD" for m in messages)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_writing_to_a_reader_that_stopped_reading(
    stripe: FakeStripe, start: Any, signum: int
) -> None:
    stripe.add_charges(CHARGE_COUNT)
    tap = start()
    # The tap is in its first flush of charges (1 MB); the pipe fills and blocks it.
    tap.first_record_of("charge")

    code = tap.stop(signum)

    assert code == 128 + signum
    messages = assert_stopped_cleanly(tap, code, STOPPED_LINE.format(signal.Signals(signum).name))
    charges = [m for m in messages if m["type"] == "RECORD" and m["stream"] == "charge"]
    assert 0 < len(charges) < CHARGE_COUNT
    assert_states_cover_only_written_records(messages, stripe)


def test_a_closed_stdout_ends_the_tap_with_one_line(stripe: FakeStripe, start: Any) -> None:
    stripe.add_charges(CHARGE_COUNT)
    tap = start()
    tap.first_record_of("charge")

    assert tap.process.stdout is not None
    tap.process.stdout.close()
    code = tap.process.wait(timeout=EXIT_WITHIN_SECONDS)
    tap.join()

    assert code == 1
    stderr = tap.stderr
    assert stderr.splitlines()[-1] == (
        "tap-stripe: error: stdout was closed (the target stopped reading); stopping"
    )
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    assert API_KEY not in stderr


def test_a_flush_goes_out_in_blocks_of_whole_lines() -> None:
    lines = [b"a" * 30 + b"\n", b"b" * 50 + b"\n", b"c" * 200 + b"\n", b"d\n", b"e\n"]
    buffer = bytearray(b"".join(lines))

    blocks = [bytes(buffer[start:end]) for start, end in line_blocks(buffer, 100)]

    # At most 100 bytes each, but never half a line: a longer line is a block of its own.
    assert blocks == [lines[0] + lines[1], lines[2], lines[3] + lines[4]]
