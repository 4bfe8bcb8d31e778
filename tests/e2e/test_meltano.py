"""The pair through Meltano (a project of its own, plugins installed from the local folders),
and the demo script."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stripe_sim.runner import SimHandle
from tests.e2e.conftest import MELTANO, MeltanoProject
from tests.e2e.harness import (
    BOOKMARKED,
    KEYS,
    REPO_ROOT,
    STREAMS,
    assert_matches_truth,
    assert_reads_only_since,
    bookmarks,
    clean_env,
    persisted_state,
    quiet_run_requests,
    write_configs,
)

STATE_ID = "dev:tap-stripe-to-target-duckdb"
DEMO = REPO_ROOT / "scripts" / "demo.py"


def _settings(sim: SimHandle, database: Path) -> dict[str, str]:
    return {
        "TAP_STRIPE_API_URL": sim.url,
        "TAP_STRIPE_API_KEY": sim.api_key,
        "TAP_STRIPE_MAX_REQUESTS_PER_SECOND": "0",
        "TAP_STRIPE_MAX_REQUESTS_PER_SECOND_PER_ENDPOINT": "0",
        "TARGET_DUCKDB_PATH": str(database),
    }


def _meltano_state(project: MeltanoProject) -> dict:
    result = project.run("--environment=dev", "state", "get", STATE_ID)
    return json.loads(result.stdout)["singer_state"]


@pytest.fixture
def project(meltano_project: MeltanoProject) -> MeltanoProject:
    """The session's Meltano project without state left by an earlier test."""
    meltano_project.run("--environment=dev", "state", "clear", "--force", STATE_ID)
    return meltano_project


@pytest.mark.meltano
def test_meltano_run_then_incremental_run_from_meltanos_state(
    project: MeltanoProject, sim: SimHandle, tmp_path: Path
) -> None:
    database = tmp_path / "warehouse.duckdb"
    settings = _settings(sim, database)
    configs = write_configs(tmp_path, sim)  # target.json for target-duckdb-state only

    project.run("run", "tap-stripe", "target-duckdb", env=settings)
    assert_matches_truth(database, sim)
    first_state = _meltano_state(project)
    first = bookmarks(first_state)
    assert set(first) == BOOKMARKED
    assert first_state == persisted_state(configs)

    created = sim.mutate(customer={"create": 2}, invoice={"create": 2}, charge={"create": 5})
    # The tap reads below the second it starts in; start after the new objects' second.
    time.sleep(max(0.0, created["now"] + 1 - time.time()))
    sim.reset_stats()
    project.run("run", "tap-stripe", "target-duckdb", env=settings)

    log = sim.stats(log=True)["log"]
    assert_reads_only_since(log, first_state, quiet_run_requests(sim))
    assert_matches_truth(database, sim)
    second = _meltano_state(project)
    assert all(value > first[stream] for stream, value in bookmarks(second).items())
    assert second == persisted_state(configs)


@pytest.mark.meltano
def test_meltano_select_list(meltano_project: MeltanoProject) -> None:
    # Discovery reads no API, but the tap validates its config: any well-formed key does.
    result = meltano_project.run(
        "select", "tap-stripe", "--list", env={"TAP_STRIPE_API_KEY": "sk_test_listing"}
    )
    for stream in STREAMS:
        for key in KEYS[stream]:
            assert f"] {stream}.{key}" in result.stdout, (stream, key)
    assert "[automatic  ] charge.id" in result.stdout
    assert "[selected   ] charge.payment_method_details" in result.stdout


@pytest.mark.meltano
def test_demo_script_against_the_simulator(meltano_project: MeltanoProject) -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO), "--simulator", "--project-dir", str(meltano_project.root)],
        env=clean_env(MELTANO_BIN=str(MELTANO)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    database = meltano_project.root / ".demo" / "warehouse.duckdb"
    assert database.exists()
    lines = result.stdout.splitlines()
    assert f"Rows in {database} (schema stripe)" in lines
    words = [line.split() for line in lines]
    counts = {row[0]: row[1] for row in words if len(row) == 2 and row[0] in STREAMS}
    assert counts["charge"] == "1000" and counts["account"] == "1"
    assert any(line.startswith("Invoices by status") for line in lines)
    assert "stripe_sim: stopped" in result.stderr
    assert "sk_test_simulator" not in result.stdout + result.stderr
    state = meltano_project.run("state", "list").stdout.split()
    assert "demo:tap-stripe-to-target-duckdb" in state


@pytest.mark.meltano
def test_make_run_path_copies_into_warehouse_duckdb_with_dev_state(
    project: MeltanoProject, sim: SimHandle
) -> None:
    """`make run`'s code path, pointed at the simulator instead of api.stripe.com."""
    env = clean_env(MELTANO_BIN=str(MELTANO), STRIPE_API_KEY=sim.api_key, STRIPE_API_URL=sim.url)
    result = subprocess.run(
        [sys.executable, str(DEMO), "--stripe", "--project-dir", str(project.root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sim.api_key not in result.stdout + result.stderr
    database = project.root / "warehouse.duckdb"
    assert f"Rows in {database} (schema stripe)" in result.stdout
    assert_matches_truth(database, sim)
    assert set(bookmarks(_meltano_state(project))) == BOOKMARKED


@pytest.mark.e2e
def test_make_run_without_a_key_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO), "--stripe", "--project-dir", str(tmp_path)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "demo: error: STRIPE_API_KEY is not set: export your Stripe secret or restricted key "
        "(sk_live_..., rk_live_...) and run `make run` again"
    ]
    assert not list(tmp_path.iterdir())
