"""Generate the tap's JSON Schemas from Stripe's OpenAPI description.

Run by ``make schemas``::

    python tap-stripe/scripts/generate_schemas.py --spec ../shared/stripe-openapi/spec3.json \
        --out tap-stripe/tap_stripe/schemas

Writes one ``<stream>.json`` per table in ``tap_stripe.tables.TABLES`` (sorted keys, 2-space
indent, trailing newline, so regenerating gives no diff), checks each against the Draft 7
metaschema and validates Stripe's example object (``fixtures3.json`` next to the spec) against
it. With ``--check`` nothing is written and the exit status says whether the committed files are
up to date.

Conversion rules (the contract the tap and the target build on):

- ``$ref`` is resolved; descriptions, enums, formats, ``required``, ``x-*`` and validation
  keywords such as ``maxLength`` are dropped (Stripe adds enum values and fields over time, and
  validation must not break on them).
- ``nullable: true`` adds ``"null"`` to the type list.
- ``format: unix-time`` stays a plain integer.
- An expandable field (``anyOf`` of an id string and object refs) becomes
  ``{"type": ["string", "object"]}`` (plus ``"null"`` when nullable) with no properties.
- Any other ``anyOf``/``oneOf``/``allOf`` is converted branch by branch and merged: the type lists
  are united, object properties merged, and an object whose branches disagree on shape is left
  free-form.
- Objects are typed (``properties``) for ``MAX_DEPTH`` levels counting the record and free-form
  beyond that, and also where a ``$ref`` would recurse into itself. Maps (``additionalProperties``
  schemas such as ``metadata``) are free-form objects.
- Every typed object says ``"additionalProperties": true``: records may carry fields the schema
  does not know, and the Singer SDK keeps undeclared properties only in objects that say so.
- ``id`` is ``{"type": "string"}`` on every stream and ``created`` is ``{"type": "integer"}`` on
  list streams.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from jsonschema import Draft7Validator, SchemaError
from tap_stripe.tables import TABLES

Schema = dict[str, Any]

MAX_DEPTH = 3
"""Object levels, counting the record itself, that keep their properties.

With 3, ``charge.payment_method_details.card`` is typed and ``...card.checks`` is free-form.
"""

TYPE_ORDER = ("string", "integer", "number", "boolean", "object", "array", "null")
"""Canonical order of the entries of a ``type`` list (stable output)."""

REF_PREFIX = "#/components/schemas/"


class SpecError(Exception):
    """The OpenAPI description does not have the shape this generator expects."""


class StreamSource(NamedTuple):
    """Where a stream's records come from in the OpenAPI description."""

    stream: str
    path: str
    component: str
    is_list: bool


def ordered_types(types: Iterable[str]) -> list[str]:
    """Return the distinct types in the canonical order."""
    present = set(types)
    unknown = present - set(TYPE_ORDER)
    if unknown:
        raise SpecError(f"unsupported JSON Schema type(s): {sorted(unknown)}")
    return [t for t in TYPE_ORDER if t in present]


def types_of(schema: Schema) -> list[str]:
    """Return a converted schema's type list (empty when the schema accepts anything)."""
    declared = schema.get("type")
    if declared is None:
        return []
    return [declared] if isinstance(declared, str) else list(declared)


def with_types(schema: Schema, types: Iterable[str]) -> Schema:
    """Return a copy of ``schema`` with its type set to ``types`` (a string when just one)."""
    ordered = ordered_types(types)
    result = {k: v for k, v in schema.items() if k != "type"}
    result["type"] = ordered[0] if len(ordered) == 1 else ordered
    return result


def merge(left: Schema, right: Schema) -> Schema:
    """Merge two converted schemas into one that accepts what either accepts."""
    if left == right:
        return left
    if not types_of(left) or not types_of(right):
        return {}
    merged: Schema = {}
    if "properties" in left and "properties" in right:
        properties = dict(left["properties"])
        for name, schema in right["properties"].items():
            properties[name] = merge(properties[name], schema) if name in properties else schema
        merged["properties"] = dict(sorted(properties.items()))
    if "items" in left and "items" in right:
        merged["items"] = merge(left["items"], right["items"])
    elif "items" in left or "items" in right:
        merged["items"] = left.get("items", right.get("items"))
    return with_types(merged, types_of(left) + types_of(right))


