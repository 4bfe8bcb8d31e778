"""The reference target: PyPI's ``target-duckdb==0.8.0`` in its own virtualenv.

Created on first use in ``bench/.venv-baseline`` (ignored by git through ``.venv-*/``).
DuckDB is pinned to 1.0.0, the oldest release 0.8.0 accepts: from 1.1 on DuckDB refuses
the bare-string ids (``"cus_..."``) that 0.8.0 writes into its JSON columns for Stripe's
expandable fields, so 0.8.0 cannot load this tap's output with a newer DuckDB at all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGES = ("target-duckdb==0.8.0", "duckdb==1.0.0")
VENV = Path(__file__).resolve().parent / ".venv-baseline"


def executable() -> Path:
    """Path of the baseline's ``target-duckdb``, installing it first if needed."""
    target = VENV / "bin" / "target-duckdb"
    stamp = VENV / ".bench-installed"
    wanted = "\n".join(PACKAGES)
    if target.exists() and stamp.exists() and stamp.read_text() == wanted:
        return target
    print(f"bench: installing {', '.join(PACKAGES)} into {VENV}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *PACKAGES],
        check=True,
    )
    stamp.write_text(wanted)
    return target
