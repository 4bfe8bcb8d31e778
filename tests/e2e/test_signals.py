"""SIGTERM of the tap at random points of a full sync, then a resumed run: the tables end
exactly as after one clean run.

Like ``test_resume.test_kill_9_of_the_tap_then_resume``, with the signal an orchestrator
sends instead of kill -9: the tap stops within seconds, with exit code 143, whole lines
only on stdout and no STATE past the records the target received.
"""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import pytest

from stripe_sim.runner import SimHandle
from tests.e2e.conftest import Reference
from tests.e2e.harness import (
    Pipeline,
    bookmarks,
    persisted_state,
    read_all,
    row_count,
    run_pipe,
    write_configs,
)

pytestmark = pytest.mark.e2e

SEED = 20261201
POINTS = 3
EXIT_WITHIN_SECONDS = 5
STOPPED_LINE = (
    "tap-stripe: stopped by SIGTERM; the last STATE written covers every record written before it"
)


@pytest.fixture
def reference_tables(reference: Reference) -> dict:
    return read_all(reference.configs.database)


def signal_points(reference: Reference) -> list[int]:
    """How many lines pass before each signal: fixed random points in the first three
    quarters of a clean run's output (later, the tap may have written everything)."""
    total_lines = len(reference.tap_output.read_bytes().splitlines())
    return sorted(random.Random(SEED).sample(range(1, total_lines * 3 // 4), POINTS))


def forward_to_the_end(pipeline: Pipeline) -> None:
    """Pass the rest of the tap's output to the target, every line whole JSON."""
    assert pipeline.tap.stdout is not None and pipeline.target.stdin is not None
    while line := pipeline.tap.stdout.readline():
        assert line.endswith(b"\n"), f"the tap's last line was cut: {line[-200:]!r}"
        json.loads(line)
        pipeline.target.stdin.write(line)
        pipeline.target.stdin.flush()


@pytest.mark.parametrize("point", range(POINTS))
def test_sigterm_of_the_tap_then_resume(
    point: int,
    reference: Reference,
    reference_tables: dict,
    shared_sim: SimHandle,
    tmp_path: Path,
) -> None:
    lines = signal_points(reference)[point]
    configs = write_configs(tmp_path, shared_sim)
    with Pipeline(configs) as pipeline:
        pipeline.forward(lines)
        assert pipeline.tap.poll() is None
        pipeline.tap.send_signal(signal.SIGTERM)
        forward_to_the_end(pipeline)
        assert pipeline.tap.wait(timeout=EXIT_WITHIN_SECONDS) == 128 + signal.SIGTERM
        assert pipeline.end_input() == 0
        emitted = pipeline.states

    tap_log = (tmp_path / "tap.err").read_text()
    assert tap_log.splitlines()[-1] == STOPPED_LINE
    assert "Traceback" not in tap_log
    assert shared_sim.api_key not in tap_log
    if emitted:
        assert persisted_state(configs) == emitted[-1]
    assert row_count(configs.database) < row_count(reference.configs.database)

    run_pipe(configs, resume=True)
    assert read_all(configs.database) == reference_tables
    assert set(bookmarks(persisted_state(configs))) == set(
        bookmarks(persisted_state(reference.configs))
    )
