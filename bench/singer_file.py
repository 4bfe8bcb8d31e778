"""Read a captured Singer file: count its RECORD messages, split their records to NDJSON."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec


class _Message(msgspec.Struct):
    type: str
    stream: str | None = None
    record: msgspec.Raw = msgspec.Raw(b"")


_decoder = msgspec.json.Decoder(_Message)


def extract_records(singer_file: Path, out_dir: Path) -> Counter[str]:
    """Write each stream's records, byte for byte, to ``out_dir/<stream>.ndjson``.

    Returns the number of RECORD messages per stream.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.ndjson"):
        old.unlink()
    counts: Counter[str] = Counter()
    outputs = {}
    try:
        with open(singer_file, "rb") as lines:
            for line in lines:
                message = _decoder.decode(line)
                if message.type != "RECORD" or not message.record or not message.stream:
                    continue
                out = outputs.get(message.stream)
                if out is None:
                    out = outputs[message.stream] = open(  # noqa: SIM115
                        out_dir / f"{message.stream}.ndjson", "wb", buffering=1 << 20
                    )
                out.write(bytes(message.record))
                out.write(b"\n")
                counts[message.stream] += 1
    finally:
        for out in outputs.values():
            out.close()
    return counts


def truncate_records(singer_file: Path, out_file: Path, max_records: int) -> int:
    """Copy ``singer_file`` up to (not including) its ``max_records + 1``-th RECORD.

    SCHEMA and STATE messages up to that point are kept, so the copy is a valid, shorter
    Singer stream. Returns the number of records copied.
    """
    records = 0
    with open(singer_file, "rb") as src, open(out_file, "wb") as dst:
        for line in src:
            if line.startswith(b'{"type":"RECORD"') or _decoder.decode(line).type == "RECORD":
                if records == max_records:
                    break
                records += 1
            dst.write(line)
    return records