class Converter:
    """Converts OpenAPI 3.0 component schemas into plain JSON Schema (Draft 7)."""

    def __init__(self, components: Mapping[str, Schema], max_depth: int = MAX_DEPTH) -> None:
        self._components = components
        self._max_depth = max_depth

    def component(self, name: str) -> Schema:
        """Return a component schema by name."""
        try:
            return self._components[name]
        except KeyError:
            raise SpecError(f"component schema {name!r} is not in the spec") from None

    def _resolve(self, node: Schema, refs: tuple[str, ...]) -> tuple[Schema, tuple[str, ...]]:
        """Follow ``$ref`` chains, returning the target and the refs followed so far."""
        while "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith(REF_PREFIX):
                raise SpecError(f"unsupported $ref {ref!r}")
            name = ref.removeprefix(REF_PREFIX)
            if name in refs:
                return {"type": "object"}, refs
            node, refs = self.component(name), (*refs, name)
        return node, refs

    def convert_record(self, name: str) -> Schema:
        """Convert a top-level resource (the shape of one record)."""
        return self.convert({"$ref": REF_PREFIX + name}, depth=0, refs=())

    def convert(self, node: Schema, depth: int, refs: tuple[str, ...]) -> Schema:
        """Convert one schema node found ``depth`` object levels below the record."""
        nullable = bool(node.get("nullable"))
        node, refs = self._resolve(node, refs)
        nullable = nullable or bool(node.get("nullable"))
        schema = self._convert_resolved(node, depth, refs)
        if nullable and types_of(schema) and "null" not in types_of(schema):
            schema = with_types(schema, [*types_of(schema), "null"])
        return schema

    def _convert_resolved(self, node: Schema, depth: int, refs: tuple[str, ...]) -> Schema:
        branches = [*node.get("anyOf", ()), *node.get("oneOf", ()), *node.get("allOf", ())]
        if branches:
            return self._convert_union(branches, depth, refs)
        kind = node.get("type")
        if kind is None:
            return {}
        if kind == "object":
            return self._convert_object(node, depth, refs)
        if kind == "array":
            items = node.get("items")
            if items is None:
                return {"type": "array"}
            return {"type": "array", "items": self.convert(items, depth, refs)}
        return {"type": kind}

    def _convert_object(self, node: Schema, depth: int, refs: tuple[str, ...]) -> Schema:
        properties = node.get("properties")
        if not properties or depth >= self._max_depth:
            return {"type": "object"}
        return {
            "type": "object",
            "properties": {
                name: self.convert(child, depth + 1, refs)
                for name, child in sorted(properties.items())
            },
        }

    def _convert_union(self, branches: list[Schema], depth: int, refs: tuple[str, ...]) -> Schema:
        if self._is_expandable(branches, refs):
            return {"type": ["string", "object"]}
        converted = [self.convert(branch, depth, refs) for branch in branches]
        result = converted[0]
        for schema in converted[1:]:
            result = merge(result, schema)
        return result

    def _is_expandable(self, branches: list[Schema], refs: tuple[str, ...]) -> bool:
        """Whether the union is Stripe's "an id string, or the expanded object(s)"."""
        strings = [b for b in branches if "$ref" not in b and b.get("type") == "string"]
        objects = [b for b in branches if "$ref" in b]
        if len(strings) != 1 or len(objects) != len(branches) - 1 or not objects:
            return False
        return all(self._resolve(b, refs)[0].get("type") == "object" for b in objects)


def stream_source(spec: Schema, stream: str, path: str, objects: str = "") -> StreamSource:
    """Find the component schema a table's GET endpoint returns (directly or as a list).

    A list of several kinds of object (a customer's sources) gives the table's own:
    ``objects`` names them (``bank_account|card``), and the component is ``|``-joined.
    """
    try:
        response = spec["paths"][path]["get"]["responses"]["200"]
        body = response["content"]["application/json"]["schema"]
    except KeyError:
        raise SpecError(f"{stream}: no GET {path} with a JSON 200 response in the spec") from None
    if "$ref" in body:
        return StreamSource(stream, path, body["$ref"].removeprefix(REF_PREFIX), is_list=False)
    data = body.get("properties", {}).get("data", {})
    items = data.get("items", {})
    refs = (
        [items.get("$ref", "")]
        if "$ref" in items
        else [b.get("$ref", "") for b in items.get("anyOf", [])]
    )
    names = [ref.removeprefix(REF_PREFIX) for ref in refs if ref.startswith(REF_PREFIX)]
    if len(names) > 1:
        names = [name for name in names if name in objects.split("|")]
    if data.get("type") != "array" or not names:
        raise SpecError(f"{stream}: GET {path} returns neither an object nor a list of objects")
    return StreamSource(stream, path, "|".join(names), is_list=True)


def stream_schema(
    converter: Converter,
    source: StreamSource,
    created: str = "created",
    *,
    bookmarked: bool = True,
    snapshot: str | None = None,
) -> Schema:
    """Build a stream's schema, with the key and replication-key types the contract fixes;
    ``created`` names the creation-time field (``date`` for invoice items), which a list
    read on it (``bookmarked``) must have. An object without an id (``balance``) is keyed
    by the ``snapshot`` time the tap stamps it with."""
    schema = functools.reduce(merge, map(converter.convert_record, source.component.split("|")))
    properties = schema.get("properties")
    if schema.get("type") != "object" or not properties:
        raise SpecError(f"{source.stream}: {source.component} is not an object with properties")
    if snapshot is not None:
        properties[snapshot] = {"type": "integer"}
    elif "id" not in properties:
        raise SpecError(f"{source.stream}: {source.component} has no id")
    else:
        properties["id"] = {"type": "string"}
    if source.is_list and bookmarked and created not in properties:
        raise SpecError(f"{source.stream}: {source.component} has no {created}")
    if source.is_list and created in properties:
        properties[created] = {"type": "integer"}
    return open_objects(schema)


