"""What a run did to its tables (`table_history`): overwrites once per table, the keys
loaded into tables it created; and a batch's keys that may have rows when it is cut before
a failing line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from target_duckdb.batch import Batch
from target_duckdb.table_history import TableHistory


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.lists(st.text(max_size=6), unique=True)),
        max_size=8,
    )
)
def test_a_loaded_key_is_never_taken_for_a_new_one(batches) -> None:
    history = TableHistory()
    history.track("a")
    history.track("b")
    loaded: dict[str, set] = {"a": set(), "b": set()}
    for table, keys in batches:
        replaced = history.replaced(table, keys, [str])
        assert replaced is not None
        assert {key for key in keys if key in loaded[table]} <= set(replaced)
        loaded[table].update(keys)


def test_new_keys_are_new_in_each_tracked_table() -> None:
    history = TableHistory()
    history.track("a")
    history.track("b")
    assert history.replaced("a", ["ch_1", "ch_2", "ch_3"], [str]) == []
    assert history.replaced("b", ["ch_1", "ch_2"], [str]) == []
    assert history.replaced("a", ["ch_4", "ch_2"], [str]) == ["ch_2"]
    assert history.replaced("c", ["ch_1"], [str]) is None  # not created by the run
    history.forget("a")  # its keys changed columns
    assert history.replaced("a", ["ch_1"], [str]) is None


def test_composite_keys_are_tracked_while_each_value_is_of_its_column_s_kind() -> None:
    history = TableHistory()
    history.track("a")
    assert history.replaced("a", [("in_1", 1), ("in_1", 2)], [str, int]) == []
    assert history.replaced("a", [("in_1", 2), ("in_2", 1)], [str, int]) == [("in_1", 2)]
    assert history.replaced("a", [("in_3", True)], [str, int]) is None  # a bool is no int
    assert history.replaced("a", [("in_4", 1)], [str, int]) is None  # no longer tracked


def test_a_key_of_another_kind_ends_the_tracking() -> None:
    # 1 and "1" are one VARCHAR value; the filter would take them for two keys.
    history = TableHistory()
    history.track("a")
    assert history.replaced("a", ["1"], [str]) == []
    assert history.replaced("a", [1], [str]) is None
    assert history.replaced("a", ["2"], [str]) is None
    history.track("b")
    assert history.replaced("b", [b'{"id": 1}'], [None]) is None  # a JSON key column


def test_an_overwrite_empties_a_table_once_per_run() -> None:
    history = TableHistory()
    assert history.load_method("a", "overwrite") == "overwrite"
    assert history.load_method("a", "overwrite") == "append-only"
    assert history.load_method("b", "overwrite") == "overwrite"
    assert history.load_method("b", "upsert") == "upsert"


def test_a_batch_cut_before_a_line_replaces_only_the_keys_it_keeps() -> None:
    batch = Batch(
        schema_name="main",
        table="t",
        stream="t",
        file="/nonexistent",
        payload=b"",
        lines=[1, 2, 3],
        record_keys=["x", "y", "z"],
        replaced=["y", "z"],
        superseded=[],
        columns={"id": "VARCHAR"},
        keys=["id"],
        method="upsert",
        hard_delete=False,
    )
    texts = [b'{"id":"x"}', b'{"id":"y"}', b'{"id":"z"}']
    cut = batch.before(3, texts)
    assert cut is not None
    assert cut.record_keys == ["x", "y"]
    assert cut.replaced == ["y"]  # z's row must stay: its record is not loaded
