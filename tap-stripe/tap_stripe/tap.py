"""tap-stripe: settings, the shared HTTP client and the stream list."""

from __future__ import annotations

import json
import math
import sys
import time
from functools import cached_property
from importlib import resources
from typing import Any

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import Schema

from tap_stripe.changes import DELETED_AT, DELETED_AT_SCHEMA, with_deleted_at
from tap_stripe.client import (
    DEFAULT_API_URL,
    DEFAULT_API_VERSION,
    RateLimiter,
    StripeClient,
    StripeError,
    default_rate_for_key,
    register_secret,
    scrub,
)
from tap_stripe.fetcher import FetchSlots, PageBudget
from tap_stripe.output import FastSingerWriter
from tap_stripe.streams import StripeStream
from tap_stripe.tables import TABLES, TableSpec

KEY_PREFIXES = ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
# Threads needed to keep the rate budget busy at Stripe's typical ~300-400 ms per list page.
SECONDS_IN_FLIGHT_PER_REQUEST = 0.4
MAX_CONCURRENCY = 48
UNLIMITED_CONCURRENCY = 16


def load_schema(name: str) -> dict:
    """The generated JSON Schema of stream ``name`` (``tap_stripe/schemas/<name>.json``)."""
    path = resources.files("tap_stripe") / "schemas" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


class TapStripe(Tap):
    """Singer tap for Stripe."""

    name = "tap-stripe"
    message_writer_class = FastSingerWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            description="Stripe secret or restricted key (sk_live_, sk_test_, rk_live_, rk_test_).",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Read objects created at or after this time; default: all history.",
        ),
        th.Property(
            "account_id",
            th.StringType,
            description="Connected account to read, sent as the Stripe-Account header.",
        ),
        th.Property("api_url", th.StringType, default=DEFAULT_API_URL),
        th.Property(
            "api_version",
            th.StringType,
            default=DEFAULT_API_VERSION,
            description="Stripe-Version sent with every request; the schemas describe 2023-08-16.",
        ),
        th.Property(
            "lookback_window",
            th.IntegerType,
            default=300,
            description="Seconds re-read below the bookmark: Stripe can make an object "
            "visible after later ones.",
        ),
        th.Property("request_timeout", th.IntegerType, default=60, description="Seconds."),
        th.Property(
            "max_requests_per_second",
            th.IntegerType,
            description="Client-side request budget shared by all streams; default 90 for "
            "live keys and 20 for test keys (Stripe allows 100 and 25).",
        ),
        th.Property(
            "max_concurrency",
            th.IntegerType,
            description="Requests in flight at once; default from the request budget.",
        ),
        th.Property(
            "retry_backoff_seconds",
            th.NumberType,
            default=1.0,
            description="Base of the exponential backoff between retries.",
        ),
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        api_key = self.config.get("api_key")
        if isinstance(api_key, str):
            register_secret(api_key)
        # Discovery (``--discover``, ``meltano select --list``) makes no request: the SDK
        # builds the tap without validating its config, and neither does the key check.
        if kwargs.get("validate_config", True):
            self._check_api_key(api_key)
        self.sync_started_at = time.time()

    @staticmethod
    def _check_api_key(api_key: object) -> None:
        if not api_key:
            msg = "api_key is required (in the config file or TAP_STRIPE_API_KEY)"
            raise ConfigValidationError(msg, errors=[msg])
        if not isinstance(api_key, str) or not api_key.startswith(KEY_PREFIXES):
            msg = (
                "api_key is not a Stripe secret or restricted key: expected a key starting "
                f"with one of {', '.join(KEY_PREFIXES)}"
            )
            raise ConfigValidationError(msg, errors=[msg])

    @cached_property
    def rate_limit(self) -> float | None:
        """Requests per second allowed, ``None`` when unlimited (``0``)."""
        configured = self.config.get("max_requests_per_second")
        if configured is None:
            return default_rate_for_key(self.config["api_key"])
        return float(configured) if configured > 0 else None

    @cached_property
    def concurrency(self) -> int:
        """Worker threads per stream."""
        configured = self.config.get("max_concurrency")
        if configured:
            return max(1, int(configured))
        if self.rate_limit is None:
            return UNLIMITED_CONCURRENCY
        return max(
            2, min(MAX_CONCURRENCY, math.ceil(self.rate_limit * SECONDS_IN_FLIGHT_PER_REQUEST))
        )

    @cached_property
    def client(self) -> StripeClient:
        """The one HTTP client of this run, shared by every stream."""
        config = self.config
        return StripeClient(
            api_key=config["api_key"],
            api_url=config.get("api_url") or DEFAULT_API_URL,
            api_version=config.get("api_version") or DEFAULT_API_VERSION,
            account_id=config.get("account_id"),
            timeout=float(config.get("request_timeout") or 60),
            rate_limiter=RateLimiter(self.rate_limit),
            backoff_base=float(config.get("retry_backoff_seconds", 1.0)),
            pool_size=self.concurrency,
        )

    @cached_property
    def fetch_slots(self) -> FetchSlots:
        """One slot per request in flight, shared by every stream's fetchers."""
        return FetchSlots(self.concurrency)

    @cached_property
    def page_budget(self) -> PageBudget:
        """Pages the streams waiting for their turn may hold together."""
        return PageBudget()

    def sync_all(self) -> None:
        """Sync the selected streams in order, every one of them fetching from the start.

        Streams are written one after the other as usual; fetching them all at once keeps
        the request budget busy through the small streams' round trips and each stream's
        last pages. Whatever is still fetching when the sync ends or fails is stopped.
        """
        streams = [
            stream
            for stream in self.streams.values()
            if isinstance(stream, StripeStream) and stream.selected
        ]
        try:
            for stream in streams:
                stream.prefetch()
            super().sync_all()
        finally:
            self.client.cancel()
            for stream in streams:
                stream.cancel_prefetch()
            self.client.cancel(cancelled=False)

    def setup_mapper(self) -> None:
        """The SDK's stream maps, over a catalog whose tables with change capture all have
        the tombstone column: a catalog written before it existed would otherwise send
        SCHEMA messages without it, and targets would drop the deletes."""
        for spec in TABLES:
            entry = self.catalog.get_stream(spec.name) if spec.event_types else None
            if entry is not None and entry.schema.properties is not None:
                entry.schema.properties.setdefault(DELETED_AT, Schema.from_dict(DELETED_AT_SCHEMA))
        super().setup_mapper()

    def discover_streams(self) -> list[StripeStream]:
        """One stream per table of the registry."""
        return [self.stream_for(spec) for spec in TABLES]

    def stream_for(self, spec: TableSpec) -> StripeStream:
        """The stream reading ``spec``; tables with change capture get a tombstone column."""
        schema = load_schema(spec.name)
        if spec.event_types:
            schema = with_deleted_at(schema)
        return StripeStream(self, spec, schema)


def main() -> None:
    """``tap-stripe`` command: the SDK's CLI, with bad input and Stripe failures as one line.

    Covers Stripe's errors, unreadable or malformed config/state/catalog files and bad
    values; anything else is a bug and keeps its traceback.
    """
    try:
        TapStripe.cli()
    except StripeError as exc:
        print(f"tap-stripe: error: {scrub(str(exc))}", file=sys.stderr)
        sys.exit(1)
    except (OSError, ValueError) as exc:
        print(f"tap-stripe: error: {type(exc).__name__}: {scrub(str(exc))}", file=sys.stderr)
        sys.exit(1)
