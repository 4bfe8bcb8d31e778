"""A stream's SCHEMA checked before it is used, and records checked against it.

`check_schema` refuses a schema the target cannot load from (not an object, no properties,
an empty property name, two names DuckDB would take for one, not a valid JSON Schema);
`validator` is the full JSON Schema validation of records (`validate_records`), and
`json_kind` / `allowed` the cheaper check of each top-level value's JSON type that the
dict path of `sinks` makes otherwise.
"""

from __future__ import annotations

import functools
import typing as t
from collections.abc import Callable

import fastjsonschema
import jsonschema
import msgspec

from target_duckdb import names
from target_duckdb.errors import BadSchemaError

# Schemas that passed the meta-schema check, as canonical JSON: a tap sends the same
# SCHEMA again (the target and the stream's sink each check it, a run re-announces it).
_PASSED: set[bytes] = set()


def check_schema(stream: str, schema: object, checked: dict | None = None) -> dict:
    """The stream's properties, or BadSchemaError when the schema cannot be used.

    ``checked`` is the stream's schema that already passed: a tap re-announcing it with
    properties added (a field Stripe added) only needs those checked, and checking a whole
    Stripe schema against the meta-schema takes a quarter of a second. A schema without
    ``$schema`` is checked as Draft 7, the draft Singer taps write.
    """
    if not isinstance(schema, dict):
        raise BadSchemaError(f"SCHEMA for stream '{stream}' is not a JSON object")
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise BadSchemaError(f"SCHEMA for stream '{stream}' has no properties")
    if "" in properties:
        raise BadSchemaError(f"SCHEMA for stream '{stream}' has a property with an empty name")
    collision = names.case_collision(properties)
    if collision is not None:
        raise BadSchemaError(
            f"SCHEMA for stream '{stream}' has properties '{collision[0]}' and "
            f"'{collision[1]}', one column in DuckDB (its names ignore case)"
        )
    whole = msgspec.json.encode(schema, order="sorted")
    if whole in _PASSED:
        return properties
    to_check = schema
    if checked is not None and _only_adds_properties(checked, schema):
        added = {name: properties[name] for name in properties.keys() - checked["properties"]}
        to_check = {key: value for key, value in schema.items() if key != "properties"}
        to_check["properties"] = added
    key = whole if to_check is schema else msgspec.json.encode(to_check, order="sorted")
    if key in _PASSED or ("$schema" not in to_check and _passes_draft7(to_check)):
        # The schema passes whole: the stream's sink checks it again without `checked`.
        _PASSED.update((key, whole))
        return properties
    try:
        validator = jsonschema.validators.validator_for(
            to_check, default=jsonschema.Draft7Validator
        )
        validator.check_schema(to_check)
    except jsonschema.SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise BadSchemaError(
            f"SCHEMA for stream '{stream}' is not a valid JSON Schema at {where}: {error.message}"
        ) from error
    _PASSED.update((key, whole))
    return properties


@functools.cache
def _draft7_check() -> Callable[[object], object]:
    """Draft 7's meta-schema compiled (fastjsonschema): several times quicker than
    jsonschema's check, which stays the one that words a refusal. Without `use_default`
    the check would write the meta-schema's defaults (`"items": true`, ...) into the
    tap's schema."""
    return fastjsonschema.compile(jsonschema.Draft7Validator.META_SCHEMA, use_default=False)


def _passes_draft7(schema: dict) -> bool:
    try:
        _draft7_check()(schema)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _only_adds_properties(checked: dict, schema: dict) -> bool:
    """Whether ``schema`` is ``checked`` with top-level properties added, nothing else."""
    old, new = checked.get("properties"), schema["properties"]
    if not isinstance(old, dict) or checked.keys() != schema.keys():
        return False
    if any(checked[key] != schema[key] for key in schema if key != "properties"):
        return False
    return all(name in new and new[name] == value for name, value in old.items())


def validator(schema: dict) -> Callable[[dict], str | None]:
    """Full JSON Schema validation of a record: None, or what is wrong with it.

    fastjsonschema compiles the schema to Python code (~15 µs per Stripe-sized record, 25x
    faster than jsonschema); jsonschema is the fallback for schemas it cannot compile.
    """
    try:
        # Without `use_default` the check would fill in the schema's defaults: values the
        # tap never sent.
        compiled = fastjsonschema.compile(schema, use_default=False)
    except fastjsonschema.JsonSchemaDefinitionException:
        checker = jsonschema.validators.validator_for(schema)(schema)

        def check(record: dict) -> str | None:
            error = jsonschema.exceptions.best_match(checker.iter_errors(record))
            if error is None:
                return None
            where = ".".join(str(part) for part in error.absolute_path)
            return f"record{'.' if where else ''}{where}: {error.message}"

        return check

    def check_compiled(record: dict) -> str | None:
        try:
            compiled(record)
        except fastjsonschema.JsonSchemaValueException as error:
            return error.message.replace("data", "record", 1)
        return None

    return check_compiled


def json_kind(value: object) -> str:
    """The JSON Schema type of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def allowed(kind: str, value: object, kinds: frozenset[str]) -> bool:
    """Whether a value of JSON type `kind` is valid for a property allowing `kinds`.

    JSON Schema's integer is a number with no fractional part: 1.0 is an integer.
    """
    if kind in kinds or kind == "null":
        return True
    if kind == "integer":
        return "number" in kinds
    return kind == "number" and "integer" in kinds and t.cast("float", value).is_integer()
