"""One table, many Stripe accounts: an ACTIVATE_VERSION with a `scope` retires older rows of
its scope only, and a table keyed by `id` re-keyed by `_stripe_account, id` keeps working.
Each test runs on a DuckDB file and on a DuckLake."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.target.helpers import query, record, run, schema_message, state

ACCOUNT = "_stripe_account"
PROPS = {ACCOUNT: {"type": "string"}, "id": {"type": "integer"}, "v": {"type": "string"}}
SCHEMA = schema_message("charge", PROPS, keys=[ACCOUNT, "id"])


@dataclass
class Warehouse:
    """Where a test writes: the target's settings for it, and a query against it."""

    settings: dict
    query: Callable[[str], list[tuple]]


@pytest.fixture(params=["file", "lake"])
def warehouse(request, tmp_path) -> Warehouse:
    if request.param == "file":
        return Warehouse({}, lambda sql: query(tmp_path, sql))
    lake = request.getfixturevalue("lake")
    return Warehouse(lake.config(), lake.query)


def _versioned(account: str, ids: range, version: int, value: str = "v") -> list[dict]:
    return [
        {
            "type": "RECORD",
            "stream": "charge",
            "record": {ACCOUNT: account, "id": i, "v": f"{value}{i}"},
            "version": version,
        }
        for i in ids
    ]


def _activate(version: int, scope: object = None) -> dict:
    message = {"type": "ACTIVATE_VERSION", "stream": "charge", "version": version}
    if scope is not None:
        message["scope"] = scope
    return message


def _two_accounts(tmp_path, warehouse: Warehouse, **settings: object) -> None:
    """acct_a and acct_b, ids 1 to 3 each, under version 1 of their own scope."""
    messages = [
        SCHEMA,
        *_versioned("acct_a", range(1, 4), 1),
        *_versioned("acct_b", range(1, 4), 1),
    ]
    messages += [_activate(1, {ACCOUNT: "acct_a"}), _activate(1, {ACCOUNT: "acct_b"}), state({})]
    result = run(tmp_path, messages, **warehouse.settings, **settings)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("hard_delete", [False, True])
def test_a_scoped_version_retires_older_rows_of_its_scope_only(tmp_path, warehouse, hard_delete):
    _two_accounts(tmp_path, warehouse, hard_delete=hard_delete)
    messages = [SCHEMA, *_versioned("acct_a", range(1, 3), 2), _activate(2, {ACCOUNT: "acct_a"})]
    result = run(tmp_path, messages, **warehouse.settings, hard_delete=hard_delete)
    assert result.exit_code == 0, result.stderr
    rows = warehouse.query(
        f"SELECT {ACCOUNT}, id, _sdc_deleted_at IS NOT NULL FROM charge ORDER BY ALL"
    )
    retired = [] if hard_delete else [("acct_a", 3, True)]
    live_b = [("acct_b", i, False) for i in range(1, 4)]
    assert rows == sorted([("acct_a", 1, False), ("acct_a", 2, False), *retired, *live_b])


def test_a_version_without_scope_retires_every_older_row(tmp_path, warehouse):
    _two_accounts(tmp_path, warehouse)
    messages = [SCHEMA, *_versioned("acct_b", range(1, 2), 2), _activate(2)]
    assert run(tmp_path, messages, **warehouse.settings).exit_code == 0
    live = warehouse.query(f"SELECT {ACCOUNT}, id FROM charge WHERE _sdc_deleted_at IS NULL")
    assert live == [("acct_b", 1)]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (["acct_a"], "'scope' must be an object of column names to scalar values"),
        ({ACCOUNT: {"id": "acct_a"}}, "'scope' must be an object of column names to scalar"),
        ({"account": "acct_a"}, "scope column 'account' is not a column of table main.charge"),
    ],
)
def test_a_scope_the_target_cannot_use_is_one_line_after_committing_what_came_before(
    tmp_path, warehouse, scope, expected
):
    messages = [SCHEMA, *_versioned("acct_a", range(1, 4), 1), state({"n": 3})]
    messages += [_activate(1, scope), *_versioned("acct_a", range(4, 6), 1)]
    result = run(tmp_path, messages, **warehouse.settings)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "input line 6" in lines[0] and expected in lines[0], result.stderr
    assert result.states == [{"n": 3}]
    assert warehouse.query("SELECT id FROM charge ORDER BY id") == [(1,), (2,), (3,)]


