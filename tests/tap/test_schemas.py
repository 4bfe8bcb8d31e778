"""The committed stream schemas and the generator that writes them.

The committed files are checked against the schema contract; the generator's conversion rules
are checked on small hand-written OpenAPI documents (nothing here reads ../shared).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import tap_stripe
from jsonschema import Draft7Validator
from tap_stripe.tables import TABLES, ReadMode, TableSpec

SCHEMA_DIR = Path(tap_stripe.__file__).parent / "schemas"
GENERATOR = Path(__file__).parents[2] / "tap-stripe" / "scripts" / "generate_schemas.py"
ALLOWED_KEYWORDS = {"type", "properties", "items", "additionalProperties"}
JSON_TYPES = ["string", "integer", "number", "boolean", "object", "array", "null"]


def load(stream: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{stream}.json").read_text())


def subschemas(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with a dotted path (``[]`` marks array items)."""
    yield path or "<root>", schema
    for name, child in schema.get("properties", {}).items():
        yield from subschemas(child, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from subschemas(schema["items"], f"{path}[]")


def types(node: dict[str, Any]) -> list[str]:
    declared = node["type"]
    return [declared] if isinstance(declared, str) else declared


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_schemas", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_table_has_a_schema_and_no_schema_lacks_a_table():
    committed = {path.stem for path in SCHEMA_DIR.glob("*.json")}
    assert committed == {table.name for table in TABLES}


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_schema_is_draft7_open_and_plain(table):
    text = (SCHEMA_DIR / f"{table.name}.json").read_text()
    schema = json.loads(text)
    Draft7Validator.check_schema(schema)
    assert text == json.dumps(schema, indent=2, sort_keys=True) + "\n", "not in generated layout"
    assert schema["type"] == "object"
    assert schema["properties"]
    for path, node in subschemas(schema):
        assert set(node) <= ALLOWED_KEYWORDS, f"{path}: {set(node) - ALLOWED_KEYWORDS}"
        assert node.get("additionalProperties", True) is True, path
        if "properties" in node:
            assert node["additionalProperties"] is True, f"{path}: typed object must stay open"
        node_types = types(node)
        assert node_types, path
        assert node_types == [t for t in JSON_TYPES if t in node_types], f"{path}: {node_types}"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_key_and_replication_key_types(table):
    properties = load(table.name)["properties"]
    if table.snapshot_field is None:
        assert properties["id"] == {"type": "string"}
    else:
        assert properties[table.snapshot_field] == {"type": "integer"}
    if not table.single_object and "created" in properties:
        assert properties["created"] == {"type": "integer"}
    if table.replication_key is not None:
        assert properties[table.replication_key] == {"type": "integer"}
    if table.parent is None and table.read in (ReadMode.CREATED, ReadMode.NEWEST_FIRST):
        assert table.replication_key == table.created_field


@pytest.mark.parametrize(
    ("stream", "field", "expected"),
    [
        ("charge", "customer", ["string", "object", "null"]),
        ("charge", "balance_transaction", ["string", "object", "null"]),
        ("charge", "transfer", ["string", "object"]),
        ("invoice", "customer", ["string", "object", "null"]),
        ("subscription", "customer", ["string", "object"]),
        ("balancetransaction", "source", ["string", "object", "null"]),
        ("customer", "default_source", ["string", "object", "null"]),
    ],
)
def test_expandable_fields_are_string_or_object(stream, field, expected):
    assert load(stream)["properties"][field] == {"type": expected}


@pytest.mark.parametrize(
    ("stream", "field", "expected"),
    [
        ("charge", "amount", {"type": "integer"}),
        ("charge", "application_fee_amount", {"type": ["integer", "null"]}),
        ("charge", "captured", {"type": "boolean"}),
        ("charge", "description", {"type": ["string", "null"]}),
        ("charge", "metadata", {"type": "object"}),
        ("subscription", "canceled_at", {"type": ["integer", "null"]}),
        ("invoice", "tax", {"type": ["integer", "null"]}),
        ("price", "unit_amount_decimal", {"type": ["string", "null"]}),
    ],
)
def test_top_level_types(stream, field, expected):
    assert load(stream)["properties"][field] == expected


def test_event_payload_is_an_untyped_object():
    data = load("event")["properties"]["data"]["properties"]
    assert data["object"] == {"type": "object"}


@pytest.mark.parametrize(("stream", "field"), [("invoice", "lines"), ("subscription", "items")])
def test_nested_stripe_lists_are_list_objects(stream, field):
    nested = load(stream)["properties"][field]
    assert "object" in types(nested)
    properties = nested["properties"]
    assert types(properties["data"]) == ["array"]
    assert properties["data"]["items"]["properties"]["id"]["type"] == "string"
    assert properties["has_more"] == {"type": "boolean"}
    assert {"object", "url"} <= set(properties)


def test_a_record_with_fields_the_schema_does_not_know_validates():
    record = {
        "id": "ch_1",
        "object": "charge",
        "created": 1700000000,
        "amount": 100,
        "customer": {"id": "cus_1", "object": "customer", "brand_new": 1},
        "billing_details": {"name": "A", "added_later": {"x": [1]}},
        "field_from_the_future": True,
    }
    assert list(Draft7Validator(load("charge")).iter_errors(record)) == []


# --- the generator, on hand-written OpenAPI documents -------------------------------------------

REF = "#/components/schemas/"


def mini_spec() -> dict[str, Any]:
    """A small OpenAPI document with each construct the converter handles."""
    return {
        "paths": {
            "/v1/widgets": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "properties": {
                                            "data": {
                                                "items": {"$ref": REF + "widget"},
                                                "type": "array",
                                            },
                                            "object": {"enum": ["list"], "type": "string"},
                                        },
                                        "type": "object",
                                    }
                                }
                            }
                        }
                    }
                }
            },
            "/v1/shop": {
                "get": {
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": REF + "shop"}}}}
                    }
                }
            },
        },
        "components": {
            "schemas": {
                "widget": {
                    "type": "object",
                    "description": "dropped",
                    "required": ["id"],
                    "x-resourceId": "widget",
                    "properties": {
                        "id": {"maxLength": 5000, "type": "string"},
                        "created": {"format": "unix-time", "type": "integer"},
                        "ended_at": {"format": "unix-time", "nullable": True, "type": "integer"},
                        "status": {"enum": ["a", "b"], "type": "string"},
                        "ratio": {"format": "decimal", "type": "string"},
                        "owner": {
                            "anyOf": [
                                {"maxLength": 5000, "type": "string"},
                                {"$ref": REF + "shop"},
                                {"$ref": REF + "deleted_shop"},
                            ],
                            "nullable": True,
                            "x-expansionResources": {"oneOf": [{"$ref": REF + "shop"}]},
                        },
                        "parent": {"anyOf": [{"type": "string"}, {"$ref": REF + "widget"}]},
                        "spec": {"anyOf": [{"$ref": REF + "dims"}], "nullable": True},
                        "tags": {"items": {"type": "string"}, "type": "array"},
                        "metadata": {"additionalProperties": {"type": "string"}, "type": "object"},
                        "payload": {"type": "object"},
                        "source": {"anyOf": [{"$ref": REF + "card"}, {"$ref": REF + "bank"}]},
                        "fee": {"anyOf": [{"type": "integer"}, {"enum": [""], "type": "string"}]},
                        "self": {"$ref": REF + "widget"},
                    },
                },
                "shop": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                },
                "deleted_shop": {"type": "object", "properties": {"id": {"type": "string"}}},
                "dims": {
                    "type": "object",
                    "properties": {
                        "size": {"type": "number"},
                        "box": {
                            "type": "object",
                            "properties": {"inner": {"type": "object", "properties": {}}},
                        },
                    },
                },
                "card": {
                    "type": "object",
                    "properties": {"brand": {"type": "string"}, "last4": {"type": "string"}},
                },
                "bank": {
                    "type": "object",
                    "properties": {
                        "last4": {"nullable": True, "type": "string"},
                        "routing": {"type": "string"},
                    },
                },
            }
        },
    }


