"""Hypothesis strategies for tests/target/test_fuzz.py: valid Singer streams and mutations.

A base stream is a valid Singer stream the target must load: one to three streams (a
SCHEMA with key properties each), records of every column kind (strings, integers,
floats, booleans, nulls, nested objects and arrays, timestamps, dates, Stripe-style
expandable fields, untyped values), STATE messages between them, and for some streams
table versions with ACTIVATE_VERSION. `BaseStream.expected` is what its tables must hold.

A mutation turns the base stream's lines into other lines; `Mutated.harmless` says the
target must load them exactly like the base stream (a line duplicated in place under
upsert keys, a blank line inserted).
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# Property kinds → their JSON Schema (every column nullable, as Stripe's schemas are).
KIND_SCHEMAS: dict[str, dict] = {
    "string": {"type": ["string", "null"]},
    "integer": {"type": ["integer", "null"]},
    "number": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "object": {
        "type": ["object", "null"],
        "properties": {"a": {"type": ["integer", "null"]}, "b": {"type": ["string", "null"]}},
    },
    "array": {"type": ["array", "null"], "items": {"type": ["integer", "string", "null"]}},
    "date-time": {"type": ["string", "null"], "format": "date-time"},
    "date": {"type": ["string", "null"], "format": "date"},
    "expandable": {"anyOf": [{"type": "string"}, {"type": "object"}, {"type": "null"}]},
    "untyped": {},
}
KINDS = sorted(KIND_SCHEMAS)

SQL_WORDS = ["select", "from", "order", "group", "table", "default", "null", "user", "all"]
NASTY_NAMES = [
    "",
    " ",
    "a b",
    'q"uote',
    "it's",
    "back\\slash",
    "naïve",
    "日本語",
    "emoji😀",
    "a.b",
    "a-b",
    "tab\there",
    "new\nline",
    "nul\x00byte",
    "_sdc_deleted_at",
    "_sdc_table_version",
    "_singer_state",
    "rowid",
    "ID",
    "Id",
    "x" * 300,
    "é" * 200,
    *SQL_WORDS,
    *(word.upper() for word in SQL_WORDS),
]
# Names a property or stream may be renamed to: the list above, or any text at all.
nasty_names = st.one_of(
    st.sampled_from(NASTY_NAMES),
    st.text(max_size=12),
    st.text(alphabet="aA_-. \"'", min_size=1, max_size=6),
)
STREAM_NAMES = ["orders", "users", "shop-items"]  # `shop-items` goes to table shop.items
PROPERTY_NAMES = ["name", "amount", "price", "flag", "meta", "tags", "created", "day", "ref"]

# Values that stress a column: beyond int64 and int128, extreme floats, 1.0 for an
# integer, long strings, strings DuckDB or UTF-8 may choke on, other kinds.
HUGE_VALUES: list[Any] = [
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**127,
    2**128,
    -(2**127) - 1,
    10**40,
    10**400,
    1e308,
    -1e308,
    5e-324,
    1.0,
    -0.0,
    0.5,
    "x" * 100_000,
    "nul\x00inside",
    "",
    "ünïcødé 😀",
    "2024-02-30T00:00:00Z",
    "not a date",
    True,
    {"nested": {"deeper": [1, 2, {"x": None}]}},
    [],
    {},
    [1, "two", None],
]


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value (finite floats, ints of any size, unicode strings)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(max_size=5), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


def _kind_value(kind: str) -> st.SearchStrategy[Any]:
    small_text = st.text(max_size=8)
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "string": small_text,
        "integer": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "number": st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.integers(min_value=-(2**53), max_value=2**53),
        ),
        "boolean": st.booleans(),
        "object": st.fixed_dictionaries(
            {}, optional={"a": st.integers(-1000, 1000) | st.none(), "b": small_text}
        ),
        "array": st.lists(st.integers(-5, 5) | small_text, max_size=3),
        "date-time": st.datetimes(
            min_value=datetime.datetime(1970, 1, 2), max_value=datetime.datetime(2100, 1, 1)
        ).map(lambda moment: moment.isoformat() + "Z"),
        "date": st.dates(
            min_value=datetime.date(1970, 1, 2), max_value=datetime.date(2100, 1, 1)
        ).map(lambda day: day.isoformat()),
        "expandable": st.one_of(
            st.text(alphabet="abc_123", min_size=1, max_size=8),
            st.fixed_dictionaries({"id": st.text(alphabet="abc_123", min_size=1, max_size=8)}),
        ),
        "untyped": json_values(4),
    }
    return st.one_of(st.none(), strategies[kind]) if kind != "untyped" else strategies[kind]


@dataclass
class StreamSpec:
    """One stream of a base stream: its schema and what its table must end up holding."""

    name: str
    kinds: dict[str, str]  # property → kind (key properties included)
    keys: list[str]
    versioned: bool
    rows: dict[tuple, dict] = field(default_factory=dict)  # key → last record
    versions: dict[tuple, int] = field(default_factory=dict)  # key → its last record's version
    activated: int | None = None

    @property
    def schema(self) -> dict:
        """The SCHEMA message."""
        return {
            "type": "SCHEMA",
            "stream": self.name,
            "schema": {
                "type": "object",
                "properties": {name: KIND_SCHEMAS[kind] for name, kind in self.kinds.items()},
            },
            "key_properties": self.keys,
        }


@dataclass
class BaseStream:
    """A valid Singer stream, its messages and its lines, and what it must load."""

    messages: list[dict]
    streams: list[StreamSpec]
    last_state: Any  # the STATE value the target must emit last and persist (None: none)

    @property
    def lines(self) -> list[bytes]:
        """The messages as lines (without their newline)."""
        return [encode(message) for message in self.messages]


def encode(value: Any) -> bytes:
    """Compact JSON, UTF-8 (lone surrogates kept as their invalid UTF-8 bytes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8", "surrogatepass"
    )


