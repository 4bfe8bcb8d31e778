"""Reading Singer messages: one msgspec decode per line, records kept as raw JSON text."""

from __future__ import annotations

import logging
import sys
import typing as t
from collections import Counter
from collections.abc import Callable

import msgspec
from singer_sdk.io_base import GenericSingerReader

from target_duckdb.errors import BadMessageError, InputError, TargetError

NO_RECORD = msgspec.Raw(b"")
# Standard input is read 1 MB at a time, not 8 KB: every read releases the GIL, and the
# reader then waits to take it back from the loader thread. At 8 KB (8,500 reads for the
# benchmark's 100,000 records) the target alone took a median of 1.81 s, at 1 MB 1.52 s
# (12 interleaved runs; 64 KB to 8 MB measured alike). A read returns what a pipe holds: a
# slow producer's lines are not held back until a megabyte has arrived.
STDIN_BUFFER = 1 << 20

logger = logging.getLogger("target-duckdb")


class Message(msgspec.Struct):
    """A Singer message; `record` stays undecoded until its stream's sink reads it."""

    type: t.Any = None
    stream: t.Any = None
    record: msgspec.Raw = NO_RECORD
    schema: t.Any = None
    key_properties: t.Any = None
    value: t.Any = None
    version: t.Any = None
    time_extracted: t.Any = None
    scope: t.Any = None  # ACTIVATE_VERSION: the columns → values the version covers


_decoder = msgspec.json.Decoder(Message)


class BlankLine(Exception):
    """A line holding only whitespace: skipped, not an error."""


class Terminated(Exception):
    """Raised when SIGTERM/SIGINT arrives while the reader waits for input."""


class MessageReader(GenericSingerReader):
    """Decodes lines, counts them, and tags errors with the line number."""

    def __init__(self, on_stop: Callable[[BaseException], None] | None = None) -> None:
        """Start before line 1; `on_stop` is called when reading stops on an exception."""
        super().__init__()
        self.on_stop = on_stop
        self.line_number = 0
        self.waiting = False
        self.stop_requested = False

    @property
    def default_input(self) -> t.IO:
        """Standard input, as bytes, read `STDIN_BUFFER` at a time (Python's own buffer is
        8 KB); an in-process stand-in for it (no file descriptor) as it is."""
        try:
            descriptor = sys.stdin.fileno()
        except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation included
            return sys.stdin.buffer
        return open(descriptor, "rb", buffering=STDIN_BUFFER, closefd=False)

    def deserialize_json(self, line: str | bytes) -> dict:
        """Decode one line (the SDK interface; the loop below uses `decode`)."""
        return msgspec.json.decode(line)

    def decode(self, line: str | bytes) -> Message:
        """One line → Message, or BadMessageError naming what is wrong."""
        try:
            message = _decoder.decode(line)
        except msgspec.ValidationError as error:
            if str(error).startswith("Expected `object`") and "- at `$" not in str(error):
                raise BadMessageError("line is JSON but not a JSON object") from error
            raise BadMessageError(f"invalid Singer message: {error}") from error
        except msgspec.DecodeError as error:
            if not line.strip():
                raise BlankLine from error
            raise BadMessageError(f"line is not valid JSON ({error})") from error
        except RecursionError as error:
            raise BadMessageError("line nests JSON deeper than the decoder allows") from error
        if message.type is None:
            raise BadMessageError("message has no 'type'")
        if not isinstance(message.type, str):
            raise BadMessageError(f"message 'type' is not a string: {message.type!r}")
        return message

    def process_lines(
        self,
        file_input: t.IO | None,
        callbacks: dict[str, Callable[[t.Any], None]],
    ) -> Counter[str]:
        """Dispatch each line to the callback for its message type."""
        try:
            return self._process(file_input, callbacks)
        except BaseException as error:
            if self.on_stop is not None:
                self.on_stop(error)
            raise

    def _process(
        self,
        file_input: t.IO | None,
        callbacks: dict[str, Callable[[t.Any], None]],
    ) -> Counter[str]:
        stats: Counter[str] = Counter()
        lines = iter(file_input or self.default_input)
        while True:
            self.waiting = True
            if self.stop_requested:
                raise Terminated
            line = next(lines, None)
            self.waiting = False
            if line is None:
                return stats
            self.line_number += 1
            try:
                message = self.decode(line)
                callback = callbacks.get(message.type)
                if callback is None:
                    raise BadMessageError(f"unknown message type {message.type!r}")
                callback(message)
            except BlankLine:
                continue
            except InputError as error:
                if error.line_number is None:
                    error.line_number = self.line_number
                raise
            except (Terminated, TargetError):
                raise
            except RecursionError as error:
                raise _rejected("line nests JSON deeper than the target allows", self) from error
            except Exception as error:
                # Whatever else fails on a line is still that line's rejection (rule: commit
                # what came before, one line on stderr); the traceback goes to the debug log.
                logger.debug("input line %d failed", self.line_number, exc_info=True)
                raise _rejected(f"cannot load this line: {error!r}", self) from error
            stats[message.type] += 1


def _rejected(message: str, reader: MessageReader) -> InputError:
    error = InputError(message)
    error.line_number = reader.line_number
    return error
