"""`tap-stripe | target-duckdb` against the simulator: full sync, incremental run, selection."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from tap_stripe.tables import TABLES_BY_NAME

from stripe_sim.runner import SimHandle, run_simulator
from tests.e2e.conftest import Reference
from tests.e2e.harness import (
    ACCOUNT_COLUMN,
    BOOKMARKED,
    CHANGE_COLUMNS,
    DELETED_AT,
    LOOKBACK,
    SIM_KNOBS,
    STREAMS,
    TAP,
    VERSIONED,
    WRITTEN_WHOLE,
    assert_matches_truth,
    assert_reads_only_since,
    assert_rows_match,
    bookmarks,
    columns,
    connect,
    deleted_at,
    events_cursors,
    key_of,
    owner,
    persisted_state,
    quiet_run_requests,
    read_all,
    read_table,
    relisted_by_lookback,
    run_pipe,
    table_versions,
    tables,
    tap_records,
    truth,
    write_configs,
)

pytestmark = pytest.mark.e2e


def test_full_sync_lands_exactly_the_simulators_objects(
    reference: Reference, shared_sim: SimHandle
) -> None:
    database = reference.configs.database
    assert_matches_truth(database, shared_sim)
    # Tracked tables and tables read whole: every row written under the read's table
    # version, none deleted.
    for stream in STREAMS:
        if stream in VERSIONED:
            assert columns(database, stream) >= CHANGE_COLUMNS, stream
            assert None not in table_versions(database, stream).values(), stream
            assert not deleted_at(database, stream), stream
        else:
            assert not CHANGE_COLUMNS & columns(database, stream), stream

    charges = {charge["id"]: charge for charge in truth(shared_sim, "charge")}
    invoices = {invoice["id"]: invoice for invoice in truth(shared_sim, "invoice")}
    with connect(database) as db:
        brands = db.execute(
            "select id, payment_method_details->>'$.card.brand', "
            "billing_details->>'$.address.country', metadata->>'$.order_id' from stripe.charge"
        ).fetchall()
        lines = db.execute(
            "select id, json_array_length(lines->'$.data'), lines->>'$.data[0].id', "
            "(lines->>'$.has_more')::boolean from stripe.invoice"
        ).fetchall()
        joined, with_customer, orphans = db.execute(
            "select count(u.id), count(c.customer), count(c.customer) - count(u.id) "
            "from stripe.charge c left join stripe.customer u on c.customer = u.id"
        ).fetchall()[0]

    for charge_id, brand, country, order_id in brands:
        charge = charges[charge_id]
        card = (charge["payment_method_details"] or {}).get("card") or {}
        address = (charge["billing_details"] or {}).get("address") or {}
        assert (brand, country, order_id) == (
            card.get("brand"),
            address.get("country"),
            (charge["metadata"] or {}).get("order_id"),
        )
    assert any(brand for _, brand, _, _ in brands)
    for invoice_id, count, first, has_more in lines:
        expected = invoices[invoice_id]["lines"]["data"]
        assert (count, first, has_more) == (len(expected), expected[0]["id"], False)
    assert max(count for _, count, _, _ in lines) > 10, "no invoice had a cut-short list"
    assert joined == with_customer > 0
    assert orphans == 0


def test_target_persists_the_state_it_emits(reference: Reference) -> None:
    emitted = [json.loads(line) for line in reference.states.splitlines()]
    tap_states = [
        json.loads(line)["value"]
        for line in reference.tap_output.read_text().splitlines()
        if line.startswith('{"type":"STATE"') or '"type": "STATE"' in line
    ]
    assert emitted, "the target emitted no state"
    assert emitted[-1] == persisted_state(reference.configs) == tap_states[-1]
    assert set(bookmarks(emitted[-1])) == BOOKMARKED


def _wait_for_next_second(created: int) -> None:
    """The tap reads `created` below the second it starts in: objects made in that same
    second belong to its next run. Start after the new objects' second, so this run owes
    them."""
    remaining = created + 1 - time.time()
    if remaining > 0:
        time.sleep(remaining)


def test_second_run_fetches_only_new_objects(sim: SimHandle, tmp_path: Path) -> None:
    configs = write_configs(tmp_path, sim)
    run_pipe(configs)
    first_state = persisted_state(configs)
    first = bookmarks(first_state)
    assert set(first) == BOOKMARKED

    created = sim.mutate(
        product={"create": 1},
        price={"create": 2},
        coupon={"create": 1},
        customer={"create": 3},
        subscription={"create": 2},
        invoice={"create": 3},
        charge={"create": 12},
    )
    _wait_for_next_second(created["now"])
    sim.reset_stats()
    tap_output = tmp_path / "second.jsonl"
    run_pipe(configs, resume=True, tap_output=tap_output)
    log = sim.stats(log=True)["log"]

    emitted = tap_records(tap_output)
    for stream in STREAMS:
        spec = TABLES_BY_NAME[stream]
        if spec.single_object:
            assert len(emitted[stream]) == 1, stream
            continue
        ids = {record["id"] for record in emitted.get(stream, [])}
        if stream in WRITTEN_WHOLE:
            keys = {key_of(stream, record) for record in emitted.get(stream, [])}
            assert keys == {key_of(stream, obj) for obj in truth(sim, stream)}, stream
            continue
        if spec.parent is not None:
            # Children come with their parents: rows of the parents this run wrote.
            column = spec.parent.column
            written = {r["id"] for r in emitted.get(owner(spec).name, [])}
            if spec.parent.table == owner(spec).name and not spec.event_types:
                assert {r[column] for r in emitted.get(stream, [])} <= written, stream
            continue
        due = {
            obj["id"]
            for obj in truth(sim, stream)
            if obj[TABLES_BY_NAME[stream].created_field] >= first[stream] - LOOKBACK
        }
        assert ids == due, stream
        assert set(created["create"].get(stream, [])) <= ids, stream
    for stream, new_ids in created["create"].items():
        assert len(new_ids) > 0, stream

    assert_reads_only_since(log, first_state, quiet_run_requests(sim))
    assert_matches_truth(configs.database, sim)
    assert all(
        value > first[stream] for stream, value in bookmarks(persisted_state(configs)).items()
    )


def test_resume_one_liner(reference: Reference, shared_sim: SimHandle, tmp_path: Path) -> None:
    """`tap-stripe --config tap.json --state <(target-duckdb-state --config target.json) |
    target-duckdb --config target.json`, twice: the second run starts at the bookmarks."""
    configs = write_configs(tmp_path, shared_sim)
    run_pipe(configs, state_substitution=True)
    first = persisted_state(configs)
    shared_sim.reset_stats()
    tap_output = tmp_path / "second.jsonl"
    run_pipe(configs, state_substitution=True, tap_output=tap_output)

    # The tables read whole, and those whose events fall in the lookback window the
    # events pass reads again (the event table's, and their objects' tables).
    assert set(tap_records(tap_output)) == WRITTEN_WHOLE | relisted_by_lookback(
        shared_sim, min(events_cursors(first).values())
    )
    # Per table one list request, plus per tracked table its /v1/events requests, plus
    # what the tables read whole cost besides their first page.
    assert shared_sim.stats()["total"] == quiet_run_requests(shared_sim)
    assert bookmarks(persisted_state(configs)).keys() == bookmarks(first).keys()
    assert read_all(configs.database) == read_all(reference.configs.database)


def _select(catalog: dict, streams: dict[str, set[str] | None]) -> dict:
    """Select ``streams`` (a set: only those top-level fields; None: all), nothing else."""
    for entry in catalog["streams"]:
        wanted = entry["tap_stream_id"] in streams
        fields = streams.get(entry["tap_stream_id"])
        for metadata in entry["metadata"]:
            breadcrumb = metadata["breadcrumb"]
            if not breadcrumb:
                metadata["metadata"]["selected"] = wanted
            elif len(breadcrumb) == 2 and fields is not None:
                metadata["metadata"]["selected"] = breadcrumb[-1] in fields
    return catalog


CHARGE_FIELDS = {"amount", "currency", "customer", "payment_method_details", "status"}


def _sync_selected(sim: SimHandle, folder: Path) -> Path:
    """Discover, select all of customer and five fields of charge, sync; the DuckDB file."""
    configs = write_configs(folder, sim)
    discovered = subprocess.run(
        [str(TAP), "--config", str(configs.tap), "--discover"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    catalog = _select(json.loads(discovered.stdout), {"charge": CHARGE_FIELDS, "customer": None})
    catalog_path = folder / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    run_pipe(configs, catalog=catalog_path)
    assert set(bookmarks(persisted_state(configs))) == {"charge", "customer"}
    return configs.database


def test_catalog_selection_lands_only_selected_streams_and_fields(tmp_path: Path) -> None:
    # Only fields of Stripe's 2023-08-16 schema here; see the next test for newer ones.
    with run_simulator(**{**SIM_KNOBS, "newer_fields_rate": 0}) as sim:
        database = _sync_selected(sim, tmp_path)
        customers, charges = truth(sim, "customer"), truth(sim, "charge")

    assert tables(database) == {"charge", "customer"}
    assert (
        columns(database, "charge")
        == CHARGE_FIELDS | {"id", "created", ACCOUNT_COLUMN} | CHANGE_COLUMNS
    )
    assert_rows_match(read_table(database, "customer"), customers, "customer")
    expected = [
        {**{key: charge[key] for key in CHARGE_FIELDS | {"id", "created"}}, DELETED_AT: None}
        for charge in charges
    ]
    assert read_table(database, "charge") == expected


def test_catalog_selection_leaves_out_fields_stripe_added_later(
    shared_sim: SimHandle, tmp_path: Path
) -> None:
    assert any("source" in charge for charge in shared_sim.objects("charge"))
    database = _sync_selected(shared_sim, tmp_path)
    assert (
        columns(database, "charge")
        == CHARGE_FIELDS | {"id", "created", ACCOUNT_COLUMN} | CHANGE_COLUMNS
    )