@st.composite
def base_streams(draw: st.DrawFn) -> BaseStream:
    """A valid Singer stream: 1-3 streams, 5-40 lines, STATEs between records."""
    names = draw(st.lists(st.sampled_from(STREAM_NAMES), min_size=1, max_size=3, unique=True))
    specs = []
    for name in names:
        composite = draw(st.booleans()) and draw(st.booleans())
        key_kind = draw(st.sampled_from(["integer", "string"]))
        kinds = {"id": key_kind}
        keys = ["id"]
        if composite:
            kinds["part"] = "integer"
            keys.append("part")
        props = draw(st.lists(st.sampled_from(PROPERTY_NAMES), max_size=5, unique=True))
        for prop in props:
            kinds[prop] = draw(st.sampled_from(KINDS))
        specs.append(StreamSpec(name, kinds, keys, versioned=draw(st.booleans())))

    messages: list[dict] = [spec.schema for spec in specs]
    bookmark = 0
    last_state: Any = None
    count = draw(st.integers(min_value=3, max_value=30))
    phase_two = count // 2
    for index in range(count):
        spec = draw(st.sampled_from(specs))
        if spec.versioned and index == phase_two:
            messages.append({"type": "ACTIVATE_VERSION", "stream": spec.name, "version": 1})
            spec.activated = 1
        key_values: dict[str, Any] = {
            "id": draw(
                st.integers(0, 6)
                if spec.kinds["id"] == "integer"
                else st.sampled_from(["a", "b", "c", "A", "é", "x y", "7"])
            )
        }
        if "part" in spec.kinds:
            key_values["part"] = draw(st.integers(0, 1))
        record = dict(key_values)
        for prop, kind in spec.kinds.items():
            if prop in spec.keys:
                continue
            if draw(st.integers(0, 5)) == 0:
                continue  # an absent property
            record[prop] = draw(_kind_value(kind))
        message: dict[str, Any] = {"type": "RECORD", "stream": spec.name, "record": record}
        key = tuple(key_values[k] for k in spec.keys)
        if spec.versioned:
            version = 1 if index < phase_two else 2
            message["version"] = version
            spec.versions[key] = version
        spec.rows[key] = record
        messages.append(message)
        if draw(st.integers(0, 3)) == 0:
            bookmark += draw(st.integers(1, 10))
            last_state = {"bookmarks": {spec.name: {"updated": bookmark}}}
            messages.append({"type": "STATE", "value": last_state})
    for spec in specs:
        if spec.versioned and spec.versions:
            messages.append({"type": "ACTIVATE_VERSION", "stream": spec.name, "version": 2})
            spec.activated = 2
    if draw(st.booleans()):
        bookmark += 1
        last_state = {"bookmarks": {"done": bookmark}, "note": draw(st.text(max_size=6))}
        messages.append({"type": "STATE", "value": last_state})
    return BaseStream(messages, specs, last_state)


