"""`make demo` / `make run`: `meltano run tap-stripe target-duckdb`, then what landed.

--simulator starts the local Stripe simulator on a free port, copies it into
.demo/warehouse.duckdb from scratch (Meltano environment `demo`, so its state never mixes
with real runs) and stops it, also when the run fails. --stripe copies the Stripe account
of STRIPE_API_KEY into warehouse.duckdb incrementally (environment `dev`; STRIPE_API_URL
overrides Stripe's URL, e.g. for a proxy). Both go through the same functions; only the
URL, key, file and environment differ.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

# Run by path (`python scripts/demo.py`), so the repo root, home of the simulator package
# `stripe_sim`, is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stripe_sim.config import API_KEY
from stripe_sim.runner import SimulatorStartError, run_simulator

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "stripe"
STRIPE_API_URL = "https://api.stripe.com"
EXAMPLE_TITLE = (
    "Invoices by status and their line items, from the JSON column `lines` "
    "(Stripe embeds 10 lines at most; the tap completes the list)"
)
EXAMPLE_QUERY = f"""
select status,
       count(*) as invoices,
       sum(json_array_length(lines->'$.data')) as lines,
       max(json_array_length(lines->'$.data')) as most_lines,
       round(sum(amount_due) / 100, 2) as amount_due
from {SCHEMA}.invoice
group by status
order by invoices desc, status
"""


class DemoError(Exception):
    """Something the user can fix; reported as one line."""


@dataclass(frozen=True)
class Target:
    """Where one run reads from and writes to."""

    api_url: str
    api_key: str
    database: Path
    environment: str
    full_refresh: bool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--simulator", action="store_true", help="read the local simulator")
    mode.add_argument("--stripe", action="store_true", help="read Stripe (STRIPE_API_KEY)")
    parser.add_argument("--project-dir", type=Path, default=REPO_ROOT, help="Meltano project")
    parser.add_argument(
        "--meltano",
        type=Path,
        default=Path(os.environ.get("MELTANO_BIN") or REPO_ROOT / ".venv-meltano/bin/meltano"),
        help="the meltano executable",
    )
    return parser.parse_args(argv)


@contextmanager
def simulator() -> Iterator[str]:
    """Run the simulator in its own process (``stripe_sim.runner``); yield its URL."""
    try:
        with run_simulator(subprocess=True) as sim:
            print(f"Stripe simulator listening on {sim.url}", flush=True)
            yield sim.url
    except SimulatorStartError as error:
        raise DemoError(f"the Stripe simulator did not start ({error})") from error


def meltano_run(meltano: Path, project: Path, target: Target) -> None:
    """`meltano run tap-stripe target-duckdb`, configured through environment variables."""
    if not meltano.exists():
        raise DemoError(f"Meltano not found at {meltano}: run `make install-meltano`")
    env = {
        **os.environ,
        "MELTANO_ENVIRONMENT": target.environment,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_STRIPE_API_URL": target.api_url,
        "TAP_STRIPE_API_KEY": target.api_key,
        "TARGET_DUCKDB_PATH": str(target.database),
    }
    command = [str(meltano), "run"]
    if target.full_refresh:
        command.append("--full-refresh")
    command += ["tap-stripe", "target-duckdb"]
    started = time.monotonic()
    result = subprocess.run(command, cwd=project, env=env, check=False)
    if result.returncode != 0:
        raise DemoError(f"meltano run failed (exit {result.returncode}); its log is above")
    print(f"meltano run took {time.monotonic() - started:.1f} s", flush=True)


def print_table(title: str, header: list[str], rows: list[tuple]) -> None:
    cells = [header, *([("" if value is None else str(value)) for value in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for row in cells:
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def summarize(database: Path) -> None:
    """Each table's row count and one query over a JSON column."""
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "select table_name from information_schema.tables "
            "where table_schema = ? and not starts_with(table_name, '_') order by 1",
            [SCHEMA],
        ).fetchall()
        counts = [
            (table, connection.execute(f'select count(*) from {SCHEMA}."{table}"').fetchall()[0][0])
            for (table,) in tables
        ]
        print_table(f"Rows in {database} (schema {SCHEMA})", ["table", "rows"], counts)
        if any(table == "invoice" for table, _ in counts):
            result = connection.execute(EXAMPLE_QUERY)
            header = [column[0] for column in result.description]
            print_table(EXAMPLE_TITLE, header, result.fetchall())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    project = args.project_dir.resolve()
    try:
        if args.stripe:
            key = os.environ.get("STRIPE_API_KEY", "").strip()
            if not key:
                raise DemoError(
                    "STRIPE_API_KEY is not set: export your Stripe secret or restricted key "
                    "(sk_live_..., rk_live_...) and run `make run` again"
                )
            url = os.environ.get("STRIPE_API_URL") or STRIPE_API_URL
            target = Target(url, key, project / "warehouse.duckdb", "dev", False)
            source: AbstractContextManager[str] = nullcontext(url)
        else:
            database = project / ".demo" / "warehouse.duckdb"
            for stale in (database, database.with_name(database.name + ".wal")):
                stale.unlink(missing_ok=True)
            target = Target("", API_KEY, database, "demo", True)
            source = simulator()
        with source as url:
            meltano_run(args.meltano, project, replace(target, api_url=url))
        summarize(target.database)
        return 0
    except DemoError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 1
    except duckdb.Error as error:
        first_line = str(error).strip().splitlines()[0]
        print(f"demo: error: cannot read {target.database}: {first_line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
