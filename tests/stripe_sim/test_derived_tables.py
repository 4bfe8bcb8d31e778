"""A table added to the registry is served from its entry and shapes.json alone.

Each test runs a child Python that adds registry entries for real Stripe tables the
project does not list yet (refunds, disputes, payouts), then starts the simulator: the
entries are all the simulator is given. The child prints what it saw as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from stripe_sim.runner import REPO_ROOT

EXTEND_REGISTRY = """
import dataclasses, json
import tap_stripe.tables as registry
from tap_stripe.tables import TableSpec

registry.TABLES = (
    *registry.TABLES,
    TableSpec(name="refund", path="/v1/refunds",
              event_types=("refund.created", "refund.updated")),
    TableSpec(name="dispute", path="/v1/disputes", event_types=("charge.dispute.*",)),
    TableSpec(name="payout", path="/v1/payouts", event_types=("payout.*",)),
)

from stripe_sim.runner import run_simulator
from tests.stripe_sim.conftest import walk
"""


def run_child(body: str) -> Any:
    script = EXTEND_REGISTRY + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_new_tables_are_listed_with_their_shape_and_ids_that_join():
    seen = run_child(
        """
        with run_simulator(counts={"refund": 30, "charge": 200}, now=1_790_000_000) as sim:
            refunds = walk(sim, "/v1/refunds")
            charge_ids = {c["id"] for c in walk(sim, "/v1/charges")}
            print(json.dumps({
                "count": len(refunds),
                "objects": sorted({r["object"] for r in refunds}),
                "prefixes": sorted({r["id"].split("_")[0] for r in refunds}),
                "joined": sum(r["charge"] in charge_ids for r in refunds),
                "newest_first": [r["created"] for r in refunds]
                    == sorted((r["created"] for r in refunds), reverse=True),
                "payouts": len(walk(sim, "/v1/payouts")),
                "retrieved": sim.request("/v1/refunds/" + refunds[0]["id"]).json()["id"]
                    == refunds[0]["id"],
            }))
        """
    )
    assert seen["count"] == 30
    assert seen["objects"] == ["refund"]
    assert seen["prefixes"] == ["re"]
    assert seen["joined"] == 30, "every refund names a charge the simulator lists"
    assert seen["newest_first"] is True
    assert seen["payouts"] == 50, "a table without a count gets the derived default"
    assert seen["retrieved"] is True


def test_new_tables_take_the_documented_filters_and_refuse_others():
    seen = run_child(
        """
        with run_simulator(counts={"refund": 40, "charge": 200}, now=1_790_000_000) as sim:
            refunds = walk(sim, "/v1/refunds")
            middle = sorted(r["created"] for r in refunds)[20]
            charge = refunds[0]["charge"]
            print(json.dumps({
                "created": len(walk(sim, "/v1/refunds", {"created[gte]": middle})),
                "by_charge": sorted(r["id"] for r in walk(sim, "/v1/refunds", {"charge": charge})),
                "expected": sorted(r["id"] for r in refunds if r["charge"] == charge),
                "unknown": sim.request("/v1/refunds", {"colour": "red"}).status,
            }))
        """
    )
    assert seen["created"] == 20
    assert seen["by_charge"] == seen["expected"]
    assert seen["unknown"] == 400


def test_new_tables_mutate_with_their_events():
    seen = run_child(
        """
        with run_simulator(counts={"refund": 10}, now=1_790_000_000) as sim:
            done = sim.mutate(refund={"create": 2, "update": 3}, payout={"create": 1})
            events = walk(sim, "/v1/events", {"type": "refund.*"})
            print(json.dumps({
                "created": done["create"]["refund"],
                "updated": done["update"]["refund"],
                "count": len(walk(sim, "/v1/refunds")),
                "types": sorted(e["type"] for e in events),
                "payout_events": sorted(
                    e["type"] for e in walk(sim, "/v1/events", {"type": "payout.*"})
                ),
            }))
        """
    )
    assert len(seen["created"]) == 2
    assert len(seen["updated"]) == 3
    assert seen["count"] == 12
    assert seen["types"].count("refund.updated") == 3
    assert seen["types"].count("refund.created") >= 2
    assert "payout.created" in seen["payout_events"]
