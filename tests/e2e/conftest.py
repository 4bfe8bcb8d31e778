"""Fixtures: simulators on real time (the tap bookmarks by wall clock), a reference run,
and a Meltano project of its own with both plugins installed once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stripe_sim.runner import SimHandle, run_simulator
from tests.e2e.harness import (
    REPO_ROOT,
    SIM_KNOBS,
    Configs,
    clean_env,
    run_pipe,
    write_configs,
)

MELTANO = Path(os.environ.get("MELTANO_BIN") or REPO_ROOT / ".venv-meltano" / "bin" / "meltano")


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[SimHandle]:
    """A simulator the tests only read (knob changes are undone by the test)."""
    with run_simulator(**SIM_KNOBS) as sim:
        yield sim


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    """A simulator of the test's own, for tests that mutate its data."""
    with run_simulator(**SIM_KNOBS) as handle:
        yield handle


@dataclass(frozen=True)
class Reference:
    """One uninterrupted full sync of ``shared_sim`` through a pipe."""

    configs: Configs
    tap_output: Path
    states: str


@pytest.fixture(scope="session")
def reference(shared_sim: SimHandle, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("reference")
    configs = write_configs(folder, shared_sim)
    tap_output = folder / "tap.jsonl"
    states = run_pipe(configs, tap_output=tap_output).states
    return Reference(configs, tap_output, states)


@dataclass(frozen=True)
class MeltanoProject:
    """A throwaway Meltano project: a copy of meltano.yml, the two packages symlinked."""

    root: Path

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(MELTANO), *args],
            cwd=self.root,
            env=clean_env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, (
            f"meltano {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
        return result


@pytest.fixture(scope="session")
def meltano_project(tmp_path_factory: pytest.TempPathFactory) -> MeltanoProject:
    """Installs the plugins from the local folders, leaving the repository's .meltano alone."""
    if not MELTANO.exists():
        pytest.skip(f"Meltano is not installed at {MELTANO}: run `make install-meltano`")
    root = tmp_path_factory.mktemp("meltano-project")
    shutil.copy(REPO_ROOT / "meltano.yml", root / "meltano.yml")
    for package in ("tap-stripe", "target-duckdb"):
        (root / package).symlink_to(REPO_ROOT / package, target_is_directory=True)
    project = MeltanoProject(root)
    project.run("install")
    return project
