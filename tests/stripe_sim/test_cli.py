"""``python -m stripe_sim``: prints its URL, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

from stripe_sim.runner import REPO_ROOT, SimHandle


def test_command_line_server_starts_serves_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_sim", "--port", "0", "--count", "charge=30"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        sim = SimHandle(line.removeprefix("listening on "), "sk_test_simulator")
        assert len(sim.ids("charge")) == 30
        assert sim.request("/v1/charges").status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "stopped" in stderr


def test_bad_flag_is_one_line_error_and_nonzero_exit():
    result = subprocess.run(
        [sys.executable, "-m", "stripe_sim", "--count", "widget=3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "TABLE=N" in result.stderr


def test_inconsistent_counts_are_refused_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "stripe_sim", "--count", "price=0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "stripe_sim: subscriptions and invoices need at least one price"