@dataclass
class Mutated:
    """The mutated input, whether it must load like the base stream, and how it was made."""

    data: bytes
    harmless: bool
    steps: list[str]

    @property
    def lines(self) -> list[bytes]:
        """The input as the target splits it: on b'\\n' only."""
        parts = self.data.split(b"\n")
        return parts[:-1] if parts and parts[-1] == b"" else parts


def join(lines: list[bytes]) -> bytes:
    """Lines as newline-terminated input."""
    return b"".join(line + b"\n" for line in lines)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _decoded(line: bytes) -> Any:
    """A line's JSON value, None unless it is JSON that `encode` can write back."""
    try:
        return json.loads(
            line.decode("utf-8", "surrogatepass"), parse_float=_finite, parse_constant=_finite
        )
    except (ValueError, RecursionError):
        return None


def _replace(lines: list[bytes], index: int, message: Any, raw: dict[str, bytes]) -> None:
    """Put a message back in place; placeholder strings become the raw JSON in `raw`."""
    line = encode(message)
    for placeholder, text in raw.items():
        line = line.replace(encode(placeholder), text)
    lines[index] = line


def _messages(lines: list[bytes], kind: str, stream: str | None = None) -> list[int]:
    found = []
    for index, line in enumerate(lines):
        message = _decoded(line)
        if (
            isinstance(message, dict)
            and message.get("type") == kind
            and (stream is None or message.get("stream") == stream)
        ):
            found.append(index)
    return found


def _deep(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"k":': "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


@st.composite
def mutate(draw: st.DrawFn, base: BaseStream) -> Mutated:
    """One to three mutations of a base stream's lines."""
    lines = base.lines
    harmless = True
    steps: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(MUTATIONS)))
        step, kept = MUTATIONS[name](draw, lines)
        steps.append(f"{name}: {step}")
        harmless = harmless and kept
    return Mutated(join(lines), harmless, steps)


def _truncate(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    data = join(lines)
    cut = draw(st.integers(0, len(data)))
    kept = data[:cut].split(b"\n")
    lines[:] = kept if kept[-1] else kept[:-1]
    # A cut at a line boundary is harmless only in a stream where nothing follows; the
    # mutation never claims so (the remaining lines are checked against the general rule).
    return f"cut at byte {cut}", False


def _flip(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    data = bytearray(join(lines))
    flips = []
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(data) - 1))
        mask = draw(st.integers(1, 255))
        data[position] ^= mask
        flips.append((position, mask))
    parts = bytes(data).split(b"\n")
    lines[:] = parts[:-1] if parts[-1] == b"" else parts
    return f"xor (byte, mask) {flips}", False


