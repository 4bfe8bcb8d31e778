"""Derive the simulator's object shapes from Stripe's OpenAPI fixtures and spec.

Reads Stripe's example objects (``fixtures3.json`` for API 2023-08-16 and
``fixtures3.latest.json`` for fields added since) together with the spec's component
schemas, and writes ``stripe_sim/shapes.json``:

- ``resources``: for the object of every table in the reference table list
  (``tables.json``) and of every entry of their nested lists, the field names, value
  kinds, nesting, nullability, enum members and expandable references; a nested list the
  fixture leaves empty takes its entries' shape from the entry resource's own fixture,
  and ``includable`` holds the list fields Stripe leaves out unless expanded (a quote's
  ``line_items``), which the fixtures therefore lack;
- ``list_params``: for each of those tables' list endpoints (and the endpoints paging
  their nested lists), the query parameters the spec documents besides paging and
  ``expand``, so the simulator answers 400 to any other, as Stripe does;
- ``event_types``: the event types of the API version (the enum of a webhook endpoint's
  ``enabled_events``), so the simulator sends only events Stripe has;
- ``event_objects``: the ``object`` each of those event types carries in ``data.object``
  (the reference table list's map), so a test can check every table's event types
  against the version's.

No descriptions are copied and no fixture value is kept except short categorical words
(``usd``, ``visa``) a shape needs to stay realistic. A table added to the project's
registry is served from these shapes without code of its own (``stripe_sim/tables.py``).

Run once when the reference data changes; the output is committed and nothing reads the
reference data at run or test time::

    python stripe_sim/scripts/derive_shapes.py --openapi ../shared/stripe-openapi
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

# Parameters of every list endpoint that are not a filter.
PAGING_PARAMS = frozenset({"limit", "starting_after", "ending_before", "expand"})
API_VERSION = "2023-08-16"
ID_RE = re.compile(r"^([a-z]+(?:_[a-z]+)*)_([A-Za-z0-9]{8,})$")
WORD_RE = re.compile(r"^[a-z][a-z_]{0,23}$")
# An id in a list's url: Stripe's ids hold a digit, a path word such as
# ``external_accounts`` does not.
LIST_ID_RE = re.compile(r"[a-z]+_(?=[A-Za-z]*[0-9])[A-Za-z0-9]{8,}")
MONEY_HINTS = ("amount", "fee", "net", "total", "subtotal", "balance", "tax")
FILL_PROBABILITY = 0.5
OBJECT_FILL_PROBABILITY = 0.15
MAX_SMALL = 100
MAX_SPEC_DEPTH = 2

Shape = dict[str, Any]


class Spec:
    """Resolves ``$ref`` pointers of the OpenAPI component schemas."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = spec["components"]["schemas"]

    def deref(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        """Follow ``$ref`` until a concrete schema; keep the outer ``nullable`` flag."""
        schema = schema or {}
        nullable = bool(schema.get("nullable"))
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
            nullable = nullable or bool(schema.get("nullable"))
        return {**schema, "nullable": nullable} if nullable else schema

    def branch(self, schema: dict[str, Any], value: Any) -> dict[str, Any]:
        """Pick the ``anyOf`` branch that fits ``value`` (string id vs embedded object)."""
        schema = self.deref(schema)
        options = schema.get("anyOf")
        if not options:
            return schema
        nullable = bool(schema.get("nullable"))
        resolved = [self.deref(o) for o in options]
        if isinstance(value, str):
            chosen = next((o for o in resolved if o.get("type") == "string"), resolved[0])
        elif isinstance(value, dict):
            chosen = max(resolved, key=lambda o: len(set(o.get("properties", {})) & set(value)))
        else:
            chosen = next((o for o in resolved if o.get("type") != "string"), resolved[0])
        return {**chosen, "nullable": nullable or bool(chosen.get("nullable"))}


def expansion(schema: dict[str, Any]) -> list[str]:
    """Resource names an expandable field can embed (empty when not expandable)."""
    refs = schema.get("x-expansionResources", {}).get("oneOf", [])
    return [r["$ref"].rsplit("/", 1)[1] for r in refs]


def string_kind(name: str, value: str | None, schema: dict[str, Any]) -> Shape:
    """Classify a string field into a synthesis kind."""
    if schema.get("enum"):
        return {"g": "enum", "v": list(schema["enum"])}
    if name == "currency" or name.endswith("_currency"):
        return {"g": "const", "v": "usd"}
    if name == "country" or name.endswith("_country"):
        return {"g": "const", "v": "US"}
    if value is not None:
        match = ID_RE.match(value)
        if match and not value.startswith(("http", "client_secret")):
            return {"g": "id", "prefix": match.group(1), "len": len(match.group(2))}
    lowered = name.lower()
    if "email" in lowered or (value and "@" in value):
        return {"g": "email"}
    if "url" in lowered or (value and value.startswith("http")):
        return {"g": "url"}
    if "phone" in lowered:
        return {"g": "phone"}
    if lowered == "name" or lowered.endswith("_name"):
        return {"g": "name"}
    if value is None:
        return {"g": "text", "words": 2}
    if value.isdigit():
        return {"g": "digits", "len": len(value)}
    if WORD_RE.match(value):
        return {"g": "const", "v": value}
    if " " not in value and value.isalnum():
        return {"g": "token", "len": len(value), "upper": value.isupper()}
    return {"g": "text", "words": max(1, len(value.split()))}


def int_kind(name: str, value: int | None, schema: dict[str, Any]) -> Shape:
    """Classify an integer field into a synthesis kind."""
    if schema.get("format") == "unix-time" or name == "created" or "timestamp" in name:
        return {"g": "time"}
    if name == "exp_year":
        return {"g": "year"}
    if name == "exp_month":
        return {"g": "month"}
    if any(hint in name for hint in MONEY_HINTS):
        return {"g": "money"}
    return {"g": "small", "max": min(MAX_SMALL, max(3, 2 * (value or 0)))}


def scalar_shape(name: str, value: Any, schema: dict[str, Any]) -> Shape | None:
    """Shape of a scalar field, or None when the schema is not a scalar."""
    kind = schema.get("type")
    if isinstance(value, bool) or (value is None and kind == "boolean"):
        return {"t": "bool"}
    if isinstance(value, int) or (value is None and kind == "integer"):
        return {"t": "int", **int_kind(name, value, schema)}
    if isinstance(value, float) or (value is None and kind == "number"):
        return {"t": "num"}
    if isinstance(value, str) or (value is None and kind == "string"):
        return {"t": "str", **string_kind(name, value, schema)}
    return None


class Deriver:
    """Walks fixture values alongside their spec schemas to build shape trees."""

    def __init__(self, spec: Spec, fixtures: dict[str, Any]) -> None:
        self.spec = spec
        self.fixtures = fixtures

    def value_shape(self, name: str, value: Any, schema: dict[str, Any] | None) -> Shape:
        outer = self.spec.deref(schema)
        refs = expansion(outer)
        resolved = self.spec.branch(outer, value) if schema else {}
        nullable = bool(outer.get("nullable") or resolved.get("nullable"))
        if value is None:
            shape = self.null_shape(name, outer, resolved, refs)
        elif isinstance(value, dict):
            shape = self.object_shape(name, value, resolved)
        elif isinstance(value, list):
            items = self.spec.deref(resolved.get("items")) if resolved else {}
            shape = {"t": "arr", "i": self.value_shape(name, value[0], items) if value else None}
        else:
            shape = scalar_shape(name, value, resolved) or {"t": "null"}
        if refs:
            shape["x"] = refs
        if nullable:
            shape["n"] = True
        return shape

    def object_shape(self, name: str, value: dict[str, Any], schema: dict[str, Any]) -> Shape:
        props = schema.get("properties", {})
        if name == "metadata" or (
            not props and isinstance(schema.get("additionalProperties"), dict)
        ):
            return {"t": "map"}
        if value.get("object") == "list" and "data" in value:
            url = LIST_ID_RE.sub("{id}", str(value.get("url", "")))
            return self.list_shape(name, props.get("data", {}).get("items"), value["data"], url)
        return {
            "t": "obj",
            "f": {k: self.value_shape(k, v, props.get(k)) for k, v in value.items()},
        }

    def list_shape(
        self, name: str, items: dict[str, Any] | None, data: list[Any], url: str
    ) -> Shape:
        """A Stripe list object; its entries' shape comes from the fixture's first entry or,
        when the fixture's list is empty, from the entry resource's own fixture."""
        first = data[0] if data else self.fixtures.get(ref_name(items or {}) or "")
        entry = self.value_shape(name, first, self.spec.deref(items)) if first else None
        return {"t": "list", "i": entry, "url": url}

    def includable(
        self,
        schema: dict[str, Any],
        example: dict[str, Any],
        paths: dict[str, str],
        hidden: dict[str, str],
    ) -> dict[str, Shape]:
        """The list fields Stripe includes only when expanded: optional in the schema, left
        out of ``example`` (or named in ``hidden``, the reference table list's lists not
        returned by default, with their page path), entries of resources with a fixture,
        and paged by an endpoint under the resource's own path (``paths``: field ->
        template). A list of several resources (a customer's ``sources``) names them in
        ``o``; their shapes are the resources' own."""
        found: dict[str, Shape] = {}
        required = set(schema.get("required", ()))
        for key, sub in schema.get("properties", {}).items():
            items = sub.get("properties", {}).get("data", {}).get("items", {})
            listed = sub.get("properties", {}).get("object", {}).get("enum") == ["list"]
            url = paths.get(key) or (hidden.get(key) if key in example else None)
            if (key in example and key not in hidden) or key in required or not listed or not url:
                continue
            refs = [ref_name(option) for option in items.get("anyOf", ())]
            if refs and all(ref in self.fixtures for ref in refs):
                found[key] = {"t": "list", "i": None, "o": sorted(map(str, refs)), "url": url}
            elif ref_name(items) in self.fixtures:
                found[key] = self.list_shape(key, items, [], url)
        return found

    def null_shape(
        self, name: str, outer: dict[str, Any], resolved: dict[str, Any], refs: list[str]
    ) -> Shape:
        """A field the fixture leaves null: fill it sometimes when the spec says how."""
        if refs or len(outer.get("anyOf", ())) > 1:
            return {"t": "null"}
        filled = self.spec_shape(name, resolved, 0)
        if filled is None:
            return {"t": "null"}
        chance = OBJECT_FILL_PROBABILITY if filled["t"] == "obj" else FILL_PROBABILITY
        return {**filled, "p": chance}

    def spec_shape(self, name: str, schema: dict[str, Any], depth: int) -> Shape | None:
        """Shape of a field known only from the spec (bounded depth, scalars and objects)."""
        schema = self.spec.deref(schema)
        if schema.get("anyOf"):
            options = schema["anyOf"]
            if len(options) != 1 or expansion(schema):
                return None
            schema = self.spec.deref(options[0])
        scalar = scalar_shape(name, None, schema)
        if scalar is not None:
            return scalar
        props = schema.get("properties")
        if schema.get("type") != "object" or not props or depth >= MAX_SPEC_DEPTH:
            return None
        fields: dict[str, Shape] = {}
        for key, sub in props.items():
            sub_schema = self.spec.deref(sub)
            shape = self.spec_shape(key, sub_schema, depth + 1)
            if shape is None:
                fields[key] = {"t": "null", "n": True} if sub_schema.get("nullable") else {}
                if not fields[key]:
                    return None
                continue
            if sub_schema.get("nullable"):
                shape["n"] = True
            fields[key] = shape
        return {"t": "obj", "f": fields}


def ref_name(schema: dict[str, Any]) -> str | None:
    """The component a schema refers to (``item`` for ``#/components/schemas/item``)."""
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[1] if ref else None


def nested_paths(spec: dict[str, Any], list_path: str) -> dict[str, str]:
    """Field -> path template (``{id}`` for the object's id) of the lists the spec pages
    under one object of ``list_path``: ``line_items`` -> ``/v1/quotes/{id}/line_items``."""
    pattern = re.compile(re.escape(list_path) + r"/\{\w+\}/(\w+)$")
    found: dict[str, str] = {}
    for path, item in spec["paths"].items():
        match = pattern.match(path)
        if match and "get" in item:
            found[match.group(1)] = re.sub(r"\{\w+\}", "{id}", path)
    return found


def table_resources(tables: list[dict[str, Any]]) -> list[str]:
    """The objects of every table and of their nested lists' entries (``a|b``: both)."""
    names: set[str] = set()
    for table in tables:
        names.update(table["object"].split("|"))
        for nested in table.get("nested_lists", ()):
            names.update(nested["items"])
    return sorted(names)


def hidden_lists(tables: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Resource -> list field -> page path, for the nested lists the reference table list
    says Stripe leaves out unless expanded (an account's ``external_accounts``, which the
    fixture shows)."""
    found: dict[str, dict[str, str]] = {}
    for table in tables:
        for nested in table.get("nested_lists", ()):
            path = nested["page_path"]
            if nested.get("returned_by_default") is False and " " not in path:
                for name in table["object"].split("|"):
                    found.setdefault(name, {})[nested["field"]] = path
    return found


def list_params(spec: dict[str, Any], tables: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each list endpoint's documented query parameters, paging and ``expand`` left out."""
    paths = {table["list_path"] for table in tables}
    paths |= {n["page_path"] for table in tables for n in table.get("nested_lists", ())}
    found: dict[str, list[str]] = {}
    for path in sorted(paths):
        template = re.sub(r"\{\w+\}", "{}", path)
        operation = next(
            (
                item.get("get")
                for key, item in spec["paths"].items()
                if re.sub(r"\{\w+\}", "{}", key) == template
            ),
            None,
        )
        if operation is None:
            continue
        names = {
            p["name"].split("[", 1)[0]
            for p in operation.get("parameters", ())
            if p.get("in") == "query"
        }
        found[path] = sorted(names - PAGING_PARAMS)
    return found


def event_types(spec: dict[str, Any]) -> list[str]:
    """The API version's event types: what a webhook endpoint may enable, less ``*``."""
    form = spec["paths"]["/v1/webhook_endpoints"]["post"]["requestBody"]["content"]
    enabled = form["application/x-www-form-urlencoded"]["schema"]["properties"]
    return sorted(set(enabled["enabled_events"]["items"]["enum"]) - {"*"})


def event_objects(spec: dict[str, Any], carried: dict[str, str]) -> dict[str, str]:
    """Event type -> the object its ``data.object`` is, for the version's event types."""
    return {name: carried[name] for name in event_types(spec) if name in carried}


def derive(
    spec: dict[str, Any],
    fixtures: dict[str, Any],
    latest: dict[str, Any],
    tables: list[dict[str, Any]],
    carried: dict[str, str],
) -> Shape:
    """Build the shapes document for every table's resource and list endpoint."""
    resolver = Spec(spec)
    deriver = Deriver(resolver, fixtures)
    list_paths: dict[str, str] = {}
    for table in tables:
        for name in table["object"].split("|"):
            list_paths.setdefault(name, table["list_path"])
    hidden = hidden_lists(tables)
    resources: dict[str, Any] = {}
    for resource in table_resources(tables):
        schema = resolver.deref({"$ref": f"#/components/schemas/{resource}"})
        props = schema.get("properties", {})
        example = fixtures[resource]
        includable = deriver.includable(
            schema,
            example,
            nested_paths(spec, list_paths.get(resource, "")),
            hidden.get(resource, {}),
        )
        fields = {
            k: deriver.value_shape(k, example[k], props.get(k))
            for k in sorted(example)
            if k not in includable
        }
        newer_example = latest.get(resource, {})
        newer = {
            k: deriver.value_shape(k, newer_example[k], None)
            for k in sorted(newer_example)
            if k not in props and k not in example
        }
        resources[resource] = {
            "fields": fields,
            "newer_fields": newer,
            "expandable": sorted(schema.get("x-expandableFields", [])),
            "includable": includable,
        }
    return {
        "api_version": API_VERSION,
        "resources": resources,
        "list_params": list_params(spec, tables),
        "event_types": event_types(spec),
        "event_objects": event_objects(spec, carried),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openapi", type=Path, default=Path("../shared/stripe-openapi"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "shapes.json"
    )
    args = parser.parse_args(argv)
    try:
        spec = json.loads((args.openapi / "spec3.json").read_text())
        fixtures = json.loads((args.openapi / "fixtures3.json").read_text())["resources"]
        latest = json.loads((args.openapi / "fixtures3.latest.json").read_text())["resources"]
        reference = json.loads((args.openapi / "tables.json").read_text())
        tables, carried = reference["tables"], reference["event_type_to_object"]
    except (OSError, KeyError, ValueError) as exc:
        print(f"derive_shapes: cannot read Stripe reference data: {exc}", file=sys.stderr)
        return 1
    document = derive(spec, fixtures, latest, tables, carried)
    args.out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
