"""tap-stripe: settings, the shared HTTP client and the stream list."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import time
from functools import cached_property, partial
from importlib import resources
from types import FrameType
from typing import IO, Any

import click
from singer_sdk import Tap
from singer_sdk.exceptions import MappingError
from singer_sdk.helpers.capabilities import BATCH_CONFIG
from singer_sdk.singerlib import Catalog, Schema

from tap_stripe import shutdown
from tap_stripe.account_sync import sync_accounts
from tap_stripe.accounts import (
    OWN_ACCOUNT_PATH,
    Account,
    run_accounts,
    unfinished_first,
    with_account_column,
)
from tap_stripe.at_once import sync_at_once
from tap_stripe.baton import Baton
from tap_stripe.budgets import DEFAULT_ENDPOINT_RATE, RateLimiter, default_rate_for_key
from tap_stripe.changes import DELETED_AT, DELETED_AT_SCHEMA, with_deleted_at
from tap_stripe.client import (
    DEFAULT_API_URL,
    DEFAULT_API_VERSION,
    StripeClient,
    StripeError,
)
from tap_stripe.config_schema import CONFIG_SCHEMA, DEFAULT_ACCOUNTS_AT_ONCE
from tap_stripe.events_pass import EVENTS_PATH, EventsPass
from tap_stripe.fetcher import PageBudget, PageFetcher
from tap_stripe.listing import fetch_list, window_fetcher
from tap_stripe.output import FastSingerWriter
from tap_stripe.relisting import DEFAULT_RELIST_HOURS
from tap_stripe.report import Report
from tap_stripe.run import Run, floor_of, lookback_of
from tap_stripe.secrets import scrub
from tap_stripe.settings import (
    ConfigInput,
    InputError,
    config_from_cli,
    config_problems,
    parse_json_object,
    prepared_config,
    warn_unknown,
)
from tap_stripe.state import checked_state, usable_state
from tap_stripe.state_output import PacedStateWriter
from tap_stripe.streams import StripeStream
from tap_stripe.tables import TABLES, TableSpec, platform_only, tracks_deletes

# Threads needed to keep the rate budget busy at Stripe's typical ~300-400 ms per list page.
SECONDS_IN_FLIGHT_PER_REQUEST = 0.4
MAX_CONCURRENCY = 48
UNLIMITED_CONCURRENCY = 16
# The requests of the run's one events pass are counted under this name.
EVENTS_PASS = "(events pass)"


def load_schema(name: str) -> dict:
    """The generated JSON Schema of stream ``name`` (``tap_stripe/schemas/<name>.json``)."""
    path = resources.files("tap_stripe") / "schemas" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


class TapStripe(Tap):
    """Singer tap for Stripe."""

    name = "tap-stripe"
    message_writer_class = FastSingerWriter

    config_jsonschema = CONFIG_SCHEMA

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sync_started_at = time.time()
        self._state_writer = PacedStateWriter(self.message_writer)  # type: ignore[assignment]

    @classmethod
    def full_config_schema(cls) -> dict:
        """The settings' JSON Schema with the SDK's own (stream maps, flattening)."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return schema

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check the settings (``settings.py``) instead of the SDK, whose messages show
        the values, the key included; every problem is one line.

        Discovery (``--discover``, ``meltano select --list``) makes no request: the SDK
        builds the tap without ``raise_errors`` then, so it needs no key.
        """
        self._config = prepared_config(self._config)
        schema = self.full_config_schema()
        known = {*schema["properties"], *BATCH_CONFIG["properties"]}
        warn_unknown(self._config, known, self.logger)
        problems = config_problems(self._config, schema)
        if problems and raise_errors:
            raise InputError(*problems)
        return problems

    def load_state(self, state: dict[str, Any]) -> None:
        """The SDK's state, once its shape is checked and unreadable entries are dropped."""
        super().load_state(usable_state(checked_state(state, "state"), self.logger))

    @classmethod
    def cb_config(
        cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]
    ) -> ConfigInput:
        """The ``--config`` files, each error naming its file."""
        return config_from_cli(value)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: ConfigInput | None = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
    ) -> None:
        """The SDK's sync command, each error in the state or catalog file naming it."""
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        config = config or ConfigInput()
        tap = cls(
            config=config.config,
            state=None if state is None else read_state(state),
            catalog=None if catalog is None else read_catalog(catalog),
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        tap.sync_all()

    @cached_property
    def rate_limit(self) -> float | None:
        """Requests per second allowed, ``None`` when unlimited (``0``)."""
        configured = self.config.get("max_requests_per_second")
        if configured is None:
            return default_rate_for_key(self.config["api_key"])
        return float(configured) if configured > 0 else None

    @cached_property
    def endpoint_rate_limit(self) -> float | None:
        """Requests per second allowed per endpoint, ``None`` when unlimited (``0``)."""
        configured = self.config.get("max_requests_per_second_per_endpoint")
        if configured is None:
            return DEFAULT_ENDPOINT_RATE
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
            timeout=float(config.get("request_timeout") or 60),
            rate_limiter=RateLimiter(self.rate_limit),
            endpoint_rate=self.endpoint_rate_limit,
            baton=Baton(),
            backoff_base=float(config.get("retry_backoff_seconds", 1.0)),
            pool_size=self.concurrency,
            budget_per_account=bool(config.get("budget_per_account")),
        )

    @cached_property
    def run(self) -> Run:
        """This sync's run context, handed to every part (built once, when first needed)."""
        client = self.client
        report = Report(client.requests_by_stream, client.throttled_by_stream, log=self.logger.info)
        run = Run(
            client=client,
            concurrency=self.concurrency,
            page_budget=PageBudget(),
            events=EventsPass(
                lambda since, end: self._list_events(self.run, since, end),
                int(self.sync_started_at),
                client.baton,
                self.logger,
            ),
            report=report,
            started_at=self.sync_started_at,
            lookback=lookback_of(self.config),
            floor=floor_of(self.config),
            relist_hours=int(self.config.get("relist_children_hours", DEFAULT_RELIST_HOURS)),
        )
        return run

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Replaces the SDK's handler, which writes a STATE mid-flush (see shutdown.py)."""
        shutdown.on_signal(signum)

    @staticmethod
    def _list_events(run: Run, since: int, end: int) -> PageFetcher:
        """The pages of every event created in ``[since, end)``: an account's events pass."""
        fetch = partial(fetch_list, run, EVENTS_PASS, EVENTS_PATH, {})
        return window_fetcher(run, "tap-stripe-events", fetch, since, end)

    def sync_all(self) -> None:
        """Sync the selected tables of every account of the run (``accounts.py``).

        An account's tables are read all at once (``baton.py``) after one events pass of
        its own: every table plans its run and starts fetching; then the events every
        table's change capture needs are listed once, and each table is written in its
        own thread, a page at a time, so the tables whose endpoints wait for their budget
        leave the global one to the others. Several accounts are read at once
        (``account_sync.py``), those whose first sync is not done first. The first table
        of an account to fail stops that account's others; whatever is still fetching
        when the sync ends or fails is stopped.
        """
        streams = [
            stream
            for stream in self.streams.values()
            if isinstance(stream, StripeStream)
            and stream.parent is None
            and (stream.selected or stream.has_selected_descendents)
        ]
        if not streams and self.input_catalog is not None:
            self.logger.warning("The catalog selects no stream: nothing to sync")
        self._reset_state_progress_markers()
        self._set_compatible_replication_methods()
        if self.state:
            self._state_writer.write_state(self.state)
        run = self.run
        run.report.start()
        try:
            accounts = self._ordered_accounts(streams)
            sync_accounts(
                accounts,
                partial(self._sync_account, streams, len(accounts) > 1),
                at_once=self._at_once(),
                logger=self.logger,
            )
        finally:
            self._state_writer.flush()  # type: ignore[attr-defined]
            run.report.stop()
            self.client.cancel()
            self.client.cancel(cancelled=False)
        for line in run.report.summary():
            self.logger.info(line)
        for stream in self.streams.values():
            stream.log_sync_costs()

    def _ordered_accounts(self, streams: list[StripeStream]) -> list[Account]:
        """The run's accounts, those whose first sync is not done first."""
        accounts = run_accounts(self.config, self.client)
        if len(accounts) > 1:
            self.logger.info("Reading %d accounts, %s at once", len(accounts), self._at_once())
        started = {
            account.id: all(
                table.first_sync_done()
                for table in tables_of(streams, account, self.run)
                if table.spec.replication_key is not None
            )
            for account in accounts
        }
        return unfinished_first(accounts, started)

    def _at_once(self) -> int:
        return int(self.config.get("max_accounts_at_once") or DEFAULT_ACCOUNTS_AT_ONCE)

    def _sync_account(self, streams: list[StripeStream], labelled: bool, account: Account) -> None:
        """Read ``account``'s tables, all at once, after its events pass."""
        run = self._account_run(account, labelled)
        tables = tables_of(streams, account, run)
        self._clamp_state(tables)
        try:
            for table in tables:
                table.prefetch()
            run.events.start()
            sync_at_once(tables, run.baton, run.client.cancel)
        finally:
            run.client.cancel()
            for table in tables:
                table.cancel_prefetch()

    def _account_run(self, account: Account, labelled: bool) -> Run:
        """The run as ``account`` reads it: its requests carry its ``Stripe-Account`` (and,
        among many accounts, are counted under its id), its own events pass."""
        answered = {} if account.own_object is None else {OWN_ACCOUNT_PATH: account.own_object}
        client = self.client.for_account(account.header, account.id if labelled else None, answered)
        run = dataclasses.replace(self.run, client=client)
        events = EventsPass(
            partial(self._list_events, run), int(self.sync_started_at), client.baton, self.logger
        )
        return dataclasses.replace(run, events=events)

    def _clamp_state(self, streams: list[StripeStream]) -> None:
        """Clamp bookmarks and events cursors later than Stripe's clock, before any plan.

        Only a state later than this machine's clock costs a request (to learn Stripe's
        clock first): a normal run makes exactly the requests it did before.
        """
        if not any(stream.state_after(time.time()) for stream in streams):
            return
        now, clock = self.client.learn_stripe_time(), "Stripe's clock"
        if now is None:
            now, clock = time.time(), "this machine's clock (Stripe's could not be read)"
        for stream in streams:
            stream.clamp_state(now, clock)

    def setup_mapper(self) -> None:
        """The SDK's stream maps, over a catalog whose tables with change capture all have
        the tombstone column: a catalog written before it existed would otherwise send
        SCHEMA messages without it, and targets would drop the deletes."""
        for spec in TABLES:
            entry = self.catalog.get_stream(spec.name) if tracks_deletes(spec) else None
            if entry is not None and entry.schema.properties is not None:
                entry.schema.properties.setdefault(DELETED_AT, Schema.from_dict(DELETED_AT_SCHEMA))
        try:
            super().setup_mapper()
        except MappingError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "not valid"
            raise InputError(f"config: stream_maps: {first_line}") from exc

    def discover_streams(self) -> list[StripeStream]:
        """One stream per table of the registry; a child's rows are written by its
        parent's stream (a grandchild's, by its grandparent's)."""
        streams = {spec.name: self.stream_for(spec) for spec in TABLES}
        for spec in TABLES:
            if spec.parent is not None:
                streams[spec.parent.table].adopt(streams[spec.name])
        return list(streams.values())

    def stream_for(self, spec: TableSpec) -> StripeStream:
        """The stream reading ``spec``; tables with change capture get a tombstone column."""
        schema = with_account_column(load_schema(spec.name))
        if tracks_deletes(spec):
            schema = with_deleted_at(schema)
        return StripeStream(
            self, spec, schema, run=lambda: self.run, first_account=self._first_account_run
        )

    @cached_property
    def _first_account(self) -> Account:
        return run_accounts(self.config, self.client)[0]

    def _first_account_run(self) -> tuple[Account, Run]:
        """The run's first account and its run, for reading without a sync (``get_records``)."""
        account = self._first_account
        return account, self._account_run(account, labelled=False)


