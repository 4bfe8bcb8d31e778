"""Three target-duckdb processes write one DuckLake at the same time: one Stripe account
each, their own state_id, two tables all of them write and one of each's own. Upserts of
rows a pipeline wrote a batch before make their commits delete from shared tables at once,
which DuckLake refuses to all but one: the others run their transaction again."""

from __future__ import annotations

import subprocess

import msgspec
from target_duckdb.state import last_state

from tests.target.helpers import TARGET_COMMAND, to_lines, write_config

ACCOUNT = "_stripe_account"
PROPS = {ACCOUNT: {"type": "string"}, "id": {"type": "integer"}, "v": {"type": "string"}}
SHARED = ("charge", "customer")
ROUNDS = 4
IDS_PER_ROUND = 25


def _pipeline(number: int) -> tuple[list[dict], dict[str, dict[int, str]]]:
    """Pipeline `number`'s messages, and the rows (table → id → v) it leaves."""
    account = f"acct_{number}"
    tables = [*SHARED, f"own_{number}"]
    messages: list[dict] = [
        {"type": "SCHEMA", "stream": t, "schema": {"type": "object", "properties": PROPS}}
        | {"key_properties": [ACCOUNT, "id"]}
        for t in tables
    ]
    rows: dict[str, dict[int, str]] = {t: {} for t in tables}
    for round_ in range(ROUNDS):
        # Each round sends new ids and again the ids of the round before (updates).
        ids = range(max(0, round_ - 1) * IDS_PER_ROUND, (round_ + 1) * IDS_PER_ROUND)
        for table in tables:
            for i in ids:
                value = f"{account}-{round_}-{i}"
                rows[table][i] = value
                record = {ACCOUNT: account, "id": i, "v": value}
                message = {"type": "RECORD", "stream": table, "record": record}
                messages.append(message | ({"version": 1} if table == "charge" else {}))
        messages.append({"type": "STATE", "value": {"account": account, "round": round_}})
    # The account's version of `charge` is complete: older rows of its scope would retire.
    scope = {ACCOUNT: account}
    messages.append({"type": "ACTIVATE_VERSION", "stream": "charge", "version": 1, "scope": scope})
    return messages, rows


def test_three_targets_write_one_lake_at_once(lake, tmp_path):
    processes = []
    expected = {}
    for number in (1, 2, 3):
        folder = tmp_path / f"pipeline-{number}"
        folder.mkdir()
        messages, rows = _pipeline(number)
        expected[number] = rows
        (folder / "input.singer").write_text(to_lines(messages))
        settings = lake.config(state_id=f"pipeline-{number}", batch_size_rows=40)
        config = write_config(folder, **settings)
        with open(folder / "input.singer", "rb") as stdin:
            processes.append(
                subprocess.Popen(
                    [*TARGET_COMMAND, "--config", str(config)],
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()[-3000:]
    for number, (stdout, _) in zip((1, 2, 3), outputs, strict=True):
        final = {"account": f"acct_{number}", "round": ROUNDS - 1}
        assert msgspec.json.decode(stdout.splitlines()[-1]) == final
        assert msgspec.json.decode(last_state(lake.config(state_id=f"pipeline-{number}"))) == final
        for table, rows in expected[number].items():
            found = lake.query(f"SELECT id, v FROM {table} WHERE {ACCOUNT} = ?", [f"acct_{number}"])
            assert dict(found) == rows, (number, table)
            assert len(found) == len(rows)
    assert lake.query("SELECT count(*) FROM charge WHERE _sdc_deleted_at IS NOT NULL") == [(0,)]
    assert lake.query("SELECT state_id, count(*) FROM _singer_state GROUP BY ALL ORDER BY 1") == [
        (f"pipeline-{number}", 1) for number in (1, 2, 3)
    ]
