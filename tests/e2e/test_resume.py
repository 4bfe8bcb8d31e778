"""Interrupted and faulty runs end with the same tables as one clean run."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture
def reference_tables(reference: Reference) -> dict:
    return read_all(reference.configs.database)


def test_kill_9_of_the_tap_then_resume(
    reference: Reference, reference_tables: dict, shared_sim: SimHandle, tmp_path: Path
) -> None:
    configs = write_configs(tmp_path, shared_sim)
    total_lines = len(reference.tap_output.read_bytes().splitlines())
    with Pipeline(configs) as pipeline:
        # Half the messages: past the first streams' final STATE, inside a later stream.
        pipeline.forward(total_lines // 2)
        assert pipeline.tap.poll() is None
        pipeline.tap.kill()
        assert pipeline.wait(pipeline.tap) == -9
        assert pipeline.end_input() == 0
        emitted = pipeline.states

    state = persisted_state(configs)
    assert bookmarks(state), "nothing was committed before the kill"
    assert state == emitted[-1]
    assert row_count(configs.database) < row_count(reference.configs.database)

    run_pipe(configs, resume=True)
    assert read_all(configs.database) == reference_tables


def test_kill_9_of_the_target_then_resume(
    reference: Reference, reference_tables: dict, shared_sim: SimHandle, tmp_path: Path
) -> None:
    # Small batches: the target commits (and emits a state) many times per run.
    configs = write_configs(tmp_path, shared_sim, target={"batch_size_rows": 20})
    with Pipeline(configs) as pipeline:
        pipeline.forward(until=pipeline.bookmark_committed)
        # Records the target reads but never commits.
        pipeline.forward(30)
        assert pipeline.tap.poll() is None
        pipeline.target.kill()
        assert pipeline.wait(pipeline.target) == -9
        assert pipeline.end_output() != 0
        pipeline.close()
        emitted = pipeline.states

    state = persisted_state(configs)
    assert bookmarks(state), "nothing was committed before the kill"
    assert state == emitted[-1], "the file holds another state than the last one emitted"
    assert row_count(configs.database) < row_count(reference.configs.database)

    run_pipe(configs, resume=True)
    assert read_all(configs.database) == reference_tables


@pytest.fixture
def faulty_sim(shared_sim: SimHandle, reference: Reference) -> Iterator[SimHandle]:
    """``shared_sim`` (after its clean reference run) failing 10 % of requests (5xx,
    dropped and cut-off responses) and answering 429 above 60 requests per second;
    restored afterwards."""
    assert reference.configs.database.exists()
    shared_sim.set_knobs(fault_rate=0.1, rate_limit=60)
    shared_sim.reset_stats()
    try:
        yield shared_sim
    finally:
        shared_sim.set_knobs(fault_rate=0, rate_limit=0)


def test_faults_and_rate_limits_change_nothing(
    reference_tables: dict, faulty_sim: SimHandle, tmp_path: Path
) -> None:
    # Twice the simulator's limit for the ~400 requests of a run: some 429s are certain.
    # Per endpoint unlimited too: the tap's own 24/s per endpoint would keep it under.
    tap = {"max_requests_per_second": 120, "max_requests_per_second_per_endpoint": 0}
    configs = write_configs(tmp_path, faulty_sim, tap=tap)
    run_pipe(configs)

    statuses = faulty_sim.stats()["by_status"]
    for status in ("429", "dropped", "truncated"):
        assert statuses.get(status, 0) > 0, statuses
    assert sum(statuses.get(status, 0) for status in ("500", "502", "503")) > 0, statuses
    assert read_all(configs.database) == reference_tables
