"""The reference target: PyPI's ``target-duckdb==0.8.0`` in its own virtualenv.

Created on first use in ``bench/.venv-baseline``. DuckDB is pinned to 1.0.0, the oldest
release 0.8.0 accepts: from 1.1 on DuckDB refuses the bare-string ids (``"cus_..."``)
that 0.8.0 writes into its JSON columns for Stripe's expandable fields, so 0.8.0 cannot
load this tap's output with a newer DuckDB at all.
"""

from __future__ import annotations

from pathlib import Path

from bench.venvs import Venv

VENV = Venv("baseline", ("target-duckdb==0.8.0", "duckdb==1.0.0"))


def executable() -> Path:
    """Path of the baseline's ``target-duckdb``, installing it first if needed."""
    VENV.ensure()
    return VENV.bin("target-duckdb")
