"""Other Stripe connectors from PyPI, each in its own virtualenv, read the same simulator.

Neither peer has a base-URL setting: both call ``https://api.stripe.com`` (singer-io's
``tap-stripe`` through the ``stripe`` library, whose ``api_base`` no setting reaches;
``airbyte-source-stripe`` from its manifest's ``url_base``). Both use ``requests``, which
takes ``HTTPS_PROXY`` from the environment, so each reaches the simulator through
``bench.proxy`` with a certificate of the run's own CA (``bench.tls``). Neither reads
``REQUESTS_CA_BUNDLE``: the ``stripe`` library verifies with its own bundle file
(``stripe.ca_bundle_path``) and the Airbyte CDK sends prepared requests
(``Session.send``), which verify with ``certifi``'s. So the run's CA is appended to that
file of the peer's virtualenv (ours to build) for the run, and the file put back after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.venvs import Venv

# The tables every connector reads, as (ours, singer-io's stream, Airbyte's stream). Left
# out: what one of them lacks (singer-io has no refunds, prices, setup intents, ...) and
# the children listed per parent (a customer's payment methods), which only ours reads.
SHARED_TABLES: tuple[tuple[str, str, str], ...] = (
    ("charge", "charges", "charges"),
    ("paymentintent", "payment_intents", "payment_intents"),
    ("balancetransaction", "balance_transactions", "balance_transactions"),
    ("customer", "customers", "customers"),
    ("invoice", "invoices", "invoices"),
    ("invoicelineitem", "invoice_line_items", "invoice_line_items"),
    ("subscription", "subscriptions", "subscriptions"),
    ("subscriptionitem", "subscription_items", "subscription_items"),
    ("payout", "payouts", "payouts"),
    ("invoiceitem", "invoice_items", "invoice_items"),
    ("coupon", "coupons", "coupons"),
    ("product", "products", "products"),
    ("plan", "plans", "plans"),
    ("dispute", "disputes", "disputes"),
    ("transfer", "transfers", "transfers"),
    ("event", "events", "events"),
)
ORIGINAL = ".bench-original"


@dataclass(frozen=True)
class Peer(ABC):
    """One connector: its virtualenv, command, the file it verifies TLS with, and how it
    is configured and told which streams to read (``column``: its names in
    :data:`SHARED_TABLES`)."""

    label: str
    venv: Venv
    command: str
    trust_imports: str
    trust_expression: str
    column: int

    @property
    def streams(self) -> list[str]:
        return [names[self.column] for names in SHARED_TABLES]

    def trust_store(self) -> Path:
        return Path(self.venv.python_value(self.trust_expression, self.trust_imports))

    def config(self, api_key: str, account_id: str, start_date: str) -> dict[str, Any]:
        return {"client_secret": api_key, "account_id": account_id, "start_date": start_date}

    @abstractmethod
    def discover(self, config: Path, env: Mapping[str, str], stderr: Path) -> dict[str, Any]:
        """The connector's catalog of every stream it has."""

    @abstractmethod
    def selected(self, catalog: dict[str, Any]) -> dict[str, Any]:
        """The catalog to run with: :attr:`streams` selected, no other."""

    @abstractmethod
    def argv(self, config: Path, catalog: Path) -> list[str]:
        """The command of a first sync."""


class SingerPeer(Peer):
    """singer-io's ``tap-stripe``: Singer messages; a stream is selected in its catalog's
    stream-level metadata."""

    def discover(self, config: Path, env: Mapping[str, str], stderr: Path) -> dict[str, Any]:
        out = _run([str(self.venv.bin(self.command)), "--config", str(config), "--discover"], env)
        stderr.write_text(out.stderr)
        return json.loads(out.stdout)

    def selected(self, catalog: dict[str, Any]) -> dict[str, Any]:
        return singer_selected(catalog, self.streams)

    def argv(self, config: Path, catalog: Path) -> list[str]:
        command = str(self.venv.bin(self.command))
        return [command, "--config", str(config), "--catalog", str(catalog)]


