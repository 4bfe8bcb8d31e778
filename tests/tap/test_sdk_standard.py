"""The Meltano SDK's standard tap tests, against a mocked Stripe holding every table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests_mock
from singer_sdk.testing import get_tap_test_class
from tap_stripe.tables import TABLES, TABLES_BY_NAME, TableKind, embedded_children
from tap_stripe.tap import TapStripe, load_schema

from tests.tap.conftest import base_config
from tests.tap.fake_stripe import LIST_PATHS, FakeStripe, stripe_list

SAMPLES = {
    "string": "sample",
    "integer": 7,
    "number": 1.5,
    "boolean": True,
    "object": {},
    "array": [],
}


def sample_value(schema: dict) -> object:
    """A non-null value of the first non-null type ``schema`` allows."""
    types = schema.get("type", "string")
    types = [types] if isinstance(types, str) else types
    kind = next((t for t in types if t != "null"), "string")
    return SAMPLES[kind]


def schema_record(stream: str, i: int) -> dict:
    """A record carrying every property of the stream's schema, each well typed."""
    properties = load_schema(stream)["properties"]
    record = {name: sample_value(schema) for name, schema in properties.items()}
    record["id"] = f"{stream}_{i:05d}"
    created = TABLES_BY_NAME[stream].created_field
    if created in properties:  # payment links and tax codes have no creation time
        record[created] = 1_700_000_000 + i * 3600
    lists: dict[str, list[dict]] = {}
    for child in embedded_children(stream):
        kind = child.object.split("|")[0]
        rows = [{**schema_record(child.name, i * 10 + n), "object": kind} for n in range(2)]
        lists.setdefault(child.parent.embedded_field, []).extend(rows)
    for field, rows in lists.items():
        template = TABLES_BY_NAME[stream].nested_lists[field]
        record[field] = stripe_list(rows, template.format(id=record["id"]))
    if stream == "subscriptionitem":  # metered: its usage summaries are listed
        record["price"] = {"recurring": {"usage_type": "metered"}}
    return record


def add_listed_children(stripe: FakeStripe, parents: list[dict], parent: str) -> None:
    """Two rows of every child listed per parent, for each of ``parents``; and for the
    rows of ``parents``' embedded lists that are parents themselves."""
    for child in TABLES:
        if child.kind is not TableKind.PER_PARENT_CHILD or child.parent.table != parent:
            continue
        for row in parents:
            stripe.listed[child.name, row["id"]] = [schema_record(child.name, n) for n in range(2)]
    for child in embedded_children(parent):
        rows = [row for p in parents for row in p[child.parent.embedded_field]["data"]]
        add_listed_children(stripe, [r for r in rows if r["object"] == child.object], child.name)


@pytest.fixture(scope="module", autouse=True)
def mocked_stripe() -> Iterator[FakeStripe]:
    with requests_mock.Mocker() as mocker:
        stripe = FakeStripe(mocker)
        for stream in LIST_PATHS:
            records = stripe.add(stream, [schema_record(stream, i) for i in range(120)])
            add_listed_children(stripe, records, stream)
        stripe.account = schema_record("account", 0)
        balance = schema_record("balance", 0)
        stripe.balance = {k: v for k, v in balance.items() if k not in ("id", "snapshot_at")}
        yield stripe


TestTapStripe = get_tap_test_class(
    tap_class=TapStripe,
    config=base_config(max_concurrency=4),
    parse_env_config=False,
)