def test_a_table_keyed_by_id_is_re_keyed_by_account_and_id(tmp_path, warehouse):
    old = schema_message("charge", {"id": {"type": "integer"}, "v": {"type": "string"}})
    first = [old, *(record("charge", id=i, v=f"old{i}") for i in range(1, 4)), state({"run": 1})]
    assert run(tmp_path, first, **warehouse.settings).exit_code == 0
    # The new column is added (NULL in the old rows); an old row re-sent under the new keys
    # replaces its row instead of doubling it.
    second = [SCHEMA, record("charge", **{ACCOUNT: "acct_a"}, id=1, v="new1")]
    second += [record("charge", **{ACCOUNT: "acct_a"}, id=4, v="new4"), state({"run": 2})]
    result = run(tmp_path, second, **warehouse.settings)
    assert result.exit_code == 0, result.stderr
    sql = f"SELECT {ACCOUNT}, id, v FROM charge ORDER BY id, {ACCOUNT}"
    assert warehouse.query(sql) == [
        ("acct_a", 1, "new1"),
        (None, 2, "old2"),
        (None, 3, "old3"),
        ("acct_a", 4, "new4"),
    ]
    # Another account's object with the same id is a row of its own; an old row re-sent
    # later (a full re-read) still replaces its row.
    third = [SCHEMA, record("charge", **{ACCOUNT: "acct_b"}, id=1, v="b1")]
    third += [record("charge", **{ACCOUNT: "acct_a"}, id=2, v="new2"), state({"run": 3})]
    assert run(tmp_path, third, **warehouse.settings).exit_code == 0
    assert warehouse.query(sql) == [
        ("acct_a", 1, "new1"),
        ("acct_b", 1, "b1"),
        ("acct_a", 2, "new2"),
        (None, 3, "old3"),
        ("acct_a", 4, "new4"),
    ]


def test_a_scope_of_two_columns_retires_the_older_rows_of_one_parent(tmp_path, warehouse):
    """A scope of two columns (the account read and a parent's column) retires only the
    older rows holding both values."""
    props = {ACCOUNT: {"type": "string"}, "account": {"type": "string"}, "id": {"type": "string"}}
    person = schema_message("person", props, keys=[ACCOUNT, "id"])

    def persons(version: int, *rows: tuple[str, str]) -> list[dict]:
        return [
            {
                "type": "RECORD",
                "stream": "person",
                "record": {ACCOUNT: "acct_platform", "account": parent, "id": person_id},
                "version": version,
            }
            for parent, person_id in rows
        ]

    def activate(version: int, scope: dict) -> dict:
        return {"type": "ACTIVATE_VERSION", "stream": "person", "version": version, "scope": scope}

    first = [person, *persons(1, ("acct_x", "p1"), ("acct_x", "p2"), ("acct_y", "p3"))]
    first += [activate(1, {ACCOUNT: "acct_platform"}), state({"run": 1})]
    assert run(tmp_path, first, **warehouse.settings).exit_code == 0
    second = [person, *persons(2, ("acct_x", "p1"))]
    second += [activate(2, {ACCOUNT: "acct_platform", "account": "acct_x"}), state({"run": 2})]
    result = run(tmp_path, second, **warehouse.settings)
    assert result.exit_code == 0, result.stderr
    rows = warehouse.query("SELECT id, _sdc_deleted_at IS NOT NULL FROM person ORDER BY id")
    assert rows == [("p1", False), ("p2", True), ("p3", False)]
