"""The Meltano SDK's standard tap tests, against a mocked Stripe holding every table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests_mock
from singer_sdk.testing import get_tap_test_class
from tap_stripe.tables import TABLES_BY_NAME, embedded_children
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
    for child in embedded_children(stream):
        field = child.parent.embedded_field
        kind = child.object.split("|")[0]
        rows = [{**schema_record(child.name, i * 10 + n), "object": kind} for n in range(2)]
        template = TABLES_BY_NAME[stream].nested_lists[field]
        record[field] = stripe_list(rows, template.format(id=record["id"]))
    return record


@pytest.fixture(scope="module", autouse=True)
def mocked_stripe() -> Iterator[FakeStripe]:
    with requests_mock.Mocker() as mocker:
        stripe = FakeStripe(mocker)
        for stream in LIST_PATHS:
            stripe.add(stream, [schema_record(stream, i) for i in range(120)])
        stripe.account = schema_record("account", 0)
        balance = schema_record("balance", 0)
        stripe.balance = {k: v for k, v in balance.items() if k not in ("id", "snapshot_at")}
        yield stripe


TestTapStripe = get_tap_test_class(
    tap_class=TapStripe,
    config=base_config(max_concurrency=4),
    parse_env_config=False,
)
