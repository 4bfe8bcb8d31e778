"""``python -m bench.profile``: where the tap's and the target's time goes, by function.

Runs the tap alone (simulator latency 0, no limit) and then the target alone on the tap's
output, each under py-spy, and prints the functions with the most samples of their own
("self") and in total, per process. py-spy is not a project dependency: install it into
the virtualenv first (``.venv/bin/pip install py-spy``). Files go to bench-results/profile/.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.procs import exclusive
from bench.run import REPO, TAP, TARGET
from tests.stripe_sim.runner import run_simulator

WORK = Path("bench-results/profile")
_FRAME_LINE = re.compile(r":\d+\)$")


def summarize(folded: Path, top: int) -> list[str]:
    """Top functions by self and by total samples, from py-spy's ``raw`` (folded) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in folded.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_FRAME_LINE.sub(")", frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return ["(no samples)"]
    lines = [f"{samples:,} samples", "", "self %  function (file)"]
    lines += [f"{100 * n / samples:5.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total %  function (file)"]
    lines += [f"{100 * n / samples:5.1f}  {frame}" for frame, n in total.most_common(top)]
    return lines


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(REPO / ".venv" / "bin" / "py-spy")
    if not Path(found).exists():
        sys.exit("bench.profile: py-spy not found; run `.venv/bin/pip install py-spy` first")
    return found


def _record(py_spy: str, name: str, argv: list[str], **io: object) -> Path:
    out = REPO / WORK / f"{name}.folded"
    command = [py_spy, "record", "--format", "raw", "--rate", "250", "-o", str(out), "--"]
    with open(out.with_suffix(".log"), "wb") as log:
        subprocess.run([*command, *argv], cwd=REPO, check=True, stderr=log, **io)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--charges", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    py_spy = _py_spy()
    (REPO / WORK).mkdir(parents=True, exist_ok=True)
    with exclusive(REPO / "bench-results" / ".lock"):
        _profile(py_spy, args.charges, args.top)
    return 0


def _profile(py_spy: str, charges: int, top: int) -> None:
    singer_file = REPO / WORK / "tap-output.singer"
    with run_simulator(subprocess=True, counts={"charge": charges}, days=1095) as sim:
        tap_config = REPO / WORK / "tap.json"
        tap_config.write_text(
            json.dumps({"api_key": sim.api_key, "api_url": sim.url, "max_requests_per_second": 0})
        )
        with open(singer_file, "wb") as out:
            tap = _record(py_spy, "tap", [TAP, "--config", str(tap_config)], stdout=out)
    db = REPO / WORK / "target.duckdb"
    db.unlink(missing_ok=True)
    target_config = REPO / WORK / "target.json"
    target_config.write_text(json.dumps({"path": str(db), "default_target_schema": "stripe"}))
    with open(singer_file, "rb") as source:
        target = _record(
            py_spy,
            "target",
            [TARGET, "--config", str(target_config)],
            stdin=source,
            stdout=subprocess.DEVNULL,
        )
    for name, folded in (("tap (alone, latency 0)", tap), ("target (alone)", target)):
        print(f"## {name}: {folded.relative_to(REPO)}\n")
        print("\n".join(summarize(folded, top)))
        print()


if __name__ == "__main__":
    raise SystemExit(main())
