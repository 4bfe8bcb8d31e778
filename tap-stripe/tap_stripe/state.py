"""The state a run starts from: its shape checked, unreadable entries dropped, and the
times that cannot be right (later than Stripe's clock) found.

A state file of the wrong shape stops the run: it is not this tap's state, and reading
every table again on a guess could be expensive. One stream's unreadable entry (a
bookmark that is not a number, an entry that is not an object) only costs a full re-read
of that table, which is always correct: the warning says so.
"""

from __future__ import annotations

import decimal
import logging
import math
from collections.abc import Mapping
from typing import Any

from tap_stripe.settings import InputError, kind

# Times on Stripe's clock (unix seconds): a value later than Stripe's clock hides every
# object created before it.
TIMES = ("replication_key_value", "events_cursor")
# Numbers the stream reads back; a value of another kind makes the entry unreadable.
NUMBERS = (*TIMES, "unfinished_table_version")
# What a table's reading keeps in its entry (``progress.py``).
PROGRESS_KEYS = ("replication_key", *NUMBERS, "written_tables")


def checked_state(state: object, source: str) -> dict[str, Any]:
    """``state`` if it has the shape of a Singer state, else an error naming ``source``."""
    if not isinstance(state, dict):
        raise InputError(
            f'{source}: not a JSON object but {kind(state)} (expected {{"bookmarks": {{...}}}})'
        )
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise InputError(
            f'{source}: "bookmarks" is {kind(bookmarks)}, expected an object with an entry '
            "per stream"
        )
    return state


def _number(value: object) -> int | None:
    """``value`` as whole seconds (or milliseconds), ``None`` when it is no finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return None
    if isinstance(value, int):
        return value
    return int(value) if math.isfinite(value) else None


def _entry_problem(entry: object) -> str | None:
    """What makes one stream's state entry unreadable, if anything."""
    if not isinstance(entry, dict):
        return f"is {kind(entry)}, not an object"
    for key in NUMBERS:
        value = entry.get(key)
        if value is not None and _number(value) is None:
            return f"has a {key} that is {kind(value)}, not a finite number"
    return None


def _whole_numbers(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _number(value) if key in NUMBERS and value is not None else value
        for key, value in entry.items()
    }


def usable_state(state: Mapping[str, Any], logger: logging.Logger) -> dict[str, Any]:
    """A copy of ``state`` without the entries that cannot be read (each logged: its
    table is read in full, for its account), numbers made whole (a JSON file's decimals).

    A stream's entry holds one entry per account in ``partitions`` (the SDK's, each with
    its ``context``: ``{"_stripe_account": "acct_..."}``).
    """
    bookmarks: dict[str, Any] = {}
    for stream, entry in state.get("bookmarks", {}).items():
        problem = _entry_problem(entry)
        if problem is not None:
            logger.warning(
                "stream '%s': its state entry %s; reading the whole table instead", stream, problem
            )
            continue
        usable = _whole_numbers(entry)
        partitions = entry.get("partitions")
        if partitions is not None:
            usable["partitions"] = _usable_partitions(stream, partitions, logger)
        bookmarks[stream] = usable
    return {**state, "bookmarks": bookmarks}


def _usable_partitions(stream: str, partitions: object, logger: logging.Logger) -> list:
    if not isinstance(partitions, list):
        logger.warning(
            "stream '%s': its state's partitions are %s, not a list; reading the whole "
            "table for every account instead",
            stream,
            kind(partitions),
        )
        return []
    usable = []
    for partition in partitions:
        context = partition.get("context") if isinstance(partition, dict) else None
        problem = _entry_problem(partition)
        if problem is None and not isinstance(context, dict):
            problem = "has no context object"
        if problem is not None:
            logger.warning(
                "stream '%s': a state entry of one account %s; reading the whole table "
                "for that account instead",
                stream,
                problem,
            )
            continue
        usable.append(_whole_numbers(partition))
    return usable


def inherit_one_account_state(stream_state: dict[str, Any], entry: dict[str, Any]) -> None:
    """Move a state written before states were kept per account (its progress at the
    stream's top level) into ``entry``, the first account's, unless that has its own."""
    if any(key in entry for key in PROGRESS_KEYS):
        return
    for key in PROGRESS_KEYS:
        if key in stream_state:
            entry[key] = stream_state.pop(key)


def times_after(entry: Mapping[str, Any], now: float) -> dict[str, int]:
    """The times of a stream's state entry later than ``now``."""
    late = {}
    for key in TIMES:
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > now:
            late[key] = value
    return late
