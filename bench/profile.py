"""``python -m bench.profile``: where the tap's and the target's time goes, by function.

Runs the tap alone (simulator latency 0, no limit) and the target alone on the tap's
output under py-spy, twice each:

* ``cpu``: only the thread holding the GIL is sampled, so the shares are of the Python
  CPU time (work inside DuckDB or a socket read, which releases the GIL, is not in it);
* ``wall``: every thread, idle or not, so each thread's line shows what it spends its
  wall time on, waiting included.

py-spy is not a project dependency: install it into the virtualenv first
(``.venv/bin/pip install py-spy``). Files go to bench-results/profile/, the summary
printed also to bench-results/profile/summary.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

from bench.procs import exclusive
from bench.run import REPO, TAP, TARGET
from stripe_sim.runner import run_simulator

WORK = Path("bench-results/profile")
RATE = 200
MODES = {"cpu": ["--gil"], "wall": ["--threads", "--idle"]}
_FRAME_LINE = re.compile(r":\d+\)$")
# "thread (123): tap-stripe-charge-12" -> group "tap-stripe-charge-*"
_THREAD = re.compile(r"^thread \(\w+\)(?:: )?")
_THREAD_NUMBER = re.compile(r"[-_]\d+$")
WALL_GROUPS = 8
# Leaf frames of a thread waiting for work or for another thread.
_WAITING = ("Condition.wait ", "_worker ", "Event.wait ", "Queue.get ")
WALL_FUNCTIONS = 6


def _stacks(folded: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in folded.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            frames = [_FRAME_LINE.sub(")", frame) for frame in stack.split(";")]
            stacks.append((frames, int(count_text)))
    return stacks


def summarize_cpu(folded: Path, top: int) -> list[str]:
    """Top functions by self and by total samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for frames, count in _stacks(folded):
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return ["(no samples)"]
    lines = [
        f"{samples:,} samples = {samples / RATE:.1f}s of Python CPU",
        "",
        "self %  function (file)",
    ]
    lines += [f"{100 * n / samples:5.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total %  function (file)"]
    lines += [f"{100 * n / samples:5.1f}  {frame}" for frame, n in total.most_common(top)]
    return lines


def summarize_wall(folded: Path, top: int) -> list[str]:
    """Per thread group: wall seconds and the leaf functions they are spent in.

    The main thread comes first, then the groups with the most samples outside waits.
    """
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    threads: dict[str, set[str]] = defaultdict(set)
    for frames, count in _stacks(folded):
        thread = frames[0] if frames[0].startswith("thread (") else "thread (?)"
        name = _THREAD.sub("", thread) or "unnamed"
        group = _THREAD_NUMBER.sub("-*", name)
        threads[group].add(thread.split(")")[0])
        groups[group][frames[-1]] += count
    lines = []

    def busy(item: tuple[str, Counter[str]]) -> tuple[bool, int]:
        group, own = item
        working = sum(n for frame, n in own.items() if not frame.startswith(_WAITING))
        return group != "MainThread", -working

    ranked = sorted(groups.items(), key=busy)
    for group, own in ranked[:WALL_GROUPS]:
        samples = sum(own.values())
        lines.append(
            f"{group} ({len(threads[group])} thread(s), {samples / RATE:.1f} thread-seconds)"
        )
        lines += [
            f"  {100 * n / samples:5.1f}  {frame}"
            for frame, n in own.most_common(min(top, WALL_FUNCTIONS))
        ]
    if len(ranked) > WALL_GROUPS:
        lines.append(f"(and {len(ranked) - WALL_GROUPS} smaller thread groups)")
    return lines or ["(no samples)"]


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(REPO / ".venv" / "bin" / "py-spy")
    if not Path(found).exists():
        sys.exit("bench.profile: py-spy not found; run `.venv/bin/pip install py-spy` first")
    return found


def _record(py_spy: str, name: str, mode: str, argv: list[str], **io: object) -> Path:
    out = REPO / WORK / f"{name}-{mode}.folded"
    command = [py_spy, "record", *MODES[mode], "--format", "raw", "--rate", str(RATE)]
    with open(out.with_suffix(".log"), "wb") as log:
        subprocess.run(
            [*command, "-o", str(out), "--", *argv], cwd=REPO, check=True, stderr=log, **io
        )
    return out


def _strip_banner(raw: Path, singer_file: Path) -> None:
    """Copy the tap's output without the lines py-spy itself printed to the shared stdout."""
    with open(raw, "rb") as src, open(singer_file, "wb") as dst:
        for line in src:
            if line.startswith(b"{"):
                dst.write(line)
    raw.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--charges", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    py_spy = _py_spy()
    (REPO / WORK).mkdir(parents=True, exist_ok=True)
    with exclusive(REPO / "bench-results" / ".lock"):
        _profile(py_spy, args.charges, args.top)
    return 0


def _profile(py_spy: str, charges: int, top: int) -> None:
    singer_file = REPO / WORK / "tap-output.singer"
    raw_output = singer_file.with_suffix(".raw")
    folded: dict[tuple[str, str], Path] = {}
    with run_simulator(subprocess=True, counts={"charge": charges}, days=1095) as sim:
        tap_config = REPO / WORK / "tap.json"
        tap_config.write_text(
            json.dumps({"api_key": sim.api_key, "api_url": sim.url, "max_requests_per_second": 0})
        )
        for mode in MODES:
            with open(raw_output, "wb") as out:
                tap = [TAP, "--config", str(tap_config)]
                folded["tap", mode] = _record(py_spy, "tap", mode, tap, stdout=out)
    _strip_banner(raw_output, singer_file)
    db = REPO / WORK / "target.duckdb"
    target_config = REPO / WORK / "target.json"
    target_config.write_text(json.dumps({"path": str(db), "default_target_schema": "stripe"}))
    for mode in MODES:
        db.unlink(missing_ok=True)
        with open(singer_file, "rb") as source:
            target = [TARGET, "--config", str(target_config)]
            folded["target", mode] = _record(
                py_spy, "target", mode, target, stdin=source, stdout=subprocess.DEVNULL
            )
    sections = []
    for (process, mode), path in folded.items():
        summary = summarize_cpu(path, top) if mode == "cpu" else summarize_wall(path, top)
        sections.append(
            f"## {process}, {mode}: {path.relative_to(REPO)}\n\n```\n"
            + "\n".join(summary)
            + "\n```\n"
        )
    text = "\n".join(sections)
    (REPO / WORK / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
