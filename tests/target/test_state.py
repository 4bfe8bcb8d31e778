"""The state rule: emitted only once committed, persisted with the data, resumable."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import threading

import duckdb
import msgspec
import pytest
from target_duckdb.connection import ALIAS
from target_duckdb.messages import Terminated
from target_duckdb.state import main as state_main
from target_duckdb.target import TargetDuckDB

from tests.target.helpers import (
    TARGET_COMMAND,
    query,
    record,
    run,
    schema_message,
    state,
    to_lines,
    write_config,
)

PROPS = {"id": {"type": "integer"}, "v": {"type": ["string", "null"]}}


def _interleaved(count: int) -> list[dict]:
    """Two streams; after each record a STATE saying how many of each were sent."""
    messages: list[dict] = [schema_message("a", PROPS), schema_message("b", PROPS)]
    sent = {"a": 0, "b": 0}
    for i in range(count):
        stream = "a" if i % 3 else "b"
        sent[stream] += 1
        messages.append(record(stream, id=sent[stream], v=str(i)))
        if i % 2:
            messages.append(state(dict(sent)))
    messages.append(state(dict(sent)))
    return messages


class _CheckingStdout(io.StringIO):
    """stdout that checks, at the moment a state is written, that its records are in."""

    def __init__(self, target: TargetDuckDB) -> None:
        super().__init__()
        self.target = target
        self.checked: list[dict] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            value = msgspec.json.decode(line)
            cursor = self.target.database.connection.cursor()
            cursor.execute(f"USE {ALIAS}")
            for stream, sent in value.items():
                present = cursor.execute(
                    f"SELECT count(*) FROM {stream} WHERE id <= ?", [sent]
                ).fetchone()[0]
                assert present == sent, (value, stream, present)
            cursor.close()
            self.checked.append(value)
        return super().write(text)


def test_state_is_emitted_only_after_its_records_are_committed(tmp_path, monkeypatch) -> None:
    messages = _interleaved(200)
    target = TargetDuckDB(
        config={"path": str(tmp_path / "out.duckdb"), "batch_size_rows": 7},
        validate_config=True,
    )
    stdout = _CheckingStdout(target)
    monkeypatch.setattr("sys.stdout", stdout)
    target.listen(io.StringIO(to_lines(messages)))
    received = [m["value"] for m in messages if m["type"] == "STATE"]
    assert len(stdout.checked) > 5
    assert stdout.checked[-1] == received[-1]
    # emitted states are received ones, in order, never an older one after a newer one
    positions = [received.index(value) for value in stdout.checked]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


def test_persisted_state_equals_the_last_emitted_and_resume_command_prints_it(
    tmp_path, capsys
) -> None:
    config = write_config(tmp_path)
    state_main(["--config", str(config)])
    assert capsys.readouterr().out == "{}\n"
    result = run(tmp_path, _interleaved(50), batch_size_rows=5)
    assert result.exit_code == 0, result.stderr
    persisted = query(tmp_path, "SELECT state FROM _singer_state WHERE state_id = 'default'")
    assert msgspec.json.decode(persisted[0][0]) == result.states[-1]
    state_main(["--config", str(config)])
    assert msgspec.json.decode(capsys.readouterr().out) == result.states[-1]


def test_state_without_new_records_is_committed_and_emitted(tmp_path) -> None:
    result = run(tmp_path, [schema_message("a", PROPS), state({"x": 1}), state({"x": 2})])
    assert result.exit_code == 0, result.stderr
    assert result.states[-1] == {"x": 2}
    assert result.states == sorted(result.states, key=lambda value: value["x"])


def test_an_empty_state_never_follows_a_newer_one(tmp_path) -> None:
    messages = [schema_message("a", PROPS), record("a", id=1), state({"x": 1}), state({})]
    result = run(tmp_path, messages)
    assert result.states == [{"x": 1}]


def test_signal_while_waiting_for_input_commits_and_emits(tmp_path, monkeypatch) -> None:
    """In-process: the handler interrupts the read; pending records and state are committed."""
    target = TargetDuckDB(config={"path": str(tmp_path / "out.duckdb")}, validate_config=True)
    stdout = io.StringIO()
    monkeypatch.setattr("sys.stdout", stdout)
    head = [schema_message("a", PROPS), record("a", id=1), record("a", id=2), state({"n": 2})]

    def lines():
        yield from to_lines(head).splitlines(keepends=True)
        target._handle_termination(signal.SIGTERM, None)
        yield to_lines([record("a", id=3)])

    with pytest.raises(Terminated):
        target.listen(lines())
    assert stdout.getvalue() == '{"n":2}\n'
    assert query(tmp_path, "SELECT id FROM a ORDER BY id") == [(1,), (2,)]


def test_sigterm_exits_zero_with_the_newest_state_committed(tmp_path) -> None:
    config = write_config(tmp_path, batch_size_rows=2)
    process = subprocess.Popen(
        [*TARGET_COMMAND, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = [schema_message("a", PROPS), record("a", id=1), record("a", id=2), state({"n": 2})]
    process.stdin.write(to_lines([*head, record("a", id=3), record("a", id=4)]).encode())
    process.stdin.flush()
    first = process.stdout.readline()
    assert msgspec.json.decode(first) == {"n": 2}
    process.stdin.write(to_lines([record("a", id=5), state({"n": 5})]).encode())
    process.stdin.flush()
    process.send_signal(signal.SIGTERM)
    rest, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()
    emitted = [msgspec.json.decode(first)] + [
        msgspec.json.decode(line) for line in rest.decode().splitlines()
    ]
    last = emitted[-1]["n"]
    ids = [row[0] for row in query(tmp_path, "SELECT id FROM a ORDER BY id")]
    assert ids[:last] == list(range(1, last + 1))
    persisted = query(tmp_path, "SELECT state FROM _singer_state")
    assert msgspec.json.decode(persisted[0][0]) == emitted[-1]


def test_kill_9_mid_input_never_loses_what_the_last_state_covers(tmp_path) -> None:
    config = write_config(tmp_path, batch_size_rows=300)
    process = subprocess.Popen(
        [*TARGET_COMMAND, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    total = 50_000

    def feed() -> None:
        messages = [schema_message("a", PROPS)]
        for i in range(1, total + 1):
            messages.append(record("a", id=i, v="x" * 50))
            if i % 100 == 0:
                messages.append(state({"n": i}))
        try:
            for start in range(0, len(messages), 1000):
                process.stdin.write(to_lines(messages[start : start + 1000]).encode())
            process.stdin.close()
        except (BrokenPipeError, ValueError):
            pass  # killed while we were still writing: the point of the test

    writer = threading.Thread(target=feed)
    writer.start()
    emitted = [msgspec.json.decode(process.stdout.readline()) for _ in range(5)]
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    writer.join(timeout=60)
    assert process.returncode == -signal.SIGKILL
    covered = emitted[-1]["n"]
    assert covered < total  # killed in the middle, not after the end
    connection = duckdb.connect(str(tmp_path / "out.duckdb"))
    try:
        count, distinct, low, high = connection.execute(
            "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM a"
        ).fetchone()
        present = connection.execute("SELECT count(*) FROM a WHERE id <= ?", [covered]).fetchone()[
            0
        ]
    finally:
        connection.close()
    assert present == covered
    assert count == distinct == high and low == 1


FAKE_TAP = """
import json, sys
state = json.load(open(sys.argv[sys.argv.index("--state") + 1]))
start = state.get("n", 0)
print(json.dumps({"type": "SCHEMA", "stream": "a", "key_properties": ["id"],
    "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}))
for i in range(start + 1, start + 101):
    print(json.dumps({"type": "RECORD", "stream": "a", "record": {"id": i}}))
print(json.dumps({"type": "STATE", "value": {"n": start + 100, "resumed_from": start}}))
"""


def test_resume_one_liner_with_process_substitution(tmp_path) -> None:
    config = write_config(tmp_path, lock_timeout_seconds=5)
    tap = tmp_path / "fake_tap.py"
    tap.write_text(FAKE_TAP)
    python = TARGET_COMMAND[0]
    pipeline = (
        f"{python} {tap} --state <({python} -m target_duckdb.state --config {config}) "
        f"| {' '.join(TARGET_COMMAND)} --config {config}"
    )
    outputs = [
        subprocess.run(
            ["bash", "-c", pipeline], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        for _ in range(3)
    ]
    assert [msgspec.json.decode(out.splitlines()[-1]) for out in outputs] == [
        {"n": 100, "resumed_from": 0},
        {"n": 200, "resumed_from": 100},
        {"n": 300, "resumed_from": 200},
    ]
    assert query(tmp_path, "SELECT count(*), count(DISTINCT id), max(id) FROM a") == [
        (300, 300, 300)
    ]
