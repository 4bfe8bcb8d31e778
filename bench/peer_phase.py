"""The peers side by side: ours and each PyPI connector read the same tables of the same
simulator, with the same limits, each for at most ``Plan.peer_seconds``.

Every connector runs alone (its stdout to a file, no target), from a first sync, with
``start_date`` before the oldest object; its records are the RECORD messages it wrote,
its requests the simulator's count over its run. The simulator's ``strict_params`` is off
for this phase (the peers send parameters it does not model, such as singer-io's
``expand[]=data.plan.tiers``) and back on after it.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.endpoints import Requests
from bench.peers import (
    PEERS,
    SHARED_TABLES,
    Peer,
    count_records,
    proxy_env,
    singer_selected,
    trusting,
)
from bench.procs import Finished, Stage, run_pipeline, shell
from bench.report import Row, failed, reference
from bench.tls import Authority, make_authority
from stripe_sim.config import MAIN_ACCOUNT
from stripe_sim.runner import SimHandle

OURS = "tap-stripe (ours)"


@dataclass(frozen=True)
class Measured:
    """One connector's run: records written, its wall time, whether the cap stopped it,
    and the simulator's count of its requests."""

    records: int
    seconds: float
    capped: bool
    requests: Requests

    def describe(self, cap: float) -> str:
        stopped = f", stopped at the {cap:.0f} s cap" if self.capped else ", complete"
        return (
            f"{self.records / self.seconds:,.0f} rec/s ({self.records:,} records in "
            f"{self.seconds:.0f} s{stopped}; {self.requests.total:,} requests = "
            f"{self.requests.total / self.seconds:.1f}/s, "
            f"{self.requests.refused:,} answered 429)"
        )


class PeerPhase:
    """Runs ours and every peer; ``rows`` and ``notes`` for the table."""

    def __init__(self, sim: SimHandle, repo: Path, work: Path, cap: float, days: float) -> None:
        self.sim = sim
        self.repo = repo
        self.work = work / "peers"
        self.cap = cap
        self.days = days
        self.rows: list[Row] = []
        self.notes: list[str] = []

    def run(self, tap: str) -> None:
        (self.repo / self.work).mkdir(parents=True, exist_ok=True)
        start = datetime.datetime.fromtimestamp(
            self.sim.info()["now"] - (self.days + 1) * 86400, datetime.UTC
        ).strftime("%Y-%m-%dT%H:%M:%SZ")
        names = ", ".join(names[0] for names in SHARED_TABLES)
        self.notes.append(
            f"Peers: the {len(SHARED_TABLES)} tables all three read ({names}), "
            f"start_date {start}, each connector alone (stdout to a file) for at most "
            f"{self.cap:.0f} s; records/s over what it did in that time."
        )
        self.sim.set_knobs(strict_params=False)
        try:
            self._ours(tap, start)
            authority = make_authority(self.repo / self.work / "tls")
            with _proxy(self.repo, self.sim, authority) as (proxy_url, proxy_command):
                self.notes.append(f"Proxy for the peers: `{proxy_command} &`")
                for peer in PEERS:
                    self._peer(peer, start, proxy_url, authority.ca_certificate)
        finally:
            self.sim.set_knobs(strict_params=True)

    def _ours(self, tap: str, start: str) -> None:
        config = self._write(
            "ours.json", {"api_key": self.sim.api_key, "api_url": self.sim.url, "start_date": start}
        )
        figure = f"Peers: {OURS}"
        try:
            catalog = json.loads(
                subprocess.run(
                    [tap, "--config", str(config), "--discover"],
                    cwd=self.repo,
                    capture_output=True,
                    check=True,
                    text=True,
                ).stdout
            )
            ours = [names[0] for names in SHARED_TABLES]
            catalog_path = self._write("ours.catalog.json", singer_selected(catalog, ours))
            argv = [tap, "--config", str(config), "--catalog", str(catalog_path)]
            measured, command = self._measure("ours", argv, None)
        except (OSError, RuntimeError, ValueError, subprocess.CalledProcessError) as exc:
            self.rows.append(failed(figure, "(reference)", str(exc), ""))
            return
        self.rows.append(reference(figure, measured.describe(self.cap), command))
        self.notes.append(f"{OURS} in the peer comparison: {measured.requests.describe()}.")

    def _peer(self, peer: Peer, start: str, proxy_url: str, ca_certificate: Path) -> None:
        figure = f"Peers: {peer.label}"
        env = proxy_env(proxy_url)
        slug = peer.venv.name
        try:
            config = self._write(f"{slug}.json", peer.config(self.sim.api_key, MAIN_ACCOUNT, start))
            with trusting(peer.trust_store(), ca_certificate):
                catalog = peer.discover(
                    self.repo / config, env, self.repo / self.work / f"{slug}-discover.stderr"
                )
                catalog_path = self._write(f"{slug}.catalog.json", peer.selected(catalog))
                measured, command = self._measure(slug, peer.argv(config, catalog_path), env)
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            self.rows.append(failed(figure, "(reference)", str(exc), ""))
            return
        command = f"HTTPS_PROXY={proxy_url} {command.replace(f'{self.repo}/', '')}"
        self.rows.append(reference(figure, measured.describe(self.cap), command))
        self.notes.append(f"{peer.label}: {measured.requests.describe()}.")

    def _measure(
        self, slug: str, argv: list[str], env: Mapping[str, str] | None
    ) -> tuple[Measured, str]:
        out = self.work / f"{slug}.out"
        self.sim.reset_stats()
        finished: Finished = run_pipeline(
            [Stage(slug, argv, self.repo / self.work / f"{slug}.stderr", env)],
            cwd=self.repo,
            stdout=self.repo / out,
            timeout=self.cap + 60,
            cap=self.cap,
        )
        requests = Requests.of(self.sim.stats(log=True))
        records = sum(count_records(self.repo / out).values())
        measured = Measured(records, finished.seconds, finished.capped, requests)
        return measured, f"{shell(argv)} > {out}"

    def _write(self, name: str, content: dict[str, Any]) -> Path:
        path = self.work / name
        (self.repo / path).write_text(json.dumps(content, indent=2) + "\n")
        return path


@contextmanager
def _proxy(repo: Path, sim: SimHandle, authority: Authority) -> Iterator[tuple[str, str]]:
    """``bench.proxy`` for the simulator: its URL and the command that started it."""
    upstream = sim.url.removeprefix("http://")
    argv = [
        os.path.relpath(sys.executable, repo),
        "-m",
        "bench.proxy",
        "--cert",
        str(authority.server_certificate.relative_to(repo)),
        "--key",
        str(authority.server_key.relative_to(repo)),
        "--upstream",
        upstream,
        "--own-account",
        MAIN_ACCOUNT,
    ]
    process = subprocess.Popen(argv, cwd=repo, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"bench.proxy did not start: {line!r}")
        yield line.removeprefix("listening on "), shell(argv)
    finally:
        process.terminate()
        process.wait(timeout=30)