def convert_widget(generator: ModuleType, max_depth: int = 3) -> dict[str, Any]:
    converter = generator.Converter(mini_spec()["components"]["schemas"], max_depth=max_depth)
    source = generator.stream_source(mini_spec(), "widget", "/v1/widgets")
    return generator.stream_schema(converter, source)["properties"]


def test_converter_rules(generator):
    widget = convert_widget(generator)
    assert widget["id"] == {"type": "string"}
    assert widget["created"] == {"type": "integer"}
    assert widget["ended_at"] == {"type": ["integer", "null"]}
    assert widget["status"] == {"type": "string"}
    assert widget["ratio"] == {"type": "string"}
    assert widget["owner"] == {"type": ["string", "object", "null"]}
    assert widget["parent"] == {"type": ["string", "object"]}
    assert widget["tags"] == {"type": "array", "items": {"type": "string"}}
    assert widget["metadata"] == {"type": "object"}
    assert widget["payload"] == {"type": "object"}
    assert widget["fee"] == {"type": ["string", "integer"]}
    assert widget["spec"]["type"] == ["object", "null"]
    assert widget["spec"]["properties"]["size"] == {"type": "number"}


def test_converter_merges_object_unions(generator):
    source = convert_widget(generator)["source"]
    assert source["type"] == "object"
    assert source["properties"] == {
        "brand": {"type": "string"},
        "last4": {"type": ["string", "null"]},
        "routing": {"type": "string"},
    }


