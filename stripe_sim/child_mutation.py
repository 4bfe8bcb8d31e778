"""Mutations of child tables: entries added to, changed in and removed from their
parents' lists, as Stripe's requests on the parent do.

Body entries (beside the tables' own, see ``mutate.py``), one per child table::

    {"subscriptionitem": {"create": 2, "update": 1, "delete": 1},
     "invoicelineitem": {"delete": 1}, "transferreversal": {"create": 1}}

Each change is one request on one parent, picked at random among the parents Stripe lets
change (draft invoices and quotes, live subscriptions, transfers and fees with an amount
left): the parent's complete list, its embedded first page, ``has_more`` and the sums it
sets change, and the parent's event is appended with ``previous_attributes`` holding the
previous value of each changed field (the list as Stripe embeds it: its previous first
page). Quotes have no ``quote.updated`` in 2023-08-16 and the registry gives payment
links no events, so their line items change without one. A customer's cards, bank
accounts and tax ids change with their own events instead (``customer.source.*``,
``customer.tax_id.*``, carrying the child); a connected account's external accounts
without any on the platform. A removed child is remembered for the truth's ``deleted``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from stripe_sim.children import RETURNED, apply, link, remaining, remember_removed
from stripe_sim.dataset import Pool, row_of
from stripe_sim.store import encode
from stripe_sim.tables import SPECS, TableKind, has_event

if TYPE_CHECKING:
    from stripe_sim.mutate import Mutation

ALL = frozenset({"create", "update", "delete"})
QUANTITY_RE = re.compile(r"^\d+ x (.*)$")
ENDED = ("canceled", "incomplete_expired")


@dataclass(frozen=True)
class ChildRule:
    """What Stripe lets change in one child table.

    Attributes:
        operations: The operations Stripe has for its rows.
        parents: The parent objects whose list may change.
        changeable: The entries an update or a delete may pick.
        keep: Entries a delete must leave in the list.
        event: The parent's event for a change (when the registry has it).
        own_events: Operation -> the child's own event, carrying the child (a card's
            ``customer.source.created``).
        revise: How an update changes an entry (returns its ``previous_attributes``);
            by default a new quantity.
    """

    operations: frozenset[str]
    parents: Callable[[str, dict[str, Any]], bool]
    changeable: Callable[[dict[str, Any]], bool] = lambda entry: True
    keep: int = 0
    event: str | None = None
    own_events: Mapping[str, str] = field(default_factory=dict)
    revise: str = "quantity"


def status_is(*statuses: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda stream, obj: obj.get("status") in statuses


def has_remaining(stream: str, obj: dict[str, Any]) -> bool:
    return remaining(stream, obj) > 0


def anyone(stream: str, obj: dict[str, Any]) -> bool:
    return True


def is_object(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda entry: entry.get("object") == name


SOURCE_EVENTS = {
    "create": "customer.source.created",
    "update": "customer.source.updated",
    "delete": "customer.source.deleted",
}
TAX_ID_EVENTS = {
    "create": "customer.tax_id.created",
    "update": "customer.tax_id.updated",
    "delete": "customer.tax_id.deleted",
}


RULES: dict[str, ChildRule] = {
    # Only invoice items' lines of a draft change; subscription lines follow the items.
    "invoicelineitem": ChildRule(
        ALL,
        status_is("draft"),
        changeable=lambda entry: entry.get("type") == "invoiceitem",
        event="invoice.updated",
    ),
    "subscriptionitem": ChildRule(
        ALL,
        lambda stream, obj: obj.get("status") not in ENDED,
        keep=1,  # a subscription keeps at least one item
        event="customer.subscription.updated",
    ),
    "quotelineitem": ChildRule(ALL, status_is("draft")),
    "paymentlinklineitem": ChildRule(ALL, lambda stream, obj: True, keep=1),
    "transferreversal": ChildRule(frozenset({"create"}), has_remaining, event="transfer.reversed"),
    "feerefund": ChildRule(frozenset({"create"}), has_remaining, event="application_fee.refunded"),
    # A customer's sources and tax ids change with their own events, not the customer's.
    "card": ChildRule(
        ALL, anyone, is_object("card"), own_events=SOURCE_EVENTS, revise="card_expiry"
    ),
    "bankaccount": ChildRule(
        ALL, anyone, is_object("bank_account"), own_events=SOURCE_EVENTS, revise="metadata"
    ),
    "taxid": ChildRule(ALL, anyone, own_events=TAX_ID_EVENTS, revise="verification"),
    # A connected account's external accounts: its events are not the platform's.
    "externalaccount": ChildRule(ALL, anyone, revise="metadata"),
}
# Child tables whose rows never change once their parent exists.
FIXED = {
    "creditnotelineitem": "a credit note's lines never change (it can only be voided)",
    "checkoutsessionlineitem": "a checkout session's line items never change",
}
CHILD_TABLES: tuple[str, ...] = tuple(
    name for name in RULES if name in SPECS and SPECS[name].kind is TableKind.EMBEDDED_CHILD
)


def child_problem(stream: str, ops: dict[str, int]) -> str | None:
    """Why Stripe cannot make the changes ``ops`` asks of a child table, if it cannot."""
    if stream not in RULES:
        reason = FIXED.get(stream, "the simulator does not change its rows")
        return f"cannot mutate {stream!r}: {reason}"
    refused = sorted(op for op, n in ops.items() if n and op not in RULES[stream].operations)
    if refused:
        allowed = ", ".join(sorted(RULES[stream].operations))
        return f"Stripe cannot {'/'.join(refused)} {stream!r} rows (only: {allowed})"
    return None


class ChildChanges:
    """One mutation call's changes of child tables, written through its :class:`Mutation`."""

    def __init__(self, mutation: Mutation) -> None:
        self.mutation = mutation
        self.data = mutation.data
        self.gen = mutation.gen
        self.now = mutation.now

    def run(self, child: str, op: str, n: int) -> None:
        """``n`` changes ``op`` of ``child`` rows, each on a parent picked at random."""
        if n == 0:
            return
        parent_table, list_field, _ = link(child)
        rule = RULES[child]
        lists = self.data.nested[parent_table, list_field]
        parents = {
            row.id: obj
            for row in self.data.tables[parent_table].rows
            if rule.parents(parent_table, obj := orjson.loads(row.body))
        }
        for _ in range(n):
            choices = [
                (parent_id, index)
                for parent_id, obj in parents.items()
                if rule.parents(parent_table, obj)
                for index in self.indices(op, rule, lists[parent_id])
            ]
            if not choices:
                return
            parent_id, index = choices[self.gen.rng.randrange(len(choices))]
            self.change(child, op, parents[parent_id], index)

    def indices(self, op: str, rule: ChildRule, rows: list[Any]) -> list[int]:
        """The entries ``op`` may pick in one parent's list; ``-1`` stands for a new one."""
        if op == "create":
            return [-1]
        if op == "delete" and len(rows) <= rule.keep:
            return []
        return [i for i, row in enumerate(rows) if rule.changeable(orjson.loads(row.body))]

    def change(self, child: str, op: str, parent: dict[str, Any], index: int) -> None:
        parent_table, list_field, _ = link(child)
        rows = self.data.nested[parent_table, list_field][parent["id"]]
        entries = [orjson.loads(row.body) for row in rows]
        if op == "create":
            entry = self.new_entry(child, parent)
            entries.append(entry)
        elif op == "update":
            entry = entries[index]
        own_previous: dict[str, Any] | None = None
        if op == "update":
            own_previous = self.revised(child, entry)
        elif op == "delete":
            entry = entries.pop(index)
            remember_removed(self.data, child, parent["id"], [entry["id"]], self.now)
        previous = apply(self.data, parent_table, list_field, parent, entries, self.now)
        row = row_of(parent_table, parent)
        self.mutation.replace(parent_table, upserts=[row])
        rule = RULES[child]
        if rule.event is not None and has_event(parent_table, rule.event):
            self.mutation.event(rule.event, row.body, previous)
        own = rule.own_events.get(op)
        if own is not None and has_event(child, own):
            self.mutation.event(own, encode(entry), own_previous)
        self.mutation.touched[op].setdefault(child, []).append(entry["id"])

    def new_entry(self, child: str, parent: dict[str, Any]) -> dict[str, Any]:
        gen, now = self.gen, self.now
        prices = self.mutation.pool("price", full=True)
        if child == "invoicelineitem":
            price = gen.pick_before(prices, now)
            assert price is not None
            return gen.line(now, parent["id"], price, None)
        if child == "subscriptionitem":
            recurring = Pool([p for p in prices.items if p["type"] == "recurring"])
            return gen.subscription_item(now, parent["id"], recurring)
        pools = {"price": prices}
        entry = gen.children.entry(child, parent, now, pools.get)
        parent_table = link(child)[0]
        if parent_table in RETURNED:
            entry["amount"] = gen.rng.randrange(1, remaining(parent_table, parent) + 1)
        return entry

    def revised(self, child: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Change ``entry`` as an update of ``child`` does; its previous attributes."""
        kind = RULES[child].revise
        synth = self.gen.synth
        if kind == "quantity":
            self.revise(entry)
            return {}
        previous: dict[str, Any] = {"metadata": entry.get("metadata")}
        entry["metadata"] = {**(entry.get("metadata") or {}), "sim_revision": synth.token(6)}
        if kind == "card_expiry":
            previous.update(exp_month=entry.get("exp_month"), exp_year=entry.get("exp_year"))
            entry.update(
                exp_month=self.gen.rng.randrange(1, 13),
                exp_year=(entry.get("exp_year") or 2030) + 1,
            )
        elif kind == "verification":
            previous = {"verification": entry.get("verification")}
            entry["verification"] = {
                "status": "verified",
                "verified_address": None,
                "verified_name": synth.person(),
            }
        return previous

    def revise(self, entry: dict[str, Any]) -> None:
        """A new quantity, and the amounts that follow from it and the unit price."""
        quantity = (entry.get("quantity") or 1) % 5 + 1
        entry["quantity"] = quantity
        described = QUANTITY_RE.match(entry.get("description") or "")
        if described:  # an invoice line's "2 x Seat" says its quantity
            entry["description"] = f"{quantity} x {described.group(1)}"
        price = entry.get("price") or {}
        if "metadata" in entry:
            entry["metadata"] = {
                **(entry["metadata"] or {}),
                "sim_revision": self.gen.synth.token(6),
            }
        unit = price.get("unit_amount")
        if unit is None:
            return
        for name in ("amount", "amount_excluding_tax", "amount_subtotal", "amount_total"):
            if name in entry:
                entry[name] = unit * quantity
