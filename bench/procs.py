"""Child processes timed by wall clock, with each one's peak memory.

Each stage runs under ``bench.measure``, which waits for it with ``os.wait4`` and records
its own ``ru_maxrss``: the peak resident memory of exactly that process (tap or target),
not of the benchmark or of the other end of the pipe.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class StepError(RuntimeError):
    """A child process failed or ran out of time; the message names it and quotes stderr."""


@dataclass(frozen=True)
class Stage:
    """One process of a pipeline: a short name, its argv, where its stderr goes and its
    environment (None: the benchmark's)."""

    name: str
    argv: Sequence[str]
    stderr: Path
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Finished:
    """Wall time of the whole pipeline, each stage's peak RSS in MB and RSS samples.

    ``rss_samples`` holds ``(seconds, MB)`` pairs per stage, a quarter second apart;
    ``capped``: the pipeline was stopped when its time was up (see :func:`run_pipeline`).
    """

    seconds: float
    max_rss_mb: dict[str, float]
    rss_samples: dict[str, list[tuple[float, float]]]
    capped: bool = False


def shell(argv: Sequence[str]) -> str:
    """``argv`` as a copy-pasteable shell command."""
    return shlex.join(argv)


def run_pipeline(
    stages: Sequence[Stage],
    *,
    cwd: Path,
    stdin: Path | None = None,
    stdout: Path | None = None,
    timeout: float,
    cap: float | None = None,
) -> Finished:
    """Run ``stages`` piped into each other; raise :class:`StepError` if any fails.

    ``cap``: stop the stages (SIGTERM) after that many seconds and return what they did,
    ``capped``, instead of failing: for a peer that is measured over a fixed time.
    """
    procs: list[subprocess.Popen[bytes]] = []
    opened = []
    try:
        source = open(stdin, "rb") if stdin else subprocess.DEVNULL  # noqa: SIM115
        sink = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
        opened = [f for f in (source, sink) if not isinstance(f, int)]
        started = time.perf_counter()
        upstream = source
        for index, stage in enumerate(stages):
            last = index == len(stages) - 1
            _rusage_file(stage).unlink(missing_ok=True)  # no earlier run's figures
            with open(stage.stderr, "wb") as err:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.measure",
                        str(_rusage_file(stage)),
                        "--",
                        *list(stage.argv),
                    ],
                    cwd=cwd,
                    start_new_session=True,
                    env=None if stage.env is None else dict(stage.env),
                    stdin=upstream,
                    stdout=sink if last else subprocess.PIPE,
                    stderr=err,
                )
            if procs and procs[-1].stdout is not None:
                procs[-1].stdout.close()  # only the next stage holds the pipe's read end
            procs.append(proc)
            upstream = proc.stdout if proc.stdout is not None else subprocess.DEVNULL
        return _wait_all(stages, procs, started, timeout, cap)
    finally:
        for proc in procs:
            if proc.poll() is None and proc.returncode is None:
                _kill(proc)
        for f in opened:
            f.close()


def _wait_all(
    stages: Sequence[Stage],
    procs: Sequence[subprocess.Popen[bytes]],
    started: float,
    timeout: float,
    cap: float | None,
) -> Finished:
    timed_out = threading.Event()
    capped = threading.Event()

    def expire() -> None:
        timed_out.set()
        for proc in procs:
            _kill(proc)

    def stop() -> None:
        capped.set()
        for proc in procs:
            _kill(proc, signal.SIGTERM)

    timer = threading.Timer(timeout, expire)
    timer.start()
    stopper = threading.Timer(cap, stop) if cap is not None else None
    if stopper is not None:
        stopper.start()
    rss: dict[str, float] = {}
    samples: dict[str, list[tuple[float, float]]] = {}
    codes: dict[str, int] = {}
    try:
        for stage, proc in zip(stages, procs, strict=True):
            codes[stage.name] = proc.wait()
    finally:
        timer.cancel()
        if stopper is not None:
            stopper.cancel()
    seconds = time.perf_counter() - started
    for stage in stages:
        if codes[stage.name] == 0 or (capped.is_set() and _rusage_file(stage).exists()):
            usage = json.loads(_rusage_file(stage).read_text())
            rss[stage.name] = usage["max_rss_kb"] / 1024
            samples[stage.name] = [(t, kb / 1024) for t, kb in usage["rss_kb"]]
    if timed_out.is_set():
        raise StepError(f"{' | '.join(s.name for s in stages)} timed out after {timeout:.0f}s")
    if capped.is_set():
        return Finished(seconds, rss, samples, capped=True)
    for stage in stages:
        if codes[stage.name] != 0:
            raise StepError(
                f"{stage.name} exited {codes[stage.name]}: {_tail(stage.stderr)} "
                f"(log: {stage.stderr})"
            )
    return Finished(seconds, rss, samples)


def _rusage_file(stage: Stage) -> Path:
    return stage.stderr.with_suffix(".rusage.json")


def _kill(proc: subprocess.Popen[bytes], signum: int = signal.SIGKILL) -> None:
    """Signal the stage's launcher and the process it runs (one session each)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(line.strip() for line in text[-lines:])


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """One benchmark at a time on this machine: two would share (and skew) its 2 cores."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            print(
                f"bench: waiting for another benchmark run to finish (pid {holder})",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield
