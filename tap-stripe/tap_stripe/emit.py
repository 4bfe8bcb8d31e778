"""Singer output of one stream's records: exact bytes, the SCHEMA re-announced when needed.

The record path stays raw: without stream maps or a field selection, each record's JSON
goes out byte for byte as Stripe sent it, inside a RECORD line built by concatenation.
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.mapper import SameRecordTransform, StreamMap
from singer_sdk.singerlib import Message, RecordMessage, SchemaMessage

from tap_stripe.fetcher import Page
from tap_stripe.output import FastSingerWriter
from tap_stripe.records import KeyCheck, RawRecord

WriteMessage = Callable[[Message], None]


def infer_schema(value: Any) -> dict:
    """A permissive JSON Schema for a property first seen with ``value``."""
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "integer"
    elif isinstance(value, float):
        kind = "number"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, dict):
        kind = "object"
    elif isinstance(value, list):
        kind = "array"
    else:
        return {}
    return {"type": [kind, "null"]}


class Emitter:
    """Writes a stream's records: exact, schema re-announced when needed."""

    def __init__(
        self,
        name: str,
        schema: dict,
        *,
        writer: Any,
        write_message: WriteMessage,
        stream_maps: Sequence[StreamMap],
        mask: Mapping[tuple[str, ...], bool],
        key_properties: list[str],
        replication_key: str | None,
        logger: logging.Logger,
        version: int | None = None,
        account: str | None = None,
    ) -> None:
        self.name = name
        self.schema = schema
        self.writer = writer
        self.write_message = write_message
        self.stream_maps = stream_maps
        self.mask = mask
        self.key_properties = key_properties
        self.replication_key = replication_key
        self.logger = logger
        self.version = version
        # Every record carries the account it was read from (``_stripe_account``).
        self.account = account
        deselected = [bc for bc, selected in mask.items() if bc and not selected]
        self.drop_top_level = frozenset(
            bc[1] for bc in deselected if len(bc) == 2 and bc[0] == "properties"
        )
        self.prune_nested = any(len(bc) > 2 for bc in deselected)
        # Records go out as orjson lines unless stream maps are configured, and as
        # Stripe's raw bytes unless the selection also removes properties.
        self.direct = (
            isinstance(writer, FastSingerWriter)
            and len(stream_maps) == 1
            and isinstance(stream_maps[0], SameRecordTransform)
            and stream_maps[0].stream_alias == name
        )
        self.selective = bool(deselected)
        self.raw = self.direct and not self.selective
        self.schemas = {m.stream_alias: m.transformed_schema for m in stream_maps}
        self.keys = KeyCheck(frozenset(schema.get("properties", {})) - self.drop_top_level)
        self.prefix = b'{"type":"RECORD","stream":' + orjson.dumps(name) + b',"record":'
        self.account_member = (
            b"" if account is None else b'"_stripe_account":' + orjson.dumps(account)
        )
        self.version_field = b',"version":%d' % version if version is not None else b""

    def emit(self, page: Page) -> int:
        """Write ``page``'s records; return how many."""
        raws = page.raws
        if not raws:
            return 0
        suffix = self.version_field + b',"time_extracted":' + orjson.dumps(page.time_extracted)
        suffix += b"}\n"
        if self.raw:
            if not self.keys.all_known(raws):
                for record in page.records():
                    self._announce_unknown(record)
            self.writer.write_record_line(self._raw_lines(raws, suffix))
            return len(raws)
        records = page.records()
        if self.account is not None:
            for record in records:
                record["_stripe_account"] = self.account
        for record in records:
            if self.selective:
                self._prune(record)
            else:
                self._announce_unknown(record)
        if self.direct:
            dumps = orjson.dumps
            prefix = self.prefix
            self.writer.write_record_line(
                b"".join([prefix + dumps(record) + suffix for record in records])
            )
        else:
            self._emit_mapped(records, page.time_extracted)
        return len(records)

    def _raw_lines(self, raws: list[RawRecord], suffix: bytes) -> bytes:
        """RECORD lines around Stripe's raw bytes, the account spliced in as the record's
        first member."""
        parts: list[RawRecord | memoryview] = []
        if not self.account_member:
            for raw in raws:
                parts += (self.prefix, raw, suffix)
            return b"".join(parts)
        opened = self.prefix + b"{" + self.account_member
        for raw in raws:
            rest = memoryview(raw)[1:]
            parts += (opened, b"," if len(rest) > 1 else b"", rest, suffix)
        return b"".join(parts)

    def _prune(self, record: dict) -> None:
        """Apply the catalog's field selection.

        A selection that leaves fields out lists what the user wants: top-level
        properties it does not know (added by Stripe later) are left out too.
        """
        known = self.keys.known
        for name in [name for name in record if name not in known]:
            del record[name]
        if self.prune_nested:
            pop_deselected_record_properties(record, self.schema, self.mask)

    def _announce_unknown(self, record: dict) -> None:
        """Re-send the SCHEMA with the properties of ``record`` it does not declare."""
        known = self.keys.known
        new = [name for name in record if name not in known]
        if not new:
            return
        self.logger.info(
            "Stripe sent properties the schema does not declare; re-announcing the schema with: %s",
            ", ".join(new),
        )
        for alias, schema in self.schemas.items():
            updated = copy.deepcopy(schema)
            properties = updated.setdefault("properties", {})
            for name in new:
                properties.setdefault(name, infer_schema(record[name]))
            self.schemas[alias] = updated
            self.write_message(
                SchemaMessage(
                    alias,
                    updated,
                    self.key_properties,
                    [self.replication_key] if self.replication_key else None,
                )
            )
        self.keys = KeyCheck(known | frozenset(new))

    def _emit_mapped(self, records: list[dict], time_extracted: datetime.datetime) -> None:
        """Slow path for configured stream maps: the SDK's mappers, still no conform."""
        for record in records:
            for stream_map in self.stream_maps:
                mapped = stream_map.transform(record)
                if mapped is not None:
                    self.write_message(
                        RecordMessage(
                            stream=stream_map.stream_alias,
                            record=mapped,
                            version=self.version,
                            time_extracted=time_extracted,
                        )
                    )

    def flush(self) -> None:
        """Write out buffered records."""
        if isinstance(self.writer, FastSingerWriter):
            self.writer.flush()
