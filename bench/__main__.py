"""``python -m bench [--quick]``: measure, print the table, write bench-results/latest.md.

Exits 1 when a figure misses its target or could not be measured, 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import subprocess
import sys
import time

from bench.plan import FULL, QUICK
from bench.procs import exclusive
from bench.report import at_most, render
from bench.run import REPO, Bench

BUDGET_SECONDS = 600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny run for development")
    parser.add_argument(
        "--target-records",
        type=int,
        default=None,
        help="compare the targets on the first N records of the captured file only",
    )
    parser.add_argument(
        "--max-rps",
        type=int,
        default=None,
        help="the tap's max_requests_per_second in the syncs (default: unset, the tap's own "
        "default for a live key)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.target_records:
        plan = dataclasses.replace(plan, target_records=args.target_records)
    if args.max_rps is not None:
        plan = dataclasses.replace(plan, max_requests_per_second=args.max_rps)

    with exclusive(REPO / "bench-results" / ".lock"):
        started = time.perf_counter()
        bench = Bench(plan)
        bench.run()
        elapsed = time.perf_counter() - started
    if not args.quick:
        measured = elapsed - bench.install_seconds
        figure = "Whole benchmark: wall time"
        if bench.install_seconds >= 1:
            figure += f" (less {bench.install_seconds:.0f}s of first installs)"
        bench.rows.append(at_most(figure, measured, BUDGET_SECONDS, "s", "make bench"))

    text = _document(bench, elapsed, quick=args.quick)
    out = REPO / "bench-results" / ("quick.md" if args.quick else "latest.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.replace("\0", ""))
    sys.stdout.write(_document(bench, elapsed, quick=args.quick, escape_pipes=False))
    print(f"\n(written to {out.relative_to(REPO)}; logs and files in {bench.work}/)")
    return 0 if all(row.passed is not False for row in bench.rows) else 1


def _document(bench: Bench, elapsed: float, *, quick: bool, escape_pipes: bool = True) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    title = "quick run (python -m bench --quick)" if quick else "make bench"
    lines = [
        f"# Benchmark: {title}",
        "",
        f"{now}, commit {commit or 'unknown'}, {os.cpu_count()} cores, "
        f"{elapsed:.0f}s in all. Commands run from the repository root.",
        "",
        render(bench.rows, escape_pipes=escape_pipes),
        "",
        *(f"- {note}" for note in bench.notes),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