class AirbytePeer(Peer):
    """An Airbyte source: Airbyte messages; a configured catalog names the streams read,
    incrementally where the stream can be (what a user picks for a recurring sync)."""

    def discover(self, config: Path, env: Mapping[str, str], stderr: Path) -> dict[str, Any]:
        out = _run([str(self.venv.bin(self.command)), "discover", "--config", str(config)], env)
        stderr.write_text(out.stderr)
        for line in out.stdout.splitlines():
            message = json.loads(line)
            if message.get("type") == "CATALOG":
                return message["catalog"]
        raise ValueError(f"{self.label} discover printed no catalog: {out.stdout[-500:]}")

    def selected(self, catalog: dict[str, Any]) -> dict[str, Any]:
        by_name = {stream["name"]: stream for stream in catalog["streams"]}
        missing = set(self.streams) - set(by_name)
        if missing:
            raise ValueError(f"{self.label} has no stream {', '.join(sorted(missing))}")
        configured = []
        for name in self.streams:
            stream = by_name[name]
            incremental = "incremental" in stream.get("supported_sync_modes", [])
            configured.append(
                {
                    "stream": stream,
                    "sync_mode": "incremental" if incremental else "full_refresh",
                    "destination_sync_mode": "append",
                    "cursor_field": stream.get("default_cursor_field", []),
                }
            )
        return {"streams": configured}

    def argv(self, config: Path, catalog: Path) -> list[str]:
        return [
            str(self.venv.bin(self.command)),
            "read",
            "--config",
            str(config),
            "--catalog",
            str(catalog),
        ]


PEERS: tuple[Peer, ...] = (
    SingerPeer(
        "tap-stripe 3.3.0 (singer-io)",
        Venv("singer-tap-stripe", ("tap-stripe==3.3.0",)),
        "tap-stripe",
        "stripe",
        "stripe.ca_bundle_path",
        1,
    ),
    AirbytePeer(
        "airbyte-source-stripe 5.14.1",
        Venv("airbyte-source-stripe", ("airbyte-source-stripe==5.14.1",)),
        "source-stripe",
        "certifi",
        "certifi.where()",
        2,
    ),
)


def singer_selected(catalog: dict[str, Any], streams: list[str]) -> dict[str, Any]:
    """A Singer catalog with ``streams`` selected (stream-level metadata), no other."""
    missing = set(streams) - {stream["tap_stream_id"] for stream in catalog["streams"]}
    if missing:
        raise ValueError(f"the catalog has no stream {', '.join(sorted(missing))}")
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in streams
    return catalog


@contextmanager
def trusting(store: Path, ca_certificate: Path) -> Iterator[None]:
    """``store`` (a PEM bundle) trusts ``ca_certificate`` too while the block runs.

    The bundle as installed is kept beside it (``.bench-original``) the first time, so
    a run stopped half-way leaves no CA behind for the next one to add to.
    """
    original = store.with_name(store.name + ORIGINAL)
    if not original.exists():
        shutil.copyfile(store, original)
    store.write_bytes(original.read_bytes() + b"\n" + ca_certificate.read_bytes())
    try:
        yield
    finally:
        shutil.copyfile(original, store)


def proxy_env(proxy_url: str) -> dict[str, str]:
    """The environment of a peer: this one, with every HTTPS request sent to the proxy."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "no_proxy")}
    env.update(
        HTTPS_PROXY=proxy_url,
        https_proxy=proxy_url,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def count_records(output: Path) -> Counter[str]:
    """RECORD messages per stream in a Singer or Airbyte message file."""
    counts: Counter[str] = Counter()
    with output.open("rb") as lines:
        for line in lines:
            if b"RECORD" not in line[:40]:
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the last line of a run stopped mid-write
            if message.get("type") != "RECORD":
                continue
            stream = message.get("stream") or message.get("record", {}).get("stream")
            counts[stream] += 1
    return counts


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, env=dict(env), capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode != 0:
        tail = " / ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {tail}")
    return done