def _drop(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    if not lines:
        return "nothing to drop", True
    index = draw(st.integers(0, len(lines) - 1))
    del lines[index]
    return f"dropped line {index + 1}", False


def _duplicate(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    if not lines:
        return "nothing to duplicate", True
    index = draw(st.integers(0, len(lines) - 1))
    lines.insert(index + 1, lines[index])
    message = _decoded(lines[index])
    # In place, a copy changes nothing: upsert keeps the last record per key (all base
    # streams have keys), a state or schema repeated is the same state or schema.
    harmless = isinstance(message, dict) and message.get("type") in ("RECORD", "STATE", "SCHEMA")
    return f"duplicated line {index + 1} in place", harmless


def _move(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    if len(lines) < 2:
        return "nothing to move", True
    source = draw(st.integers(0, len(lines) - 1))
    line = lines.pop(source)
    dest = draw(st.integers(0, len(lines)))
    lines.insert(dest, line)
    return f"moved line {source + 1} to {dest + 1}", False


def _swap(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    if len(lines) < 2:
        return "nothing to swap", True
    first = draw(st.integers(0, len(lines) - 2))
    lines[first], lines[first + 1] = lines[first + 1], lines[first]
    return f"swapped lines {first + 1} and {first + 2}", False


def _blank(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    index = draw(st.integers(0, len(lines)))
    blank = draw(st.sampled_from([b"", b" ", b"\t", b"  \t ", b"\r"]))
    lines.insert(index, blank)
    return f"blank line {blank!r} at {index + 1}", True


def _rename_property(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    schemas = _messages(lines, "SCHEMA")
    if not schemas:
        return "no schema", True
    schema = _decoded(lines[draw(st.sampled_from(schemas))])
    stream = schema.get("stream")
    properties = schema.get("schema", {}).get("properties", {})
    if not isinstance(properties, dict) or not properties:
        return "no properties", True
    old = draw(st.sampled_from(sorted(properties)))
    others = [name for name in properties if name != old]
    if others and draw(st.booleans()):  # a case-insensitive twin of another property
        other = draw(st.sampled_from(others))
        new = draw(st.sampled_from([other.upper(), other.swapcase(), other.title(), other]))
    else:
        new = draw(nasty_names)
    for index in _messages(lines, "SCHEMA", stream):
        message = _decoded(lines[index])
        props = message["schema"]["properties"]
        if old in props:
            props[new] = props.pop(old)
        message["key_properties"] = [
            new if key == old else key for key in message["key_properties"]
        ]
        _replace(lines, index, message, {})
    for index in _messages(lines, "RECORD", stream):
        message = _decoded(lines[index])
        if isinstance(message.get("record"), dict) and old in message["record"]:
            message["record"][new] = message["record"].pop(old)
            _replace(lines, index, message, {})
    return f"property {old!r} of {stream!r} renamed {new!r}", False


def _rename_stream(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    schemas = _messages(lines, "SCHEMA")
    if not schemas:
        return "no schema", True
    old = _decoded(lines[draw(st.sampled_from(schemas))]).get("stream")
    streams = {_decoded(lines[index]).get("stream") for index in schemas} - {old}
    others = sorted(name for name in streams if isinstance(name, str))
    if others and draw(st.booleans()):  # a case-insensitive twin of another stream
        other = draw(st.sampled_from(others))
        new = draw(st.sampled_from([other.upper(), other.title(), other.replace("-", "_")]))
    else:
        new = draw(nasty_names)
    for index, line in enumerate(lines):
        message = _decoded(line)
        if isinstance(message, dict) and message.get("stream") == old:
            message["stream"] = new
            _replace(lines, index, message, {})
    return f"stream {old!r} renamed {new!r}", False


def _record_value(draw: st.DrawFn, lines: list[bytes], values: st.SearchStrategy) -> str:
    records = _messages(lines, "RECORD")
    if not records:
        return "no record"
    index = draw(st.sampled_from(records))
    message = _decoded(lines[index])
    record = message.get("record")
    if not isinstance(record, dict):
        return "record is not an object"
    names = sorted(record)
    prop = draw(st.sampled_from(names) | nasty_names if names else nasty_names)
    value = draw(values)
    raw = {}
    if isinstance(value, bytes):  # raw JSON text (too deep for json.dumps)
        raw["\ue000raw"] = value
        record[prop] = "\ue000raw"
        shown = f"{value[:20]!r}... ({len(value)} bytes)"
    else:
        record[prop] = value
        shown = repr(value)[:80]
    _replace(lines, index, message, raw)
    return f"line {index + 1}: record[{prop!r}] = {shown}"


def _huge_value(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    return _record_value(draw, lines, st.sampled_from(HUGE_VALUES)), False


def _other_value(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    return _record_value(draw, lines, json_values()), False


def _deep_value(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    depth = draw(st.sampled_from([64, 1000, 5000, 100_000]))
    opener = draw(st.sampled_from(["[", '{"k":']))
    return _record_value(draw, lines, st.just(_deep(depth, opener))), False


def _bad_utf8(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    if not lines:
        return "no line", True
    index = draw(st.integers(0, len(lines) - 1))
    line = lines[index]
    position = draw(st.integers(0, len(line)))
    junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"]))
    lines[index] = line[:position] + junk + line[position:]
    return f"line {index + 1}: {junk!r} at byte {position}", False


def _escaped_oddity(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    """A valid-JSON escape that is awkward downstream: a lone surrogate, a NUL."""
    escape = draw(st.sampled_from([b'"\\ud800"', b'"a\\u0000b"', b'"\\udfff\\ud800"']))
    return _record_value(draw, lines, st.just(escape)), False


def _duplicate_key(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    records = _messages(lines, "RECORD")
    if not records:
        return "no record", True
    index = draw(st.sampled_from(records))
    message = _decoded(lines[index])
    record = message["record"]
    prop = draw(st.sampled_from(sorted(record)))
    other = draw(_kind_value("untyped"))
    inner = encode(record)[1:]  # without its opening brace
    first = encode(prop) + b":" + encode(other)
    message["record"] = "\ue000raw"
    top_level = draw(st.booleans())
    if top_level:  # the message itself repeats a key
        line = encode(message).replace(encode("\ue000raw"), encode(record))
        line = line[:-1] + b',"stream":' + encode(draw(nasty_names)) + b"}"
    else:
        line = encode(message).replace(encode("\ue000raw"), b"{" + first + b"," + inner)
    lines[index] = line
    return f"line {index + 1}: duplicate key {'stream' if top_level else prop!r}", False


def _schema_change(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    """A SCHEMA re-announced later with a property's type changed."""
    schemas = _messages(lines, "SCHEMA")
    if not schemas:
        return "no schema", True
    message = _decoded(lines[draw(st.sampled_from(schemas))])
    properties = message.get("schema", {}).get("properties")
    if not isinstance(properties, dict) or not properties:
        return "no properties", True
    prop = draw(st.sampled_from(sorted(properties)))
    kind = draw(st.sampled_from(KINDS))
    properties[prop] = KIND_SCHEMAS[kind]
    index = draw(st.integers(0, len(lines)))
    lines.insert(index, encode(message))
    return f"line {index + 1}: SCHEMA {message.get('stream')!r} with {prop!r} as {kind}", False


def _state_oddity(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    index = draw(st.integers(0, len(lines)))
    message = draw(
        st.one_of(
            st.just({"type": "STATE"}),
            st.just({"type": "STATE", "value": None}),
            json_values().map(lambda value: {"type": "STATE", "value": value}),
        )
    )
    lines.insert(index, encode(message))
    return f"line {index + 1}: {message!r}"[:120], False


def _version_oddity(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    schemas = _messages(lines, "SCHEMA")
    if not schemas:
        return "no schema", True
    stream = _decoded(lines[draw(st.sampled_from(schemas))]).get("stream")
    version = draw(st.sampled_from([0, -1, 1.0, 2**63, 2**70, "2", None, True, 3]))
    index = draw(st.integers(0, len(lines)))
    on_record = draw(st.booleans())
    records = _messages(lines, "RECORD", stream)
    if on_record and records:
        index = draw(st.sampled_from(records))
        message = _decoded(lines[index])
        message["version"] = version
        lines[index] = encode(message)
        return f"line {index + 1}: record version {version!r}", False
    message = {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}
    lines.insert(index, encode(message))
    return f"line {index + 1}: {message!r}", False


def _message_oddity(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    """A line that is a Singer message in shape only."""
    index = draw(st.integers(0, len(lines)))
    line = draw(
        st.sampled_from(
            [
                b'{"type":"record","stream":"orders","record":{"id":1}}',
                b'{"type":"RECORD","stream":7,"record":{"id":1}}',
                b'{"type":"RECORD","stream":"orders","record":[1]}',
                b'{"type":"RECORD","stream":"orders","record":null}',
                b'{"type":"RECORD","stream":"orders","record":"x"}',
                b'{"type":"SCHEMA","stream":"orders","schema":[],"key_properties":[]}',
                b'{"type":"SCHEMA","stream":"orders","schema":{"properties":{"id":{}}},'
                b'"key_properties":"id"}',
                b'{"type":"SCHEMA","stream":"orders","schema":{"properties":{"id":{}}},'
                b'"key_properties":[1]}',
                b'{"type":null}',
                b'{"type":["RECORD"]}',
                b"null",
                b'"RECORD"',
                b"1e999",
                b"NaN",
                b'{"type":"RECORD","stream":"orders","record":{"id":NaN}}',
                b'{"type":"RECORD","stream":"orders","record":{"id":1e999}}',
                b"\xef\xbb\xbf{}",
                b"{}",
                b'{"type":"STATE","value":{"a":1}} trailing',
            ]
        )
    )
    lines.insert(index, line)
    return f"line {index + 1}: {line!r}", False


def _schema_value(draw: st.DrawFn, lines: list[bytes]) -> tuple[str, bool]:
    """A stream's SCHEMA replaced by a random (maybe invalid) JSON Schema."""
    schemas = _messages(lines, "SCHEMA")
    if not schemas:
        return "no schema", True
    index = draw(st.sampled_from(schemas))
    message = _decoded(lines[index])
    properties = message["schema"]["properties"]
    prop = draw(st.sampled_from(sorted(properties)))
    properties[prop] = draw(json_schemas())
    lines[index] = encode(message)
    return f"line {index + 1}: {prop!r} → {properties[prop]!r}"[:160], False


MUTATIONS = {
    "truncate": _truncate,
    "flip": _flip,
    "drop": _drop,
    "duplicate": _duplicate,
    "move": _move,
    "swap": _swap,
    "blank": _blank,
    "rename-property": _rename_property,
    "rename-stream": _rename_stream,
    "huge-value": _huge_value,
    "other-value": _other_value,
    "deep-value": _deep_value,
    "bad-utf8": _bad_utf8,
    "escaped-oddity": _escaped_oddity,
    "duplicate-key": _duplicate_key,
    "schema-change": _schema_change,
    "schema-value": _schema_value,
    "state-oddity": _state_oddity,
    "version-oddity": _version_oddity,
    "message-oddity": _message_oddity,
}


# JSON Schemas, valid or not: the keywords a target reads, with right and wrong values.
_TYPE_NAMES = ["string", "integer", "number", "boolean", "object", "array", "null", "strnig"]


def json_schemas() -> st.SearchStrategy[Any]:
    """A property's JSON Schema: mostly plausible, sometimes invalid."""
    leaf = st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.one_of(
                    st.sampled_from(_TYPE_NAMES),
                    st.lists(st.sampled_from(_TYPE_NAMES), max_size=3),
                    json_values(2),
                ),
                "format": st.sampled_from(["date-time", "date", "email", "uuid", "", "time"]),
                "maxLength": st.integers(-1, 10) | st.just(2**70),
                "enum": st.lists(json_values(2), max_size=3),
                "default": json_values(2),
                "description": st.text(max_size=8),
            },
        ),
        st.booleans(),
        json_values(2),
    )
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["object", ["object", "null"]])},
                optional={
                    "properties": st.dictionaries(nasty_names, children, max_size=3),
                    "additionalProperties": st.booleans() | children,
                    "required": st.lists(st.text(max_size=4), max_size=2),
                },
            ),
            st.fixed_dictionaries(
                {"type": st.sampled_from(["array", ["array", "null"]])},
                optional={"items": children},
            ),
            st.lists(children, min_size=1, max_size=3).map(lambda members: {"anyOf": members}),
            st.lists(children, min_size=1, max_size=3).map(lambda members: {"oneOf": members}),
        ),
        max_leaves=6,
    )
