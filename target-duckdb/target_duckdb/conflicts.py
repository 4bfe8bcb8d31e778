"""Writers of one DuckLake that commit at the same time, and the retry of the one that loses.

DuckLake's concurrency is optimistic: each transaction works on the snapshot it began on,
and its COMMIT fails when a transaction committed meanwhile changed what it changed (both
deleted or updated rows of one table, both created one table, both altered one). DuckLake
resolves the harmless cases itself (two appends to a table). The loser's transaction is
gone; `retrying` runs the whole of it again on the new snapshot, after a jittered backoff
(writers that collided once should not collide again at once), up to `MAX_ATTEMPTS`, with
one log line per retry. What it commits (a flush's batches and its state) is kept by the
caller until then, so a retry loads the same records and saves the same state.
"""

from __future__ import annotations

import logging
import random
import time
import typing as t
from collections.abc import Callable

import duckdb

from target_duckdb.errors import DatabaseError

MAX_ATTEMPTS = 12
FIRST_DELAY = 0.05
MAX_DELAY = 2.0

logger = logging.getLogger("target-duckdb")

T = t.TypeVar("T")


class Conflict(Exception):
    """DuckDB refused a commit because another writer committed a conflicting change."""


class ConflictError(DatabaseError):
    """A commit that still conflicted after `MAX_ATTEMPTS` attempts."""


# DuckLake's words for a commit another writer's commit refused: a conflict it names, or
# its catalog's commit failing under a concurrent one (no reason given, seen under load).
CONFLICT_WORDS = ("conflict", "failed to commit ducklake transaction")


def is_conflict(error: duckdb.Error) -> bool:
    """Whether `error` is a commit refused for another writer's change."""
    message = str(error).lower()
    return isinstance(error, duckdb.TransactionException) and any(
        words in message for words in CONFLICT_WORDS
    )


def reason(error: duckdb.Error) -> str:
    """The line of a conflict's message that says what collided (DuckDB's first line says
    only that the commit failed)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if "conflict" in line.lower()), lines[0] if lines else "")


def retrying(
    attempt: Callable[[], T],
    what: str,
    *,
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`attempt()`, run again (a fresh transaction each time) while it raises Conflict."""
    for number in range(1, attempts):
        try:
            return attempt()
        except Conflict as conflict:
            # Full jitter: uniform in [0, the exponential step).
            delay = random.uniform(0, min(MAX_DELAY, FIRST_DELAY * 2 ** (number - 1)))
            logger.info(
                "%s conflicted with another writer (attempt %d of %d); retrying in %.2fs: %s",
                what,
                number,
                attempts,
                delay,
                conflict,
            )
            sleep(delay)
    try:
        return attempt()
    except Conflict as conflict:
        raise ConflictError(
            f"{what} still conflicted with another writer after {attempts} attempts: {conflict}"
        ) from conflict
