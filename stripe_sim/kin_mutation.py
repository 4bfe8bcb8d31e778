"""Mutations of the children listed per parent, as Stripe's requests make them, with the
events Stripe sends for them.

Body entries (beside the tables' own, see ``mutate.py``)::

    {"paymentmethod": {"create": 1, "update": 1, "delete": 1},
     "customerbalancetransaction": {"create": 2}, "payoutbalancetransaction": {"create": 1}}

=================================  ==============================  ===========================
table                              operations                      events
=================================  ==============================  ===========================
paymentmethod                      create (attach), update,        ``payment_method.attached``,
                                   delete (detach)                 ``.updated`` /
                                                                   ``.automatically_updated``,
                                                                   ``.detached``
customerbalancetransaction         create                          ``customer.updated``
                                                                   (``balance``)
customercashbalancetransaction     create                          its ``.created``
setupattempt                       create                          the setup intent's
                                                                   ``succeeded`` /
                                                                   ``setup_failed`` /
                                                                   ``requires_action``
person                             create, update, delete          none on the platform
capability                         update (a new status)           none on the platform
usagerecordsummary                 update (new usage reported)     none (Stripe sends none)
payoutbalancetransaction           create (an automatic payout     ``payout.paid``,
                                   paid)                           ``payout.reconciliation_
                                                                   completed``
=================================  ==============================  ===========================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from stripe_sim import per_parent
from stripe_sim.children import remember_removed_as
from stripe_sim.dataset import row_of
from stripe_sim.kin import CAPABILITY_STATUS
from stripe_sim.store import Row, Table, encode
from stripe_sim.tables import STRIPE_EVENT_TYPES

if TYPE_CHECKING:
    from stripe_sim.mutate import Mutation

OPERATIONS: dict[str, frozenset[str]] = {
    "paymentmethod": frozenset({"create", "update", "delete"}),
    "customerbalancetransaction": frozenset({"create"}),
    "customercashbalancetransaction": frozenset({"create"}),
    "setupattempt": frozenset({"create"}),
    "person": frozenset({"create", "update", "delete"}),
    "capability": frozenset({"update"}),
    "usagerecordsummary": frozenset({"update"}),
    "payoutbalancetransaction": frozenset({"create"}),
}
KIN_MUTABLE: tuple[str, ...] = tuple(OPERATIONS)
# A new setup attempt's status -> its setup intent's status and event.
ATTEMPT_OUTCOME = {
    "succeeded": ("succeeded", "setup_intent.succeeded"),
    "failed": ("requires_payment_method", "setup_intent.setup_failed"),
    "requires_action": ("requires_action", "setup_intent.requires_action"),
}
REFUSED = {
    "customerbalancetransaction": "Stripe reports no change of its rows but a new balance",
    "capability": "a connected account's capabilities are Stripe's, only their status changes",
    "usagerecordsummary": "a summary follows the usage reported; report usage (update)",
}


def kin_problem(stream: str, ops: dict[str, int]) -> str | None:
    """Why Stripe cannot make the changes ``ops`` asks of a per-parent child, if it cannot."""
    refused = sorted(op for op, n in ops.items() if n and op not in OPERATIONS[stream])
    if not refused:
        return None
    allowed = ", ".join(sorted(OPERATIONS[stream]))
    reason = REFUSED.get(stream, "")
    return f"Stripe cannot {'/'.join(refused)} {stream!r} rows (only: {allowed}) {reason}".strip()


class KinChanges:
    """One mutation call's changes of per-parent children, written through its
    :class:`Mutation`."""

    def __init__(self, mutation: Mutation) -> None:
        self.mutation = mutation
        self.data = mutation.data
        self.gen = mutation.gen
        self.now = mutation.now

    def run(self, child: str, op: str, n: int) -> None:
        for _ in range(n):
            changed = getattr(self, f"{op}_{child}")()
            if changed is None:
                return
            self.mutation.touched[op].setdefault(child, []).append(changed)

    # helpers

    def parent(self, table: str, eligible: Any = None) -> dict[str, Any] | None:
        rows = self.data.tables[table].rows
        if eligible is not None:
            rows = tuple(r for r in rows if eligible(r))
        if not rows:
            return None
        return orjson.loads(rows[self.gen.rng.randrange(len(rows))].body)

    def rows(self, child: str, parent_id: str) -> list[Row]:
        return list(self.data.kin[child].get(parent_id, per_parent.EMPTY).rows)

    def put(self, child: str, parent_id: str, rows: list[Row]) -> None:
        self.data.kin[child][parent_id] = Table.of(rows)

    def pick(self, child: str) -> tuple[str, Row] | None:
        """A random row of ``child`` under a live parent."""
        choices = [
            (parent_id, row)
            for parent_id in per_parent.live_parents(self.data, child)
            for row in self.rows(child, parent_id)
        ]
        return choices[self.gen.rng.randrange(len(choices))] if choices else None

    def store_parent(self, table: str, obj: dict[str, Any]) -> bytes:
        row = row_of(table, obj)
        self.mutation.replace(table, upserts=[row])
        return row.body

    def add(self, child: str, parent: dict[str, Any]) -> dict[str, Any]:
        obj = self.gen.kin.new(child, parent, self.now)
        rows = [*self.rows(child, parent["id"]), per_parent.row_of(child, obj)]
        self.put(child, parent["id"], rows)
        return obj

    def replace_row(self, child: str, parent_id: str, obj: dict[str, Any]) -> None:
        rows = [r for r in self.rows(child, parent_id) if r.id != obj["id"]]
        self.put(child, parent_id, [*rows, per_parent.row_of(child, obj)])

    def remove_row(self, child: str, parent_id: str, object_id: str) -> None:
        rows = [r for r in self.rows(child, parent_id) if r.id != object_id]
        self.put(child, parent_id, rows)
        column = per_parent.column(child)
        remember_removed_as(self.data, child, column, parent_id, [object_id], self.now)

    # payment methods

    def create_paymentmethod(self) -> str | None:
        customer = self.parent("customer")
        if customer is None:
            return None
        obj = self.add("paymentmethod", customer)
        self.mutation.event("payment_method.attached", encode(obj))
        return obj["id"]

    def update_paymentmethod(self) -> str | None:
        found = self.pick("paymentmethod")
        if found is None:
            return None
        parent_id, row = found
        obj = orjson.loads(row.body)
        if obj.get("card") and self.gen.rng.random() < 0.5:  # the card network's new expiry
            previous: dict[str, Any] = {"card": obj["card"]}
            obj["card"] = {**obj["card"], "exp_year": (obj["card"].get("exp_year") or 2030) + 2}
            event = "payment_method.automatically_updated"
        else:
            previous = {"metadata": obj.get("metadata")}
            obj["metadata"] = {**(obj.get("metadata") or {}), "sim_revision": self.token()}
            event = "payment_method.updated"
        self.replace_row("paymentmethod", parent_id, obj)
        self.mutation.event(event, encode(obj), previous)
        return obj["id"]

    def delete_paymentmethod(self) -> str | None:
        found = self.pick("paymentmethod")
        if found is None:
            return None
        parent_id, row = found
        obj = {**orjson.loads(row.body), "customer": None}
        self.remove_row("paymentmethod", parent_id, row.id)
        self.data.detached[row.id] = encode(obj)
        self.mutation.event("payment_method.detached", encode(obj), {"customer": parent_id})
        return row.id

    # customers' balances

    def create_customerbalancetransaction(self) -> str | None:
        customer = self.parent("customer")
        if customer is None:
            return None
        obj = self.add("customerbalancetransaction", customer)
        previous = {"balance": customer.get("balance")}
        customer["balance"] = obj["ending_balance"]
        body = self.store_parent("customer", customer)
        self.mutation.event("customer.updated", body, previous)
        return obj["id"]

    def create_customercashbalancetransaction(self) -> str | None:
        customer = self.parent("customer")
        if customer is None:
            return None
        rows = self.rows("customercashbalancetransaction", customer["id"])
        before = orjson.loads(rows[0].body)["ending_balance"] if rows else 0
        obj = self.gen.kin.new("customercashbalancetransaction", customer, self.now)
        obj["ending_balance"] = before + obj["net_amount"]
        self.put(
            "customercashbalancetransaction",
            customer["id"],
            [*rows, per_parent.row_of("customercashbalancetransaction", obj)],
        )
        self.mutation.event("customer_cash_balance_transaction.created", encode(obj))
        return obj["id"]

    # setup attempts

    def create_setupattempt(self) -> str | None:
        intent = self.parent("setupintent")
        if intent is None:
            return None
        outcome = self.gen.rng.choice(sorted(ATTEMPT_OUTCOME))
        status, event = ATTEMPT_OUTCOME[outcome]
        obj = self.gen.kin.new("setupattempt", intent, self.now)
        obj["status"] = outcome
        self.replace_row("setupattempt", intent["id"], obj)
        previous = {"status": intent.get("status"), "latest_attempt": intent.get("latest_attempt")}
        intent.update(status=status, latest_attempt=obj["id"])
        body = self.store_parent("setupintent", intent)
        if event in STRIPE_EVENT_TYPES:
            self.mutation.event(event, body, previous)
        return obj["id"]

    # connected accounts: no events on the platform

    def create_person(self) -> str | None:
        account = self.parent("connectedaccount")
        if account is None:
            return None
        return self.add("person", account)["id"]

    def update_person(self) -> str | None:
        found = self.pick("person")
        if found is None:
            return None
        parent_id, row = found
        obj = orjson.loads(row.body)
        obj["metadata"] = {**(obj.get("metadata") or {}), "sim_revision": self.token()}
        self.replace_row("person", parent_id, obj)
        return obj["id"]

    def delete_person(self) -> str | None:
        found = self.pick("person")
        if found is None:
            return None
        parent_id, row = found
        self.remove_row("person", parent_id, row.id)
        return row.id

    def update_capability(self) -> str | None:
        found = self.pick("capability")
        if found is None:
            return None
        parent_id, row = found
        obj = orjson.loads(row.body)
        obj["status"] = next(s for s in CAPABILITY_STATUS if s != obj["status"])
        self.replace_row("capability", parent_id, obj)
        account_row = self.data.tables["connectedaccount"].get(parent_id)
        assert account_row is not None
        account = orjson.loads(account_row.body)
        account["capabilities"] = {**(account.get("capabilities") or {}), obj["id"]: obj["status"]}
        self.store_parent("connectedaccount", account)
        return obj["id"]

    # usage

    def update_usagerecordsummary(self) -> str | None:
        """Usage reported on a metered item: its current period's total grows."""
        items = [
            item_id
            for item_id in per_parent.live_parents(self.data, "usagerecordsummary")
            if self.rows("usagerecordsummary", item_id)
        ]
        if not items:
            return None
        item_id = items[self.gen.rng.randrange(len(items))]
        current = orjson.loads(self.rows("usagerecordsummary", item_id)[0].body)
        current["total_usage"] += self.gen.rng.randrange(1, 500)
        self.replace_row("usagerecordsummary", item_id, current)
        return current["id"]

    # payouts

    def create_payoutbalancetransaction(self) -> str | None:
        """An automatic payout in transit is paid (a new one made from the available
        funds when none is): its transactions are entered and listed under it."""
        ledger = self.gen.ledger
        waiting = [r for r in self.data.tables["payout"].rows if r.id in ledger.reserved]
        if waiting:
            payout = orjson.loads(waiting[self.gen.rng.randrange(len(waiting))].body)
        else:
            payout = self.new_payout()
            if payout is None:
                return None
        previous = ledger.pay(self.data, payout)
        self.mutation.replace("balancetransaction", upserts=ledger.drain())
        body = self.store_parent("payout", payout)
        self.mutation.event("payout.paid", body, {"status": previous["status"]})
        if "payout.reconciliation_completed" in STRIPE_EVENT_TYPES:
            self.mutation.event(
                "payout.reconciliation_completed",
                body,
                {"reconciliation_status": previous["reconciliation_status"]},
            )
        return payout["id"]

    def new_payout(self) -> dict[str, Any] | None:
        """An automatic payout of the available funds, made now (``payout.created``)."""
        payout = self.gen.derived("payout", self.now, lambda table: None, self.data)
        if payout["status"] == "canceled":
            return None
        self.mutation.event("payout.created", self.store_parent("payout", payout))
        self.mutation.touched["create"].setdefault("payout", []).append(payout["id"])
        return payout

    def token(self) -> str:
        return self.gen.synth.token(6)
