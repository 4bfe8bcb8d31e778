"""Fixtures for the tap's tests: a fake Stripe behind requests-mock and an in-process runner."""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests_mock
from tap_stripe.tap import TapStripe

from tests.tap.fake_stripe import API_KEY, API_URL, OWN_ACCOUNT_ID, FakeStripe

ACCOUNT_COLUMN = "_stripe_account"


def partition_of(state: dict, stream: str, account: str = OWN_ACCOUNT_ID) -> dict:
    """``stream``'s state entry for ``account`` itself (one per account: the SDK's
    partitions keyed by ``_stripe_account``, with their ``context``), to change it."""
    stream_state = state.get("bookmarks", {}).get(stream, {})
    for partition in stream_state.get("partitions", []):
        if partition.get("context") == {ACCOUNT_COLUMN: account}:
            return partition
    raise KeyError(f"no state entry of {stream} for {account}")


def entry_of(state: dict, stream: str, account: str = OWN_ACCOUNT_ID) -> dict:
    """``stream``'s state entry for ``account`` without its context, ``{}`` when none."""
    try:
        partition = partition_of(state, stream, account)
    except KeyError:
        return {}
    return {key: value for key, value in partition.items() if key != "context"}


@dataclass
class SyncResult:
    """Singer messages of one run, split by kind."""

    messages: list[dict]
    records: dict[str, list[dict]] = field(default_factory=dict)
    schemas: dict[str, list[dict]] = field(default_factory=dict)
    states: list[dict] = field(default_factory=list)
    error: BaseException | None = None
    # The ``_stripe_account`` of the records, taken off them (each carries one).
    accounts: set[str] = field(default_factory=set)

    @property
    def last_state(self) -> dict:
        return self.states[-1] if self.states else {}

    def entry(self, stream: str) -> dict:
        """``stream``'s state entry for the fake's own account at the end of the run."""
        return entry_of(self.last_state, stream)

    def bookmark(self, stream: str) -> Any:
        return self.entry(stream).get("replication_key_value")


def parse_messages(text: str) -> SyncResult:
    messages = [json.loads(line) for line in text.splitlines() if line.strip()]
    result = SyncResult(messages)
    for message in messages:
        if message["type"] == "RECORD":
            record = dict(message["record"])
            result.accounts.add(record.pop(ACCOUNT_COLUMN))
            result.records.setdefault(message["stream"], []).append(record)
        elif message["type"] == "SCHEMA":
            result.schemas.setdefault(message["stream"], []).append(message)
        elif message["type"] == "STATE":
            result.states.append(message["value"])
    return result


def base_config(**overrides: Any) -> dict:
    config = {
        "api_key": API_KEY,
        "api_url": API_URL,
        "max_requests_per_second": 0,
        "max_requests_per_second_per_endpoint": 0,
        "retry_backoff_seconds": 0.001,
        "max_concurrency": 1,
    }
    config.update(overrides)
    return config


def run_tap(
    config: dict | None = None,
    *,
    state: dict | None = None,
    catalog: dict | None = None,
    streams: tuple[str, ...] | None = None,
) -> SyncResult:
    """Run a full sync in-process and capture its stdout (errors are captured, not raised).

    ``streams`` deselects every other stream (a shortcut for a catalog).
    """
    tap = TapStripe(config=config or base_config(), state=state, catalog=catalog)
    if streams is not None:
        for name, stream in tap.streams.items():
            stream.selected = name in streams
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    error: BaseException | None = None
    with redirect_stdout(buffer):
        try:
            tap.sync_all()
        except Exception as exc:
            error = exc
        tap.message_writer.flush()
    buffer.seek(0)
    result = parse_messages(buffer.read())
    result.error = error
    return result


@pytest.fixture
def stripe() -> FakeStripe:
    with requests_mock.Mocker() as mocker:
        yield FakeStripe(mocker)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every ``time.sleep`` instead of sleeping."""
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    return sleeps