def test_converter_cuts_recursion_and_depth(generator):
    widget = convert_widget(generator)
    assert widget["self"] == {"type": "object"}
    box = widget["spec"]["properties"]["box"]
    assert box["properties"]["inner"] == {"type": "object"}
    shallow = convert_widget(generator, max_depth=2)
    assert shallow["spec"]["properties"]["box"] == {"type": "object"}


def test_single_object_path_is_found(generator):
    source = generator.stream_source(mini_spec(), "shop", "/v1/shop")
    assert (source.component, source.is_list) == ("shop", False)


def test_unknown_path_is_one_clear_error(generator):
    with pytest.raises(generator.SpecError, match=r"gadget: no GET /v1/gadgets"):
        generator.stream_source(mini_spec(), "gadget", "/v1/gadgets")


@pytest.fixture
def mini_run(generator, tmp_path, monkeypatch):
    """Run the generator's command line on the mini spec with a widget table."""
    spec = tmp_path / "spec3.json"
    spec.write_text(json.dumps(mini_spec()))
    (tmp_path / "fixtures3.json").write_text(
        json.dumps({"resources": {"widget": {"id": "w_1", "created": 1, "owner": "s_1"}}})
    )
    table = TableSpec(name="widget", path="/v1/widgets")
    monkeypatch.setattr(generator, "TABLES", (table,))
    out = tmp_path / "schemas"

    def run(*extra: str) -> int:
        return generator.main(["--spec", str(spec), "--out", str(out), *extra])

    return run, out, tmp_path


def test_generator_writes_stable_output_and_check_detects_drift(mini_run):
    run, out, _ = mini_run
    assert run() == 0
    first = (out / "widget.json").read_bytes()
    assert run() == 0
    assert (out / "widget.json").read_bytes() == first
    assert run("--check") == 0
    (out / "widget.json").write_bytes(first + b" ")
    assert run("--check") == 1


def test_generator_fails_when_the_example_does_not_validate(mini_run, capsys):
    run, _, tmp_path = mini_run
    (tmp_path / "fixtures3.json").write_text(
        json.dumps({"resources": {"widget": {"id": 7, "created": 1}}})
    )
    assert run() == 1
    assert "widget: example does not validate at id: 7 is not of type 'string'" in (
        capsys.readouterr().err
    )
