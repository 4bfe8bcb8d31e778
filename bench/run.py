"""The benchmark's phases, in order, each adding rows to the results table.

One simulator serves every phase that needs Stripe; its knobs change live between them
(300 ms and 100 requests/s for the syncs, 0 and no limit for the tap alone). The tap and
the target always run as real child processes from the repository root, with relative
paths, so every command in the table can be pasted into a shell there.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tap_stripe.capture import EVENTS_PATH
from tap_stripe.tables import TABLES

from bench import baseline, truth
from bench.procs import Finished, Stage, StepError, run_pipeline, shell
from bench.report import Row, at_least, at_most, failed, reference
from bench.singer_file import extract_records, truncate_records
from stripe_sim.config import SimConfig
from stripe_sim.runner import SimHandle, cli_args, run_simulator

REPO = Path(__file__).resolve().parents[1]
PYTHON = ".venv/bin/python"
TAP = ".venv/bin/tap-stripe"
TARGET = ".venv/bin/target-duckdb"
SCHEMA = "stripe"
MEMORY_LIMIT_MB = 400
# Peak memory may rise by this factor from the small run to the full one and still count
# as "not growing with the number of records" (the small run has ~10x fewer).
MEMORY_GROWTH_LIMIT = 1.25


def _stream_of_request(entry: dict[str, Any]) -> str:
    """The stream a request of the simulator's log was made for (from the tap's registry).

    ``/v1/events`` serves both the ``event`` table and the change capture of the tables
    with events, whose requests name their event types in ``type``/``types[]``.
    """
    path = entry["path"]
    query = parse_qs(entry["query"])
    types = set(query.get("type", []) + query.get("types[]", []))
    for table in TABLES:
        nested = {template.split("?")[0].split("/{")[0] for template in table.nested_lists.values()}
        if path == EVENTS_PATH and types and types <= set(table.event_types):
            return table.name
        if path == table.path and not (path == EVENTS_PATH and types):
            return table.name
        if path.startswith(table.path + "/") or path in nested:
            return table.name
    return path


_METRIC = re.compile(rb"METRIC: (\{.*\})")


@dataclass(frozen=True)
class Plan:
    """Sizes, knobs and time limits of one benchmark run."""

    charges: int
    small_days: int
    days: int = 1095
    latency_ms: int = 300
    rate_limit: int = 100
    max_requests_per_second: int = 90
    target_records: int | None = None
    timeout: float = 300.0
    repeats: int = 2
    work: Path = Path("bench-results/work")


@dataclass
class Bench:
    """Runs the phases and collects rows and notes."""

    plan: Plan
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # (run, process) -> (peak RSS in MB, records of that run)
    rss: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    # (run, process) -> resident size over the run, (seconds, MB) pairs
    timelines: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    # run -> the shell command that produced it
    commands: dict[str, str] = field(default_factory=dict)

    @property
    def work(self) -> Path:
        """Configs, logs and data of this run, relative to the repository root."""
        return self.plan.work

    def run(self) -> None:
        (REPO / self.work).mkdir(parents=True, exist_ok=True)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        self.notes.append(f"Load average before the run (1, 5, 15 min): {load}.")
        config = SimConfig(
            counts={"charge": self.plan.charges},
            days=self.plan.days,
            latency_ms=self.plan.latency_ms,
            rate_limit=self.plan.rate_limit,
            port=_free_port(),
        )
        sim_command = shell([PYTHON, "-m", "stripe_sim", *cli_args(config)])
        self.notes.append(f"Simulator (every phase but the target alone): `{sim_command} &`")
        started = time.perf_counter()
        with run_simulator(subprocess=True, **_sim_kwargs(config)) as sim:
            self._note_dataset(sim, time.perf_counter() - started)
            full = self._phase("Full sync", self._full_sync, sim)
            if full:
                self._phase("Second run", self._second_run, sim)
            self._phase("Small full sync", self._small_sync, sim)
            sim.set_knobs(latency_ms=0, rate_limit=0)
            self._phase("Tap alone", self._tap_alone, sim)
            captured = self._phase("Capture", self._capture, sim)
        if captured:
            self._phase("Target alone", self._target_alone)
        self._memory_rows()

    def _phase(self, name: str, phase: Callable[..., bool], *args: Any) -> bool:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            ok = phase(*args)
        except Exception as exc:  # one failed phase must not hide the others' figures
            self.rows.append(failed(name, "", str(exc), ""))
            ok = False
        print(f"bench: {name} took {time.perf_counter() - started:.1f}s", file=sys.stderr)
        return ok

    def _note_dataset(self, sim: SimHandle, seconds: float) -> None:
        counts = sim.info()["counts"][sim.account_id]
        self.notes.append(
            "Dataset (main account): "
            + ", ".join(f"{table} {n:,}" for table, n in sorted(counts.items()))
            + f"; {self.plan.days} days; generated and served after {seconds:.0f}s."
        )

    # -- phases ----------------------------------------------------------------------

    def _full_sync(self, sim: SimHandle) -> bool:
        rps = self.plan.max_requests_per_second
        tap_config = self._write("tap-full.json", _tap_config(sim, rps))
        db = self.work / "full.duckdb"
        target_config = self._write("target-full.json", _target_config(db))
        _remove_db(db)
        sim.reset_stats()
        finished, command = self._sync(tap_config, target_config, "full", state=None)
        stats = sim.stats()
        counts = truth.table_counts(REPO / db, SCHEMA)
        records = sum(counts.values())
        self._remember("full sync", finished, records)
        self.rows.append(
            at_least(
                f"Full sync (300 ms, 100 req/s; tap max_requests_per_second={rps}): "
                f"records/s ({records:,} records in {finished.seconds:.1f}s)",
                records / finished.seconds,
                8000,
                "rec/s",
                command,
            )
        )
        comparison = truth.compare(sim.objects("charge"), REPO / db, f"{SCHEMA}.charge")
        self.rows.append(
            Row(
                "Full sync: charge table = simulator truth (ids, count, checksum of "
                f"{len(truth.CHECKSUM_COLUMNS)} columns)",
                comparison.describe(),
                "equal",
                None,
                comparison.equal,
                command,
            )
        )
        total = stats["total"]
        limited = stats["by_status"].get("429", 0)
        share = 100 * limited / total if total else 0.0
        row = at_most("Full sync: requests answered 429", share, 1, "%", command, strict=True)
        self.rows.append(Row(row.figure, f"{share:.2f} % ({limited:,} of {total:,})", *_rest(row)))
        self.notes.append(
            f"Full sync requests: {total:,} in {finished.seconds:.1f}s = "
            f"{total / finished.seconds:.1f}/s (tap budget {rps}/s, simulator limit "
            f"{self.plan.rate_limit}/s); per-stream timings in {self.work}/full-tap.stderr."
        )
        expected = {table: len(sim.ids(table)) for table in counts}
        mismatched = {
            t: (counts.get(t, 0), n) for t, n in expected.items() if counts.get(t, 0) != n
        }
        if mismatched:
            self.notes.append(
                "Full sync tables whose row count differs from the simulator's after the "
                "run (loaded vs simulator; events also age out of the simulator's 30-day "
                "window while the run goes on): "
                + ", ".join(f"{t}: {a:,} vs {b:,}" for t, (a, b) in sorted(mismatched.items()))
            )
        return True

    def _second_run(self, sim: SimHandle) -> bool:
        state_lines = (REPO / self.work / "full.state.jsonl").read_text().strip().splitlines()
        if not state_lines:
            raise StepError("the target of the full sync emitted no state")
        state = self._write("state.json", json.loads(state_lines[-1]))
        sim.reset_stats()
        _, command = self._sync(
            self.work / "tap-full.json", self.work / "target-full.json", "second", state=state
        )
        stats = sim.stats(log=True)
        per_stream: dict[str, int] = {}
        for stream in map(_stream_of_request, stats["log"]):
            per_stream[stream] = per_stream.get(stream, 0) + 1
        if stats["total"] != len(stats["log"]):
            raise StepError("the simulator's request log of the second run is incomplete")
        worst = max(per_stream.values(), default=0)
        row = at_most("Second run, nothing new: requests per stream (most)", worst, 2, "", command)
        detail = ", ".join(f"{s} {n}" for s, n in sorted(per_stream.items()))
        self.rows.append(Row(row.figure, f"{worst} ({detail})", *_rest(row)))
        return True

    def _small_sync(self, sim: SimHandle) -> bool:
        now = datetime.datetime.now(datetime.UTC)
        start = now - datetime.timedelta(days=self.plan.small_days)
        tap = _tap_config(sim, self.plan.max_requests_per_second)
        tap["start_date"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        tap_config = self._write("tap-small.json", tap)
        db = self.work / "small.duckdb"
        target_config = self._write("target-small.json", _target_config(db))
        _remove_db(db)
        finished, command = self._sync(tap_config, target_config, "small", state=None)
        records = sum(truth.table_counts(REPO / db, SCHEMA).values())
        self._remember("small sync", finished, records)
        self.notes.append(
            f"Small full sync (start_date {self.plan.small_days} days back, same knobs): "
            f"{records:,} records in {finished.seconds:.1f}s: `{command}`"
        )
        return True

    def _tap_alone(self, sim: SimHandle) -> bool:
        tap_config = self._write("tap-nolimit.json", _tap_config(sim, 0))
        stderr = REPO / self.work / "tap-alone.stderr"
        argv = [TAP, "--config", str(tap_config)]
        finished = run_pipeline([Stage("tap", argv, stderr)], cwd=REPO, timeout=self.plan.timeout)
        records = _metric_records(stderr)
        self._remember("tap alone", finished, records, only="tap")
        self.commands["tap alone"] = shell(argv) + " > /dev/null"
        self.rows.append(
            at_least(
                f"Tap alone (latency 0, no limit, max_requests_per_second=0, stdout to "
                f"/dev/null): records/s ({records:,} in {finished.seconds:.1f}s)",
                records / finished.seconds,
                15000,
                "rec/s",
                shell(argv) + " > /dev/null",
            )
        )
        return True

    def _capture(self, sim: SimHandle) -> bool:
        argv = [TAP, "--config", str(self.work / "tap-nolimit.json")]
        run_pipeline(
            [Stage("tap", argv, REPO / self.work / "capture.stderr")],
            cwd=REPO,
            stdout=REPO / self.work / "tap-output.singer",
            timeout=self.plan.timeout,
        )
        out = self.work / "tap-output.singer"
        self.notes.append(f"Singer file for the target-alone runs: `{shell(argv)} > {out}`")
        return True

    def _target_alone(self) -> bool:
        singer_file = self.work / "tap-output.singer"
        if self.plan.target_records is not None:
            cut = self.work / f"tap-output-{self.plan.target_records}.singer"
            kept = truncate_records(REPO / singer_file, REPO / cut, self.plan.target_records)
            self.notes.append(
                f"The target-alone comparison uses the first {kept:,} records of the "
                f"captured file ({cut}), for the 10-minute budget."
            )
            singer_file = cut
        ndjson = self.work / "ndjson"
        counts = extract_records(REPO / singer_file, REPO / ndjson)
        records = sum(counts.values())

        ours_db = self.work / "target-alone.duckdb"
        ours_config = self._write("target-alone.json", _target_config(ours_db))
        base_exe = str(baseline.executable().relative_to(REPO))
        base_db = self.work / "baseline.duckdb"
        base_config = self._write("target-baseline.json", _target_config(base_db))
        json_argv = [
            PYTHON,
            "-m",
            "bench.readjson",
            str(ndjson),
            str(self.work / "readjson.duckdb"),
        ]
        # Interleaved rounds, best of each: load from other work on this machine then
        # slows all three alike, and the fastest round is the least disturbed one.
        ours_runs: list[Finished] = []
        base_runs: list[Finished] = []
        json_seconds: list[float] = []
        for _ in range(self.plan.repeats):
            ours, ours_command = self._load(TARGET, ours_config, ours_db, singer_file, "ours")
            ours_runs.append(ours)
            base, base_command = self._load(base_exe, base_config, base_db, singer_file, "baseline")
            base_runs.append(base)
            loaded = _run_json(json_argv, self.work / "readjson.stderr", self.plan.timeout)
            if loaded["records"] != records:
                raise StepError(f"read_json loaded {loaded['records']:,} of {records:,} records")
            json_seconds.append(loaded["seconds"])
        ours = min(ours_runs, key=lambda run: run.seconds)
        base = min(base_runs, key=lambda run: run.seconds)
        self._remember("target alone", ours, records, only="target")
        ours_rate = records / ours.seconds
        base_rate = records / base.seconds
        json_rate = records / min(json_seconds)
        self.rows.append(
            reference(
                f"Target alone, ours: records/s ({records:,} records, best of {self.plan.repeats})",
                f"{ours_rate:,.0f} rec/s ({_times(r.seconds for r in ours_runs)})",
                ours_command,
            )
        )
        self.rows.append(
            reference(
                "Target alone, target-duckdb 0.8.0 (duckdb 1.0.0): records/s",
                f"{base_rate:,.0f} rec/s ({_times(r.seconds for r in base_runs)}; peak RSS "
                f"{base.max_rss_mb['target']:,.0f} MB)",
                base_command,
            )
        )
        self.rows.append(
            reference(
                "Target alone, DuckDB read_json of the same records (load only): records/s",
                f"{json_rate:,.0f} rec/s ({_times(json_seconds)})",
                shell(json_argv),
            )
        )
        self.rows.append(
            at_least(
                "Target alone: ours / target-duckdb 0.8.0",
                ours_rate / base_rate,
                5,
                "x",
                "(ours and 0.8.0 above)",
            )
        )
        self.rows.append(
            at_least(
                "Target alone: ours / read_json",
                ours_rate / json_rate,
                0.5,
                "x",
                "(ours and read_json above)",
            )
        )
        return True

    # -- memory ----------------------------------------------------------------------

    def _memory_rows(self) -> None:
        for run, process in (
            ("full sync", "tap"),
            ("full sync", "target"),
            ("tap alone", "tap"),
            ("target alone", "target"),
        ):
            if (run, process) in self.rss:
                mb, records = self.rss[run, process]
                self.rows.append(
                    at_most(
                        f"Peak RSS of the {process}, {run} ({records:,} records)",
                        mb,
                        MEMORY_LIMIT_MB,
                        "MB",
                        self.commands[run],
                        strict=True,
                    )
                )
        for process in ("tap", "target"):
            quarters = _quarter_peaks(self.timelines.get(("full sync", process), []))
            if quarters:
                self.rows.append(
                    reference(
                        f"RSS of the {process} during the full sync: peak in each quarter "
                        "of the run",
                        " / ".join(f"{mb:,.0f}" for mb in quarters) + " MB",
                        self.commands["full sync"],
                    )
                )
        for process in ("tap", "target"):
            big = self.rss.get(("full sync", process))
            small = self.rss.get(("small sync", process))
            if big and small:
                self.rows.append(
                    at_most(
                        f"Peak RSS growth of the {process}: {big[1]:,} records "
                        f"({big[0]:,.0f} MB) vs {small[1]:,} ({small[0]:,.0f} MB)",
                        big[0] / small[0],
                        MEMORY_GROWTH_LIMIT,
                        "x",
                        self.commands["small sync"],
                    )
                )

    # -- helpers ---------------------------------------------------------------------

    def _remember(
        self, run: str, finished: Finished, records: int, only: str | None = None
    ) -> None:
        for process, mb in finished.max_rss_mb.items():
            if only is None or process == only:
                self.rss[run, process] = (mb, records)
                self.timelines[run, process] = finished.rss_samples.get(process, [])

    def _write(self, name: str, content: dict[str, Any]) -> Path:
        path = self.work / name
        (REPO / path).write_text(json.dumps(content, indent=2) + "\n")
        return path

    def _sync(
        self, tap_config: Path, target_config: Path, name: str, state: Path | None
    ) -> tuple[Finished, str]:
        tap = [TAP, "--config", str(tap_config)]
        if state is not None:
            tap += ["--state", str(state)]
        target = [TARGET, "--config", str(target_config)]
        out = self.work / f"{name}.state.jsonl"
        finished = run_pipeline(
            [
                Stage("tap", tap, REPO / self.work / f"{name}-tap.stderr"),
                Stage("target", target, REPO / self.work / f"{name}-target.stderr"),
            ],
            cwd=REPO,
            stdout=REPO / out,
            timeout=self.plan.timeout,
        )
        command = f"{shell(tap)} | {shell(target)} > {out}"
        self.commands[{"full": "full sync", "small": "small sync"}.get(name, name)] = command
        return finished, command

    def _load(
        self, exe: str, config: Path, db: Path, singer_file: Path, name: str
    ) -> tuple[Finished, str]:
        _remove_db(db)
        argv = [exe, "--config", str(config)]
        finished = run_pipeline(
            [Stage("target", argv, REPO / self.work / f"target-{name}.stderr")],
            cwd=REPO,
            stdin=REPO / singer_file,
            stdout=REPO / self.work / f"target-{name}.state.jsonl",
            timeout=self.plan.timeout * 2,
        )
        command = f"{shell(argv)} < {singer_file} > /dev/null"
        if name == "ours":
            self.commands["target alone"] = command
        return finished, command


def _quarter_peaks(samples: list[tuple[float, float]]) -> list[float]:
    """Peak of each quarter of ``samples`` (in time order); empty if too few samples."""
    if len(samples) < 8:
        return []
    size = len(samples) / 4
    return [max(mb for _, mb in samples[int(q * size) : int((q + 1) * size)]) for q in range(4)]


def _times(seconds: Iterable[float]) -> str:
    return ", ".join(f"{s:.1f}s" for s in seconds)


def _rest(row: Row) -> tuple[str, float | None, bool | None, str]:
    return row.target, row.ratio, row.passed, row.command


def _sim_kwargs(config: SimConfig) -> dict[str, Any]:
    return {
        "counts": config.counts,
        "days": config.days,
        "latency_ms": config.latency_ms,
        "rate_limit": config.rate_limit,
        "port": config.port,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tap_config(sim: SimHandle, max_requests_per_second: int) -> dict[str, Any]:
    return {
        "api_key": sim.api_key,
        "api_url": sim.url,
        "max_requests_per_second": max_requests_per_second,
    }


def _target_config(db: Path) -> dict[str, Any]:
    return {"path": str(db), "default_target_schema": SCHEMA}


def _remove_db(db: Path) -> None:
    for path in (REPO / db, REPO / db.with_name(db.name + ".wal")):
        path.unlink(missing_ok=True)


def _metric_records(stderr: Path) -> int:
    """Records the tap counted, from the SDK's ``record_count`` METRIC lines (deltas)."""
    total = 0
    for match in _METRIC.finditer((REPO / stderr).read_bytes()):
        point = json.loads(match.group(1))
        if point.get("metric") == "record_count":
            total += int(point.get("value", 0))
    return total


def _run_json(argv: list[str], stderr: Path, timeout: float) -> dict[str, Any]:
    out = stderr.with_suffix(".json")
    run_pipeline(
        [Stage(argv[2], argv, REPO / stderr)], cwd=REPO, stdout=REPO / out, timeout=timeout
    )
    return json.loads((REPO / out).read_text())
