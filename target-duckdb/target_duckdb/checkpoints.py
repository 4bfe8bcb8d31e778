"""When a DuckDB file is checkpointed: by the target after a commit, not by DuckDB inside it.

Measured with DuckDB 1.5.5 at the default memory_limit (128 MB) on the tap's 60 tables
(1,514 columns): a row appended to a table that has checkpointed rows holds a 256 KB block
for its column and another for the column's validity until the next checkpoint, so a WAL
of small flushes into every table holds about 500 MB, which the checkpoint reads back and
rewrites; it needed about 90 MB beyond what DuckDB could not spill (a file and WAL whose
checkpoint failed at 128 MB passed at 136 MB). DuckDB runs that checkpoint inside the
COMMIT that takes the WAL past its threshold, and when it runs out of memory DuckDB
invalidates the database although the COMMIT itself was durable.

So DuckDB's automatic checkpoint is off, and once a commit takes the WAL past `WAL_BYTES`
(DuckDB's own threshold) the target checkpoints with memory_limit multiplied by
`MEMORY_FACTOR` for the checkpoint alone. A checkpoint that fails even so loses nothing:
every commit is in the WAL. The session then opens the file again (DuckDB replays the
WAL) and goes on; the next attempt waits for another `WAL_BYTES` of WAL.

A quarter more than the limit, not double: that checkpoint passed at 136 MB of 128, and the
target's peak RSS comes during checkpoints (the benchmark's full sync: 376-423 MB with the
limit doubled, 315 MB with a quarter more).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import duckdb

from target_duckdb.connection import first_line

WAL_BYTES = 16 * 1024 * 1024
MEMORY_FACTOR = 1.25
# DuckDB's threshold for its own checkpoint, set beyond any WAL a run writes.
AUTOMATIC_THRESHOLD = "1000TB"
# memory_limit as DuckDB shows it: "122.0 MiB".
_SIZE = re.compile(r"(?P<number>[0-9.]+)\s*(?P<unit>[A-Za-z]*)")

logger = logging.getLogger("target-duckdb")


class Checkpoints:
    """The checkpoints of one DuckDB file, run after the commits that make them due."""

    def __init__(self, path: str) -> None:
        """Checkpoints of the file at `path` (its WAL is `<path>.wal`)."""
        self._wal = Path(str(Path(path).expanduser()) + ".wal")
        self._due = WAL_BYTES

    @staticmethod
    def take_over(connection: duckdb.DuckDBPyConnection) -> None:
        """Turn DuckDB's automatic checkpoint off on `connection` (a new one after a
        reopen too): the target runs them."""
        connection.execute(f"SET checkpoint_threshold = '{AUTOMATIC_THRESHOLD}'")

    def wal_bytes(self) -> int:
        """The WAL's size: what a checkpoint would write into the file."""
        try:
            return self._wal.stat().st_size
        except FileNotFoundError:
            return 0

    @property
    def due(self) -> bool:
        """Whether the WAL has grown enough since the file was last checkpointed."""
        return self.wal_bytes() >= self._due

    def run(self, connection: duckdb.DuckDBPyConnection) -> bool:
        """CHECKPOINT with the memory limit raised for it; False when it failed, which left
        the database invalidated: the caller opens it again."""
        limit = connection.execute("SELECT current_setting('memory_limit')").fetchone()
        match = _SIZE.fullmatch(str(limit[0]).strip()) if limit else None
        try:
            if match:
                raised = float(match["number"]) * MEMORY_FACTOR
                connection.execute(f"SET memory_limit = '{raised:.1f}{match['unit']}'")
            connection.execute("CHECKPOINT")
            if match:
                connection.execute(f"SET memory_limit = '{limit[0]}'")
        except duckdb.Error as error:
            wal = self.wal_bytes()
            self._due = wal + WAL_BYTES
            logger.warning(
                "Checkpointing the DuckDB file failed; nothing is lost (every commit is in "
                "its %d MB of WAL, which DuckDB replays when it opens the file): %s",
                wal >> 20,
                first_line(error),
            )
            return False
        self._due = WAL_BYTES
        return True
