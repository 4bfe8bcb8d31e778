"""Mutate an account between runs: create, update and delete objects, appending events.

Body of ``POST /_sim/mutate``::

    {"account": "acct_...",   # optional, defaults to the main account; one with data
     "customer": {"create": 2, "update": 3, "delete": 1},
     "charge": {"create": 10},
     "subscriptionitem": {"create": 2, "delete": 1}}  # children: see child_mutation.py

Tables are processed in dependency order (products before prices, customers before
subscriptions...), so objects created in one call can be referenced by later tables;
child tables come last, so new parents can get new children.
Deletes follow Stripe: a deleted subscription is cancelled (it stays retrievable and
listed with ``status=all``); a deleted customer leaves lists and its GET by id answers
Stripe's ``{"deleted": true}`` stub, and its live subscriptions are cancelled with it;
other deleted objects leave lists and their GET by id answers 404. Only draft invoices and
live subscriptions can be deleted, and only connected accounts without data of their own
(those with data stay listed; updated, their ``GET /v1/account`` answers the new row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from stripe_sim import per_parent
from stripe_sim.child_mutation import CHILD_TABLES, ChildChanges, child_problem
from stripe_sim.children import removed_with_parent
from stripe_sim.config import MAIN_ACCOUNT
from stripe_sim.dataset import (
    AccountData,
    Generator,
    Pool,
    created_event_type,
    row_of,
)
from stripe_sim.kin_mutation import KIN_MUTABLE, KinChanges, kin_problem
from stripe_sim.state import SimState
from stripe_sim.store import Row
from stripe_sim.tables import (
    DELETABLE,
    DERIVED,
    MUTABLE,
    SPECS,
    UPDATABLE,
    TableKind,
    event_for,
)

OPERATIONS = ("create", "update", "delete")
STATUS_NEXT = {"active": "past_due", "past_due": "active", "trialing": "active"}


def live(row: Row) -> bool:
    """A subscription that has not ended, so it can still be cancelled."""
    return row.attrs["status"] not in ("canceled", "incomplete_expired")


def deletable(stream: str, row: Row) -> bool:
    """Stripe deletes only draft invoices and cancels only live subscriptions."""
    if stream == "invoice":
        return row.attrs["status"] == "draft"
    if stream == "subscription":
        return live(row)
    return True


class MutationError(ValueError):
    """The mutation request is malformed or asks for something Stripe cannot do."""


def validate(body: dict[str, Any]) -> tuple[str, dict[str, dict[str, int]]]:
    account = body.get("account", MAIN_ACCOUNT)
    plan: dict[str, dict[str, int]] = {}
    for stream, ops in body.items():
        if stream == "account":
            continue
        child = stream in SPECS and SPECS[stream].kind is TableKind.EMBEDDED_CHILD
        kin = stream in SPECS and SPECS[stream].kind is TableKind.PER_PARENT_CHILD
        if stream not in MUTABLE and not child and not kin:
            mutable = ", ".join((*MUTABLE, *CHILD_TABLES, *KIN_MUTABLE))
            raise MutationError(f"cannot mutate {stream!r}; mutable tables: {mutable}")
        if not isinstance(ops, dict) or set(ops) - set(OPERATIONS):
            raise MutationError(f"{stream}: expected an object with keys {OPERATIONS}")
        for op, n in ops.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise MutationError(f"{stream}.{op} must be an integer >= 0")
        problem = child_problem(stream, ops) if child else None
        if kin:
            problem = (
                kin_problem(stream, ops) if stream in KIN_MUTABLE else f"cannot mutate {stream!r}"
            )
        if problem:
            raise MutationError(problem)
        if child or kin:
            plan[stream] = ops
            continue
        if ops.get("delete") and stream not in DELETABLE:
            raise MutationError(f"Stripe objects of type {stream!r} cannot be deleted")
        if ops.get("update") and stream not in UPDATABLE:
            raise MutationError(f"Stripe reports no update of {stream!r} objects (no event)")
        plan[stream] = ops
    return str(account), plan


def mutate(state: SimState, body: dict[str, Any]) -> dict[str, Any]:
    """Apply a mutation request; returns the ids touched and the events appended."""
    account, plan = validate(body)
    data = state.account(account)
    if data is None:
        raise MutationError(f"unknown account {account!r}")
    if data.account_id not in state.generators:
        raise MutationError(
            f"account {account!r} has no data of its own to mutate; accounts with data: "
            f"{', '.join(state.generators)}"
        )
    with state.lock:
        generator = state.generators[data.account_id]
        generator.now = state.clock()
        generator.ledger.live = True
        mutation = Mutation(state, data, generator)
        for stream in MUTABLE:
            ops = plan.get(stream, {})
            mutation.create(stream, ops.get("create", 0))
            mutation.update(stream, ops.get("update", 0))
            mutation.delete(stream, ops.get("delete", 0))
        children = ChildChanges(mutation)
        for child in CHILD_TABLES:
            for op in OPERATIONS:
                children.run(child, op, plan.get(child, {}).get(op, 0))
        kin = KinChanges(mutation)
        for child in KIN_MUTABLE:
            for op in OPERATIONS:
                kin.run(child, op, plan.get(child, {}).get(op, 0))
        mutation.commit_events()
        return mutation.summary()


# Children made with a new parent that Stripe announces with events of their own.
NESTED_CREATED_EVENTS = {
    ("customer", "sources"): "customer.source.created",
    ("customer", "tax_ids"): "customer.tax_id.created",
}
KIN_CREATED_EVENTS = {
    "paymentmethod": "payment_method.attached",
    "customercashbalancetransaction": "customer_cash_balance_transaction.created",
}


class Mutation:
    """One mutation call's work on an account's tables."""

    def __init__(self, state: SimState, data: AccountData, generator: Generator) -> None:
        self.state = state
        self.data = data
        self.gen = generator
        self.now = generator.now
        self.events: list[Row] = []
        self.touched: dict[str, dict[str, list[str]]] = {op: {} for op in OPERATIONS}

    def event(self, event_type: str, body: bytes, previous: dict[str, Any] | None = None) -> None:
        rate = self.state.knobs.other_api_version_rate
        self.events.append(self.gen.event(self.now, event_type, body, previous, rate))

    def pool(self, stream: str, full: bool = False) -> Pool:
        """Existing objects of ``stream``, oldest first (ids and times, or whole objects)."""
        rows = reversed(self.data.tables[stream].rows)
        if full:
            return Pool([orjson.loads(row.body) for row in rows])
        return Pool([{"id": r.id, "created": r.created, **r.attrs} for r in rows])

    def listed_pool(self, stream: str) -> Pool | None:
        """The pool of a list table, or None for a name that is not one; prices whole,
        since line items embed them."""
        table = self.data.tables.get(stream)
        if table is None or stream == "event":
            return None
        return self.pool(stream, full=stream == "price")

    def create(self, stream: str, n: int) -> None:
        if n == 0:
            return
        gen, now = self.gen, self.now
        objects: list[dict[str, Any]] = []
        for _ in range(n):
            if stream == "product":
                objects.append(gen.product(now))
            elif stream == "price":
                objects.append(gen.price(now, self.pool("product")))
            elif stream == "coupon":
                objects.append(gen.coupon(now))
            elif stream == "customer":
                objects.append(gen.customer(now, self.data))
            elif stream == "subscription":
                prices = self.pool("price", full=True)
                recurring = Pool([p for p in prices.items if p["type"] == "recurring"])
                objects.append(gen.subscription(now, self.pool("customer"), recurring, self.data))
            elif stream == "invoice":
                prices = self.pool("price", full=True).items
                objects.append(
                    gen.invoice(
                        now, self.pool("customer"), self.pool("subscription"), prices, self.data
                    )
                )
            elif stream in DERIVED:
                objects.append(gen.derived(stream, now, self.listed_pool, self.data))
            else:
                customer = gen.pick_before(self.pool("customer"), now)
                charge = gen.charge(
                    now, customer["id"] if customer else None, gen.synth.money(), None
                )
                objects.append(charge)
        rows = [row_of(stream, obj) for obj in objects]
        if stream == "charge":
            gen.ledger.charge_transactions(rows)
        entered = gen.ledger.drain()
        if entered:
            self.replace("balancetransaction", upserts=entered)
        self.replace(stream, upserts=rows)
        for obj, row in zip(objects, rows, strict=True):
            event_type = created_event_type(stream, obj)
            if event_type:
                self.event(event_type, row.body)
            self.announce_children(stream, obj["id"])
        self.touched["create"][stream] = [row.id for row in rows]

    def announce_children(self, stream: str, parent_id: str) -> None:
        """The events Stripe sends for the rows made with a new parent: a customer's
        payment methods are attached, its sources and tax ids and cash balance
        transactions created."""
        for (parent, field), event_type in NESTED_CREATED_EVENTS.items():
            if parent == stream:
                for row in self.data.nested[parent, field].get(parent_id, ()):
                    self.event(event_type, row.body)
        for child, event_type in KIN_CREATED_EVENTS.items():
            own = per_parent.parent_table(child) == stream
            table = self.data.kin[child].get(parent_id) if own else None
            for row in reversed(table.rows) if table is not None else ():
                self.event(event_type, row.body)

    def update(self, stream: str, n: int) -> None:
        rows = self.pick(stream, n)
        if not rows:
            return
        updated: list[Row] = []
        for row in rows:
            obj = orjson.loads(row.body)
            previous = self.change(stream, obj)
            new_row = row_of(stream, obj)
            updated.append(new_row)
            event_type = event_for(stream, "updated")
            if event_type is not None:
                self.event(event_type, new_row.body, previous)
        self.replace(stream, upserts=updated)
        self.touched["update"][stream] = [row.id for row in updated]

    def deletable(self, stream: str, row: Row) -> bool:
        """As Stripe deletes (:func:`deletable`), but never a connected account with data
        of its own, which would leave its data unreadable."""
        return deletable(stream, row) and row.id not in self.state.generators

    def delete(self, stream: str, n: int) -> None:
        rows = self.pick(stream, n, self.deletable)
        if not rows:
            return
        if stream == "subscription":
            self.cancel(rows)
            return
        for row in rows:
            event_type = event_for(stream, "deleted")
            if event_type is not None:
                self.event(event_type, row.body)
            for list_field in SPECS[stream].nested_lists:
                removed_with_parent(self.data, stream, list_field, row.id, self.now)
            per_parent.removed_with_parent(self.data, stream, row.id, self.now)
        ids = [row.id for row in rows]
        self.replace(stream, deletes=ids)
        self.touched["delete"].setdefault(stream, []).extend(ids)
        if stream == "customer":
            gone = set(ids)
            self.data.deleted_customers |= gone
            subscriptions = self.data.tables["subscription"].rows
            self.cancel([r for r in subscriptions if r.attrs["customer"] in gone and live(r)])

    def cancel(self, rows: list[Row]) -> None:
        """Cancel subscriptions now, as ``DELETE /v1/subscriptions/{id}`` does: they stay."""
        if not rows:
            return
        cancelled: list[Row] = []
        for row in rows:
            obj = orjson.loads(row.body)
            obj.update(
                status="canceled",
                canceled_at=self.now,
                ended_at=self.now,
                cancel_at_period_end=False,
            )
            if "cancellation_details" in obj:
                obj["cancellation_details"] = {
                    "comment": None,
                    "feedback": None,
                    "reason": "cancellation_requested",
                }
            new_row = row_of("subscription", obj)
            cancelled.append(new_row)
            self.event("customer.subscription.deleted", new_row.body)
        self.replace("subscription", upserts=cancelled)
        self.touched["delete"].setdefault("subscription", []).extend(r.id for r in cancelled)

    def pick(
        self, stream: str, n: int, eligible: Callable[[str, Row], bool] | None = None
    ) -> list[Row]:
        rows = self.data.tables[stream].rows
        if eligible is not None:
            rows = tuple(row for row in rows if eligible(stream, row))
        if n == 0 or not rows:
            return []
        return [rows[i] for i in sorted(self.gen.rng.sample(range(len(rows)), min(n, len(rows))))]

    def change(self, stream: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Apply a plausible update; returns Stripe's ``previous_attributes``."""
        synth = self.gen.synth
        previous: dict[str, Any] = {}
        if "metadata" in obj:
            previous["metadata"] = obj["metadata"]
            obj["metadata"] = {**(obj["metadata"] or {}), "sim_revision": synth.token(6)}
        elif "description" in obj:
            previous["description"] = obj["description"]
            obj["description"] = synth.words(5)
        if stream == "customer":
            previous["email"] = obj["email"]
            obj["email"] = synth.email()
        elif stream == "subscription" and obj["status"] in STATUS_NEXT:
            previous["status"] = obj["status"]
            obj["status"] = STATUS_NEXT[obj["status"]]
        elif stream == "invoice" and obj["status"] in ("draft", "open"):
            previous.update(status=obj["status"], paid=obj["paid"])
            if obj["status"] == "draft":
                obj["status"] = "open"
            else:
                previous.update(
                    amount_paid=obj["amount_paid"], amount_remaining=obj["amount_remaining"]
                )
                obj.update(status="paid", paid=True, amount_paid=obj["total"], amount_remaining=0)
        elif stream in ("charge", "product"):
            previous["description"] = obj.get("description")
            obj["description"] = synth.words(5)
            if stream == "product":
                previous["updated"] = obj["updated"]
                obj["updated"] = self.now
        elif stream in ("price", "coupon"):
            field = "nickname" if stream == "price" else "name"
            previous[field] = obj.get(field)
            obj[field] = synth.words(2)
        return previous

    def replace(
        self, stream: str, upserts: list[Row] | None = None, deletes: list[str] | None = None
    ) -> None:
        table = self.data.tables[stream]
        self.data.tables[stream] = table.replaced(upserts or (), deletes or ())
        if stream == "connectedaccount" and self.data.account_id == MAIN_ACCOUNT:
            self.state.listed_accounts_changed(upserts or ())

    def commit_events(self) -> None:
        if self.events:
            self.replace("event", upserts=self.events)

    def summary(self) -> dict[str, Any]:
        return {
            "account": self.data.account_id,
            "now": self.now,
            **self.touched,
            "events": [{"id": row.id, "type": row.attrs["type"]} for row in self.events],
        }