def open_objects(schema: Schema) -> Schema:
    """Mark every typed object, at every level, as accepting undeclared properties."""
    if "properties" in schema:
        schema["additionalProperties"] = True
        for child in schema["properties"].values():
            open_objects(child)
    if "items" in schema:
        open_objects(schema["items"])
    return schema


def render(schema: Schema) -> bytes:
    """Serialise a schema in the committed, diff-stable layout."""
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def count_properties(schema: Schema) -> int:
    """Count property declarations at every level of a schema."""
    total = 0
    for child in schema.get("properties", {}).values():
        total += 1 + count_properties(child)
    if "items" in schema:
        total += count_properties(schema["items"])
    return total


def validation_errors(schema: Schema, instance: Any) -> list[str]:
    """Return one line per place where ``instance`` does not match ``schema``."""
    validator = Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def load_json(path: Path) -> Any:
    """Read a JSON file, failing with one clear line."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True, help="Stripe's spec3.json")
    parser.add_argument("--out", type=Path, required=True, help="directory for <stream>.json")
    parser.add_argument(
        "--fixtures",
        type=Path,
        help="example objects to validate (default: fixtures3.json next to the spec)",
    )
    parser.add_argument(
        "--latest-fixtures",
        type=Path,
        help="example objects at today's API version (default: fixtures3.latest.json next to "
        "the spec); their fields unknown to the schemas are reported",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; fail if a committed file differs"
    )
    return parser.parse_args(argv)


def optional_json(path: Path) -> Any:
    """Read a JSON file that may be absent (fixtures are a check, not an input)."""
    return load_json(path) if path.is_file() else None


def run(args: argparse.Namespace) -> int:
    """Generate, check and report; return the exit status."""
    started = time.perf_counter()
    spec = load_json(args.spec)
    fixtures = optional_json(args.fixtures or args.spec.with_name("fixtures3.json"))
    latest = optional_json(args.latest_fixtures or args.spec.with_name("fixtures3.latest.json"))
    converter = Converter(spec.get("components", {}).get("schemas", {}))
    failures: list[str] = []
    for table in TABLES:
        source = stream_source(spec, table.name, table.path, table.object)
        schema = stream_schema(
            converter,
            source,
            table.created_field,
            bookmarked=table.replication_key is not None,
            snapshot=table.snapshot_field,
        )
        for field in table.child_expand:
            # Expanded for the children only: never in this table's rows.
            schema["properties"].pop(field, None)
        if table.parent is not None:
            # The tap sets the parent's id on every row it lists; a row from the child's
            # own event may have none (a detached payment method) unless it is a key.
            column = table.parent.column
            keyed = column in table.key_properties
            schema["properties"][column] = {"type": "string" if keyed else ["string", "null"]}
        try:
            Draft7Validator.check_schema(schema)
        except SchemaError as exc:
            raise SpecError(f"{table.name}: not a valid Draft 7 schema: {exc.message}") from None
        target = args.out / f"{table.name}.json"
        text = render(schema)
        current = target.read_bytes() if target.is_file() else None
        status = "unchanged"
        if current != text and args.check:
            status = "OUT OF DATE"
            failures.append(f"{target} is out of date (run `make schemas`)")
        elif current != text:
            args.out.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text)
            status = "written"
        print(
            f"{target.name}: {source.component} from GET {source.path}, "
            f"{len(schema['properties'])} top-level / {count_properties(schema)} properties "
            f"in all, {status}",
            file=sys.stderr,
        )
        for component in source.component.split("|"):
            failures += check_fixture(table.name, component, schema, fixtures)
            report_latest(table.name, component, schema, latest)
    elapsed = time.perf_counter() - started
    print(f"{len(TABLES)} schemas in {elapsed:.2f}s", file=sys.stderr)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def example(fixtures: Any, component: str) -> Any:
    """Return the example object of a component, if the fixtures have one."""
    if not isinstance(fixtures, dict):
        return None
    return fixtures.get("resources", {}).get(component)


def check_fixture(stream: str, component: str, schema: Schema, fixtures: Any) -> list[str]:
    """Validate Stripe's example object for the stream against its schema."""
    if fixtures is None:
        return []
    instance = example(fixtures, component)
    if instance is None:
        return [f"{stream}: no example {component!r} in the fixtures"]
    return [
        f"{stream}: example does not validate at {e}" for e in validation_errors(schema, instance)
    ]


def report_latest(stream: str, component: str, schema: Schema, latest: Any) -> None:
    """Report what today's API returns that the 2023-08-16 schema does not describe."""
    instance = example(latest, component)
    if not isinstance(instance, dict):
        return
    unknown = sorted(set(instance) - set(schema["properties"]))
    mismatches = validation_errors(schema, instance)
    print(
        f"  latest API example: {len(unknown)} unknown top-level field(s)"
        f"{': ' + ', '.join(unknown) if unknown else ''}",
        file=sys.stderr,
    )
    for mismatch in mismatches:
        print(f"  latest API example differs at {mismatch}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    try:
        return run(args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
