"""Discovery, stream and field selection, and unknown properties re-announcing the schema."""

from __future__ import annotations

from tap_stripe.tables import TABLES
from tap_stripe.tap import TapStripe

from tests.tap.conftest import base_config, run_tap
from tests.tap.fake_stripe import FakeStripe, make_object

SEED = {
    "charge",
    "customer",
    "subscription",
    "invoice",
    "event",
    "coupon",
    "product",
    "price",
    "balancetransaction",
    "account",
}


def discover() -> dict:
    return TapStripe(config=base_config(), parse_env_config=False).catalog_dict


def test_discovery_lists_every_registry_table_with_its_replication() -> None:
    catalog = discover()

    streams = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert set(streams) == {spec.name for spec in TABLES}
    assert set(streams) >= SEED
    for spec in TABLES:
        entry = streams[spec.name]
        # Every table is keyed by the account it was read from first.
        assert list(entry["key_properties"]) == ["_stripe_account", *spec.key_properties]
        schema = entry["schema"]
        assert schema["type"] == "object"
        assert schema["properties"]["_stripe_account"]["type"] == "string"
        for key in spec.key_properties:
            assert schema["properties"][key]["type"] in ("string", "integer")
        stream_metadata = next(m for m in entry["metadata"] if m["breadcrumb"] == [])
        if spec.replication_key is None:
            assert entry["replication_method"] == "FULL_TABLE"
            assert "replication_key" not in entry or entry["replication_key"] is None
        else:
            assert entry["replication_method"] == "INCREMENTAL"
            assert entry["replication_key"] == spec.created_field
            assert stream_metadata["metadata"]["valid-replication-keys"] == [spec.created_field]


def select(catalog: dict, chosen: dict[str, set[str]]) -> dict:
    """Select the streams in ``chosen`` and only the listed top-level fields."""
    for entry in catalog["streams"]:
        fields = chosen.get(entry["tap_stream_id"])
        for item in entry["metadata"]:
            breadcrumb = item["breadcrumb"]
            if breadcrumb == []:
                item["metadata"]["selected"] = fields is not None
            elif len(breadcrumb) == 2 and fields is not None:
                item["metadata"]["selected"] = breadcrumb[1] in fields
    return catalog


def test_catalog_selects_streams_and_fields(stripe: FakeStripe) -> None:
    stripe.add(
        "charge",
        [make_object("charge", 1_700_000_000 + i, added_later="x") for i in range(3)],
    )
    stripe.add("customer", [make_object("customer", 1_700_000_000, email="a@example.com")])
    stripe.add("invoice", [make_object("invoice", 1_700_000_000)])
    catalog = select(
        discover(),
        {"charge": {"amount", "currency"}, "customer": {"email", "created"}},
    )

    result = run_tap(catalog=catalog)

    assert result.error is None
    assert set(result.records) == {"charge", "customer"}
    assert {path for path, _ in stripe.requests} == {"/v1/charges", "/v1/customers"}
    # The key, the replication key and the tombstone column are always included.
    for record in result.records["charge"]:
        assert set(record) == {"id", "created", "amount", "currency"}
    assert result.records["customer"][0].keys() == {"id", "created", "email"}
    charge_schema = result.schemas["charge"][0]["schema"]["properties"]
    assert set(charge_schema) == {
        "_stripe_account",
        "id",
        "created",
        "amount",
        "currency",
        "_sdc_deleted_at",
    }
    # Nothing is re-announced: deselected fields are not "unknown", and a property the
    # schema does not know was not selected either.
    assert len(result.schemas["charge"]) == 1


def test_unknown_top_level_property_reannounces_the_schema_first(stripe: FakeStripe) -> None:
    known = make_object("charge", 1_700_000_000)
    novel = make_object(
        "charge", 1_700_000_100, shiny_new_field="x", another_one={"deep": {"er": 1}}
    )
    stripe.add("charge", [known, novel])

    result = run_tap(streams=("charge",))

    kinds = [(m["type"], m.get("record", {}).get("id")) for m in result.messages]
    kinds = [kind for kind in kinds if kind[0] != "STATE"]
    # Newest first: the novel record comes first, right after its new SCHEMA; a first
    # (full) read of a table whose objects change ends by activating its version.
    assert kinds == [
        ("SCHEMA", None),
        ("SCHEMA", None),
        ("RECORD", novel["id"]),
        ("RECORD", known["id"]),
        ("ACTIVATE_VERSION", None),
    ]
    first, second = (m["schema"]["properties"] for m in result.schemas["charge"])
    assert "shiny_new_field" not in first
    assert second["shiny_new_field"] == {"type": ["string", "null"]}
    assert second["another_one"] == {"type": ["object", "null"]}
    assert set(second) - set(first) == {"shiny_new_field", "another_one"}
    assert result.records["charge"][0] == novel


def test_unknown_property_is_announced_once(stripe: FakeStripe) -> None:
    stripe.add("charge", [make_object("charge", 1_700_000_000 + i, extra=i) for i in range(250)])

    result = run_tap(streams=("charge",))

    assert len(result.schemas["charge"]) == 2
    assert result.schemas["charge"][1]["schema"]["properties"]["extra"] == {
        "type": ["integer", "null"]
    }
    assert len(result.records["charge"]) == 250


def test_stream_maps_still_apply(stripe: FakeStripe) -> None:
    stripe.add("charge", [make_object("charge", 1_700_000_000)])
    config = base_config(stream_maps={"charge": {"amount_cents": "amount", "amount": None}})

    result = run_tap(config, streams=("charge",))

    [record] = result.records["charge"]
    assert record["amount_cents"] == 1000
    assert "amount" not in record
