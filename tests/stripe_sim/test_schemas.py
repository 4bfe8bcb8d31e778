"""Simulated objects validate against the tap's generated JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from stripe_sim.tables import STREAMS
from tests.stripe_sim.conftest import small_sim

SCHEMAS = Path(__file__).resolve().parents[2] / "tap-stripe" / "tap_stripe" / "schemas"


@pytest.fixture(scope="module")
def rich_sim():
    """Every optional path switched on: newer fields and older-version events."""
    with small_sim(newer_fields_rate=0.5, other_api_version_rate=0.5) as handle:
        handle.mutate(
            customer={"create": 2, "update": 2, "delete": 1},
            subscription={"create": 2, "update": 2, "delete": 1},
            invoice={"create": 2, "update": 4},
        )
        yield handle


@pytest.mark.parametrize("stream", STREAMS)
def test_objects_validate_against_the_tap_schema(rich_sim, stream):
    path = SCHEMAS / f"{stream}.json"
    if not path.exists():
        pytest.skip(f"{path} not generated yet")
    validator = jsonschema.Draft7Validator(json.loads(path.read_text()))
    objects = rich_sim.objects(stream)
    assert objects
    problems = [
        f"{obj['id']}: {'/'.join(map(str, e.absolute_path))}: {e.message[:120]}"
        for obj in objects
        for e in validator.iter_errors(obj)
    ]
    assert problems == []


def test_some_objects_carry_fields_newer_than_the_pinned_version(rich_sim):
    schema = json.loads((SCHEMAS / "invoice.json").read_text())
    known = set(schema["properties"])
    extra = {key for obj in rich_sim.objects("invoice") for key in obj} - known
    assert extra, "some invoices should carry fields added after 2023-08-16"


def test_charges_are_stripe_sized(rich_sim):
    sizes = [len(json.dumps(c)) for c in rich_sim.objects("charge")]
    assert 2_000 <= sum(sizes) / len(sizes) <= 4_000