def tables_of(streams: list[StripeStream], account: Account, run: Run) -> list[StripeStream]:
    """``streams`` read from ``account``: the platform's own tables only from it."""
    return [
        stream.for_account(account, run)
        for stream in streams
        if not (account.connected and platform_only(stream.spec))
    ]


def read_state(file: IO[str]) -> dict[str, Any]:
    """The ``--state`` file's state; an error names the file."""
    source = f"state file {file.name}"
    return checked_state(parse_json_object(_read(file, source), source), source)


def read_catalog(file: IO[str]) -> Catalog:
    """The ``--catalog`` file's catalog; an error names the file."""
    source = f"catalog file {file.name}"
    catalog = parse_json_object(_read(file, source), source)
    try:
        return Catalog.from_dict(catalog)  # type: ignore[arg-type]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise InputError(f"{source}: not a Singer catalog ({detail})") from exc


def _read(file: IO[str], source: str) -> str:
    try:
        return file.read()
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text") from exc


def main() -> None:
    """``tap-stripe`` command: the SDK's CLI, with bad input and Stripe failures as one line.

    Covers Stripe's errors, unreadable or malformed config/state/catalog files and bad
    settings; anything else is a bug and keeps its traceback.
    """
    try:
        TapStripe.cli()
    except InputError as exc:
        for line in exc.lines:
            print(f"tap-stripe: error: {line}", file=sys.stderr)
        sys.exit(1)
    except StripeError as exc:
        print(f"tap-stripe: error: {scrub(str(exc))}", file=sys.stderr)
        sys.exit(1)
    except (OSError, ValueError) as exc:
        print(f"tap-stripe: error: {type(exc).__name__}: {scrub(str(exc))}", file=sys.stderr)
        sys.exit(1)
