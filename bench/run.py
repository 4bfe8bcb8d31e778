"""The benchmark's phases, in order, each adding rows to the results table.

One simulator serves every phase that needs Stripe, with Stripe's live limits on (a live
key: 100 requests/s for the account, 25/s per endpoint) and 300 ms per request; its knobs
change live between phases (no limits and no latency for the tap alone). The tap and the
target always run as real child processes from the repository root, with relative
paths, so every command in the table can be pasted into a shell there.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import baseline
from bench.endpoints import Requests
from bench.peer_phase import PeerPhase
from bench.peers import PEERS, count_records
from bench.plan import Plan
from bench.procs import Finished, Stage, StepError, run_pipeline, shell
from bench.report import Row, at_least, at_most, failed, reference
from bench.singer_file import extract_records, truncate_records
from bench.truth import TableVerdict
from bench.warehouse import table_counts
from stripe_sim.config import SimConfig
from stripe_sim.runner import SimHandle, cli_args, run_simulator

REPO = Path(__file__).resolve().parents[1]
PYTHON = ".venv/bin/python"
TAP = ".venv/bin/tap-stripe"
TARGET = ".venv/bin/target-duckdb"
SCHEMA = "stripe"
MEMORY_LIMIT_MB = 400
# Peak memory may rise by this factor from the small run to the full one and still count
# as "not growing with the size of the account" (the small run has ~10x fewer records).
MEMORY_GROWTH_LIMIT = 1.25
# The full sync's records/s against the ceiling Stripe's limits allow.
CEILING_GOAL = 0.9
# A quiet run (nothing new) may make a request per table and two more.
QUIET_EXTRA_REQUESTS = 2


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
    # seconds this run spent installing the reference virtualenvs (not benchmarked)
    install_seconds: float = 0.0

    @property
    def work(self) -> Path:
        """Configs, logs and data of this run, relative to the repository root."""
        return self.plan.work

    def run(self) -> None:
        (REPO / self.work).mkdir(parents=True, exist_ok=True)
        self._install()
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        self.notes.append(f"Load average before the run (1, 5, 15 min): {load}.")
        config = SimConfig(
            counts=dict(self.plan.counts),
            days=self.plan.days,
            latency_ms=self.plan.latency_ms,
            limits=True,
            api_key=self.plan.api_key,
            port=_free_port(),
        )
        sim_command = shell([PYTHON, "-m", "stripe_sim", *cli_args(config)])
        self.notes.append(f"Simulator (every phase but the target alone): `{sim_command} &`")
        started = time.perf_counter()
        with run_simulator(subprocess=True, **_sim_kwargs(config)) as sim:
            self._note_dataset(sim, time.perf_counter() - started)
            if self._phase("Full sync", self._full_sync, sim):
                self._phase("Quiet run", self._quiet_run, sim)
                checking = self._start_truth(sim)
                self._phase("Small full sync", self._small_sync, sim)
                self._phase("Truth", self._truth, checking)
            else:
                self._phase("Small full sync", self._small_sync, sim)
            self._phase("Peers", self._peers, sim)
            sim.set_knobs(latency_ms=0, limits=False)
            captured = self._phase("Tap alone", self._tap_alone, sim)
        if captured:
            self._phase("Target alone", self._target_alone)
        self._memory_rows()

    def _install(self) -> None:
        """The reference virtualenvs, before anything is timed; a first install's time is
        reported, and left out of the benchmark's own."""
        started = time.perf_counter()
        venvs = [baseline.VENV, *(peer.venv for peer in PEERS)]
        first = {venv.name: venv.ensure() for venv in venvs}
        self.install_seconds = time.perf_counter() - started
        self.notes.append(
            "First install of each reference virtualenv (created on first use, then "
            "cached): "
            + ", ".join(
                f"bench/.venv-{name} {'not recorded' if s is None else f'{s:.0f}s'}"
                for name, s in first.items()
            )
            + f"; {self.install_seconds:.0f}s spent installing in this run."
        )

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
            + f"; {self.plan.days} days, events of the last 30; generated and served after "
            f"{seconds:.0f}s."
        )

    # -- phases ----------------------------------------------------------------------

    def _full_sync(self, sim: SimHandle) -> bool:
        tap_config = self._write("tap-full.json", self._tap_config(sim))
        db = self.work / "full.duckdb"
        target_config = self._write("target-full.json", _target_config(db))
        _remove_db(db)
        sim.reset_stats()
        finished, command = self._sync(tap_config, target_config, "full", state=None)
        requests = Requests.of(sim.stats(log=True))
        counts = table_counts(REPO / db, SCHEMA)
        records = sum(counts.values())
        self._remember("full sync", finished, records)
        knobs = sim.info()["knobs"]
        global_rate, endpoint_rate = knobs["live_rate"], knobs["endpoint_rate"]
        ceiling = requests.ceiling_seconds(global_rate, endpoint_rate)
        busiest, busiest_count = requests.busiest()
        answered = sum(requests.answered.values())
        rate = records / finished.seconds
        self.rows.append(
            reference(
                f"Full sync, {len(counts)} tables (300 ms, Stripe's live limits, the tap's "
                f"defaults): records/s ({records:,} records in {finished.seconds:.1f}s)",
                f"{rate:,.0f} rec/s",
                command,
            )
        )
        self.rows.append(
            at_least(
                f"Full sync: records/s / the ceiling of Stripe's limits ({records / ceiling:,.0f}"
                f" rec/s = {records:,} records in {ceiling:.1f}s: max({answered:,} answered "
                f"requests / {global_rate:g}/s, the busiest endpoint's {busiest_count:,} "
                f"({busiest}) / {endpoint_rate:g}/s))",
                finished.seconds and ceiling / finished.seconds,
                CEILING_GOAL,
                "x",
                command,
            )
        )
        share = 100 * requests.refused_share
        row = at_most("Full sync: requests answered 429", share, 1, "%", command, strict=True)
        shown = f"{share:.2f} % ({requests.refused:,} of {requests.total:,})"
        self.rows.append(dataclasses.replace(row, value=shown))
        self.rows.append(reference("Full sync: requests", requests.describe(5), command))
        self.notes.append(
            f"Full sync: {requests.total:,} requests in {finished.seconds:.1f}s = "
            f"{requests.total / finished.seconds:.1f}/s; the tap's log in "
            f"{self.work}/full-tap.stderr."
        )
        return True

    def _quiet_run(self, sim: SimHandle) -> bool:
        state_lines = (REPO / self.work / "full.state.jsonl").read_text().strip().splitlines()
        if not state_lines:
            raise StepError("the target of the full sync emitted no state")
        state = self._write("state.json", json.loads(state_lines[-1]))
        tables = len(table_counts(REPO / self.work / "full.duckdb", SCHEMA))
        sim.reset_stats()
        _, command = self._sync(
            self.work / "tap-full.json", self.work / "target-full.json", "quiet", state=state
        )
        requests = Requests.of(sim.stats(log=True))
        goal = tables + QUIET_EXTRA_REQUESTS
        row = at_most(
            f"Quiet run (the full sync's state, nothing new): requests (goal: {tables} "
            f"tables + {QUIET_EXTRA_REQUESTS})",
            requests.total,
            goal,
            "",
            command,
        )
        self.rows.append(dataclasses.replace(row, value=requests.describe(5)))
        return True

    def _start_truth(self, sim: SimHandle) -> tuple[subprocess.Popen[bytes], list[str], Path]:
        """``bench.truth`` on the full sync's warehouse, in the background: the small sync
        writes another file, and its figure (memory) does not mind the CPU shared."""
        argv = [PYTHON, "-m", "bench.truth", str(self.work / "full.duckdb"), "--sim", sim.url]
        out = self.work / "truth.jsonl"
        with open(REPO / out, "wb") as sink, open(REPO / self.work / "truth.stderr", "wb") as err:
            process = subprocess.Popen(argv, cwd=REPO, stdout=sink, stderr=err)
        return process, argv, out

    def _truth(self, checking: tuple[subprocess.Popen[bytes], list[str], Path]) -> bool:
        process, argv, out = checking
        process.wait(timeout=self.plan.timeout)
        verdicts = [
            TableVerdict(**{k: v for k, v in json.loads(line).items() if k != "equal"})
            for line in (REPO / out).read_text().splitlines()
        ]
        if not verdicts:
            raise StepError(f"bench.truth wrote nothing (log: {self.work}/truth.stderr)")
        different = [verdict for verdict in verdicts if not verdict.equal]
        rows = sum(verdict.rows for verdict in verdicts)
        aged = sum(verdict.aged for verdict in verdicts)
        value = f"{len(verdicts) - len(different)} of {len(verdicts)} tables equal ({rows:,} rows"
        value += f"; {aged} events aged out of the 30-day window excused)" if aged else ")"
        if different:
            value += "; DIFFERENT: " + ", ".join(verdict.describe() for verdict in different)
        self.rows.append(
            Row(
                "Full sync then quiet run: every table = the simulator's truth (keys, every "
                "field, nested lists complete)",
                value,
                "equal",
                None,
                not different,
                shell(argv),
            )
        )
        return True

    def _small_sync(self, sim: SimHandle) -> bool:
        now = datetime.datetime.now(datetime.UTC)
        start = now - datetime.timedelta(days=self.plan.small_days)
        tap = self._tap_config(sim)
        tap["start_date"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        tap_config = self._write("tap-small.json", tap)
        db = self.work / "small.duckdb"
        target_config = self._write("target-small.json", _target_config(db))
        _remove_db(db)
        finished, command = self._sync(tap_config, target_config, "small", state=None)
        records = sum(table_counts(REPO / db, SCHEMA).values())
        self._remember("small sync", finished, records)
        self.notes.append(
            f"Small full sync (start_date {self.plan.small_days} days back, same knobs): "
            f"{records:,} records in {finished.seconds:.1f}s: `{command}`"
        )
        return True

    def _peers(self, sim: SimHandle) -> bool:
        phase = PeerPhase(sim, REPO, self.work, self.plan.peer_seconds, self.plan.days)
        phase.run(TAP)
        self.rows.extend(phase.rows)
        self.notes.extend(phase.notes)
        return True

    def _tap_alone(self, sim: SimHandle) -> bool:
        """The tap with nothing to wait for; its output is also the target-alone input."""
        tap_config = self._write(
            "tap-nolimit.json",
            {
                **self._tap_config(sim),
                "max_requests_per_second": 0,
                "max_requests_per_second_per_endpoint": 0,
            },
        )
        stderr = REPO / self.work / "tap-alone.stderr"
        out = self.work / "tap-output.singer"
        argv = [TAP, "--config", str(tap_config)]
        finished = run_pipeline(
            [Stage("tap", argv, stderr)],
            cwd=REPO,
            stdout=REPO / out,
            timeout=self.plan.timeout,
        )
        records = sum(count_records(REPO / out).values())
        self._remember("tap alone", finished, records, only="tap")
        command = f"{shell(argv)} > {out}"
        self.commands["tap alone"] = command
        self.rows.append(
            at_least(
                f"Tap alone (latency 0, no limits, both budgets 0, stdout to a "
                f"file): records/s ({records:,} in {finished.seconds:.1f}s)",
                records / finished.seconds,
                15000,
                "rec/s",
                command,
            )
        )
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

    def _tap_config(self, sim: SimHandle) -> dict[str, Any]:
        """The tap's settings: the simulator, and its defaults unless ``--max-rps``."""
        config: dict[str, Any] = {"api_key": sim.api_key, "api_url": sim.url}
        if self.plan.max_requests_per_second is not None:
            config["max_requests_per_second"] = self.plan.max_requests_per_second
        return config

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


def _sim_kwargs(config: SimConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _target_config(db: Path) -> dict[str, Any]:
    return {"path": str(db), "default_target_schema": SCHEMA}


def _remove_db(db: Path) -> None:
    for path in (REPO / db, REPO / db.with_name(db.name + ".wal")):
        path.unlink(missing_ok=True)


def _run_json(argv: list[str], stderr: Path, timeout: float) -> dict[str, Any]:
    out = stderr.with_suffix(".json")
    run_pipeline(
        [Stage(argv[2], argv, REPO / stderr)], cwd=REPO, stdout=REPO / out, timeout=timeout
    )
    return json.loads((REPO / out).read_text())
