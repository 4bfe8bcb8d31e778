"""Errors the target reports as one line on stderr, then exits non-zero.

Every rejected input line is an InputError: the target commits what came before the line,
emits the state covering it, then reports `input line N: ...`.
"""

from __future__ import annotations

from singer_sdk.exceptions import (
    InvalidJSONSchema,
    InvalidRecord,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)


class TargetError(Exception):
    """An error reported to the user as one line, without a traceback."""

    line_number: int | None = None

    def __str__(self) -> str:
        """The message, prefixed by the input line number when known."""
        message = super().__str__()
        if self.line_number is None:
            return message
        return f"input line {self.line_number}: {message}"


class ConfigError(TargetError):
    """A setting the target cannot use."""

    def __init__(self, setting: str, message: str) -> None:
        """`config: <setting> <message>`."""
        super().__init__(f"config: {setting} {message}")
        self.setting = setting


class DatabaseError(TargetError):
    """The DuckDB file cannot be opened (locked by another process, not a DuckDB file)."""


class InputError(TargetError):
    """A line of input the target cannot accept."""


class StatementError(InputError):
    """DuckDB refused a statement made for a line (a name, a column change, a load)."""


class LoadError(StatementError):
    """A bulk load failed; `line_number` is the first input line whose record fails."""


class BadMessageError(InputError):
    """A line that is not a valid Singer message."""


class UnknownStreamError(InputError, RecordsWithoutSchemaException):
    """A RECORD or ACTIVATE_VERSION for a stream that had no SCHEMA."""


class BadSchemaError(InputError, InvalidJSONSchema):
    """A SCHEMA message whose schema the target cannot use."""


class MissingKeyError(InputError, MissingKeyPropertiesError):
    """A record without one of its stream's key properties."""


class InvalidRecordError(InputError, InvalidRecord):
    """A record that does not match its stream's schema."""

    def __init__(self, message: str) -> None:
        """Keep InvalidRecord's attributes without a record copy in the message."""
        InputError.__init__(self, message)
        self.error_message = message
        self.record: dict = {}
