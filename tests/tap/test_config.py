"""Settings and input files checked before any request; the key never shown, in any shape.

The one-line errors are asserted on the real ``tap-stripe`` command, against a tiny local
server that records every request it gets (a config error must leave it untouched).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tap_stripe.settings import InputError
from tap_stripe.tap import TapStripe

from tests.tap.conftest import base_config, run_tap
from tests.tap.fake_stripe import FakeStripe

TAP = Path(sys.executable).parent / "tap-stripe"
KEY = "sk_test_51ConfigKeyNeverPrinted22222222222222"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))


class RecordingHandler(BaseHTTPRequestHandler):
    """Answers every list with one charge to the exact key, 401 to anything else."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen.append((self.path, auth))
        if auth != f"Bearer {KEY}":
            self._send(401, {"error": {"type": "invalid_request_error", "message": "bad key"}})
        elif self.path.startswith("/v1/charges"):
            charge = {"id": "ch_1", "object": "charge", "created": 1_700_000_000}
            self._send(200, {"object": "list", "data": [charge], "has_more": False})
        elif self.path.split("?")[0] == "/v1/account":
            self._send(200, {"id": "acct_1", "object": "account"})
        else:
            self._send(200, {"object": "list", "data": [], "has_more": False})

    def _send(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def seen(server: str) -> list[tuple[str, str]]:
    RecordingHandler.seen.clear()
    return RecordingHandler.seen


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


def errors(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if "error" in line.lower()]


def assert_one_line_failure(done: subprocess.CompletedProcess, line: str) -> None:
    assert done.returncode == 1
    assert done.stdout == ""
    assert errors(done) == [line]
    assert "Traceback" not in done.stderr
    assert KEY not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("settings_", "line"),
    [
        (
            {"lookback_window": -600},
            "config: lookback_window must be a whole number of seconds of 0 or more, not -600",
        ),
        (
            {"max_requests_per_second": -1},
            "config: max_requests_per_second must be a whole number of 0 or more "
            "(0 = unlimited), not -1",
        ),
        (
            {"max_concurrency": 0},
            "config: max_concurrency must be a whole number from 1 to 256, not 0",
        ),
        (
            {"max_concurrency": 100_000},
            "config: max_concurrency must be a whole number from 1 to 256, not 100000",
        ),
        (
            {"request_timeout": 0},
            "config: request_timeout must be a whole number of seconds from 1 to 3600, not 0",
        ),
        (
            {"request_timeout": 10**20},
            "config: request_timeout must be a whole number of seconds from 1 to 3600, "
            "not 100000000000000000000",
        ),
        (
            {"request_timeout": -5},
            "config: request_timeout must be a whole number of seconds from 1 to 3600, not -5",
        ),
        (
            {"retry_backoff_seconds": -0.5},
            "config: retry_backoff_seconds must be a number of seconds of 0 or more, not -0.5",
        ),
        (
            {"start_date": "2024-02-30"},
            "config: start_date must be an ISO 8601 date or date-time that exists, such as "
            "2024-01-31 or 2024-01-31T00:00:00Z, not '2024-02-30'",
        ),
        (
            {"start_date": "last tuesday"},
            "config: start_date must be an ISO 8601 date or date-time that exists, such as "
            "2024-01-31 or 2024-01-31T00:00:00Z, not 'last tuesday'",
        ),
        ({"api_key": [KEY]}, "config: api_key must be a string, not a list"),
        ({"api_key": {"key": KEY}}, "config: api_key must be a string, not an object"),
        ({"api_key": 42}, "config: api_key must be a string, not a number"),
        (
            {"api_key": KEY[:20] + "\n" + KEY[20:]},
            "config: api_key holds whitespace or a control character inside it (check the key)",
        ),
        (
            {"api_key": KEY + "\rx"},
            "config: api_key holds whitespace or a control character inside it (check the key)",
        ),
        (
            {"api_version": "2023-08-16\nX-Injected: 1"},
            "config: api_version holds a line break or another control character",
        ),
        (
            {"account_id": "acct_1\r\n"},
            "config: account_id holds a line break or another control character",
        ),
        (
            {"api_key": "  \n"},
            "config: api_key is required (in the config file or TAP_STRIPE_API_KEY)",
        ),
        ({"stream_maps": [KEY]}, "config: stream_maps must be of type object or null, not a list"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_before_any_request(
    tmp_path: Path, server: str, seen: list, settings_: dict, line: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": KEY, "api_url": server, **settings_}))

    done = run(["--config", str(config)])

    assert_one_line_failure(done, f"tap-stripe: error: {line}")
    assert seen == []


def test_a_key_in_a_list_from_the_sdk_schema_is_not_echoed() -> None:
    """The SDK's own messages print the value (``['sk_...'] is not of type 'string'``)."""
    with pytest.raises(InputError) as raised:
        TapStripe(config={"api_key": KEY, "flattening_enabled": [KEY, f"{KEY}\n"]})

    assert raised.value.lines == [
        "config: flattening_enabled must be of type boolean or null, not a list"
    ]


def test_bad_settings_make_no_request(stripe: FakeStripe) -> None:
    with pytest.raises(InputError):
        run_tap(base_config(lookback_window=-600))

    assert stripe.requests == []
    assert stripe.mocker.call_count == 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"api_key": ', "not JSON (Expecting value at line 1 column 13)"),
        ("[1, 2]", "not a JSON object but a list"),
        ('"sk_test_x"', "not a JSON object but a string"),
        ('{"lookback_window": NaN}', "not JSON (NaN is not JSON)"),
    ],
)
@pytest.mark.parametrize("kind", ["config", "catalog", "state"])
def test_a_file_that_is_not_a_json_object_is_one_line_naming_it(
    tmp_path: Path, server: str, seen: list, kind: str, text: str, problem: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": KEY, "api_url": server}))
    bad = tmp_path / f"{kind}.json"
    bad.write_text(text)
    args = ["--config", str(bad if kind == "config" else config)]
    if kind != "config":
        args += [f"--{kind}", str(bad)]

    done = run(args)

    assert_one_line_failure(done, f"tap-stripe: error: {kind} file {bad}: {problem}")
    assert seen == []


def test_a_catalog_that_is_not_a_catalog_is_one_line(tmp_path: Path, server: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": KEY, "api_url": server}))
    catalog = tmp_path / "catalog.json"
    catalog.write_text('{"streams": [{"schema": {}}]}')

    done = run(["--config", str(config), "--catalog", str(catalog)])

    assert_one_line_failure(
        done,
        f"tap-stripe: error: catalog file {catalog}: not a Singer catalog "
        "(KeyError: 'tap_stream_id')",
    )


def test_a_key_with_a_newline_is_stripped_from_a_file_and_from_env(
    tmp_path: Path, server: str, seen: list
) -> None:
    """A secrets file's trailing newline is not sent (the server accepts the bare key only)."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": f" {KEY}\n", "api_url": server}))

    from_file = run(["--config", str(config)])
    from_env = run(
        ["--config", "ENV"], {"TAP_STRIPE_API_KEY": f"{KEY}\n", "TAP_STRIPE_API_URL": server}
    )

    for done in (from_file, from_env):
        assert done.returncode == 0, done.stderr
        assert '"ch_1"' in done.stdout
        assert KEY not in done.stdout + done.stderr
    assert seen and {auth for _, auth in seen} == {f"Bearer {KEY}"}


def test_an_unknown_setting_is_a_warning_naming_the_closest_known_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The SDK's own settings are known too."""
    builtin = {
        "stream_maps": {},
        "stream_map_config": {},
        "faker_config": {},
        "flattening_enabled": False,
        "flattening_max_depth": 1,
        "batch_config": {"encoding": {"format": "jsonl"}, "storage": {"root": "file://"}},
    }

    with caplog.at_level(logging.WARNING):
        TapStripe(config=base_config(start_dat="2024-01-01", **builtin))

    assert [r.getMessage() for r in caplog.records] == [
        "config: unknown setting 'start_dat' is ignored (did you mean 'start_date'?)"
    ]


def test_a_catalog_that_selects_nothing_is_a_warning(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = TapStripe(config=base_config()).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = False

    with caplog.at_level(logging.WARNING):
        result = run_tap(catalog=catalog)

    assert result.error is None
    assert "The catalog selects no stream: nothing to sync" in caplog.text
    assert stripe.requests == []


def test_discovery_with_a_key_in_a_list_needs_no_request_and_shows_no_key(
    tmp_path: Path, seen: list, server: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": [KEY], "api_url": server}))

    done = run(["--config", str(config), "--discover"])

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["streams"]
    assert KEY not in done.stdout + done.stderr
    assert seen == []


# ---- properties ----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
KEY_SHAPES = st.sampled_from(
    [KEY, f"{KEY}\n", f"  {KEY}\t", [KEY], [f"{KEY}\n"], {"key": KEY}, {KEY: 1}, [[KEY]]]
)
SETTING_NAMES = st.sampled_from(
    [
        "start_date",
        "lookback_window",
        "request_timeout",
        "max_requests_per_second",
        "max_concurrency",
        "retry_backoff_seconds",
        "account_id",
        "api_version",
        "stream_maps",
        "flattening_enabled",
        "start_dat",
    ]
)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@settings(
    derandomize=True,
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    key=KEY_SHAPES,
    others=st.dictionaries(SETTING_NAMES, JSON | SETTING_NAMES, max_size=4),
    with_key_elsewhere=st.booleans(),
)
def test_any_config_is_accepted_or_refused_in_lines_that_never_hold_the_key(
    key: Any, others: dict[str, Any], with_key_elsewhere: bool
) -> None:
    config: dict[str, Any] = {**others, "api_key": key, "api_url": "https://stripe.test"}
    if with_key_elsewhere:
        config["stream_maps"] = {"charge": {"x": key}} if others else [key]
    handler = Captured()
    logging.getLogger().addHandler(handler)
    try:
        with requests_mock.Mocker() as mocker:
            try:
                TapStripe(config=config, parse_env_config=False)
            except InputError as exc:
                lines = exc.lines
                assert lines and all(line.startswith("config: ") for line in lines)
            else:
                lines = []
            assert mocker.call_count == 0
    finally:
        logging.getLogger().removeHandler(handler)
    assert KEY not in "\n".join(lines + handler.lines)
