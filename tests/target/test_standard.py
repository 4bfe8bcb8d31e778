"""The singer-sdk standard target tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

from singer_sdk.testing import get_target_test_class
from target_duckdb.target import TargetDuckDB

_DIRECTORY = Path(tempfile.mkdtemp(prefix="target-duckdb-standard-"))

TestTargetDuckDB = get_target_test_class(
    TargetDuckDB,
    config={"path": str(_DIRECTORY / "standard.duckdb"), "lock_timeout_seconds": 0},
)
