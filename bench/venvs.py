"""Virtualenvs of pinned PyPI packages under ``bench/``, each created on first use.

They hold what the benchmark compares against (``target-duckdb==0.8.0``, the peer taps)
and are ignored by git (``.venv-*/``). A stamp file names the packages installed, so a
changed pin installs afresh; the time the install took is kept for the report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
STAMP = ".bench-installed"
SECONDS = ".bench-install-seconds"


@dataclass(frozen=True)
class Venv:
    """``bench/.venv-<name>`` holding exactly ``packages``."""

    name: str
    packages: tuple[str, ...]

    @property
    def path(self) -> Path:
        return BENCH / f".venv-{self.name}"

    def bin(self, command: str) -> Path:
        return self.path / "bin" / command

    def ensure(self) -> float | None:
        """Install if needed; the seconds the first install took (None: not recorded,
        the venv was made before the benchmark kept the time)."""
        stamp = self.path / STAMP
        wanted = "\n".join(self.packages)
        if not (stamp.exists() and stamp.read_text() == wanted):
            print(f"bench: installing {', '.join(self.packages)} into {self.path}", file=sys.stderr)
            started = time.perf_counter()
            shutil.rmtree(self.path, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(self.path)], check=True)
            pip = [str(self.bin("pip")), "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, *self.packages], check=True)
            (self.path / SECONDS).write_text(f"{time.perf_counter() - started:.1f}")
            stamp.write_text(wanted)
        seconds = self.path / SECONDS
        return float(seconds.read_text()) if seconds.exists() else None

    def python_value(self, expression: str, imports: str) -> str:
        """``expression`` evaluated by the venv's Python after ``import imports``."""
        done = subprocess.run(
            [str(self.bin("python")), "-c", f"import {imports}; print({expression})"],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()
