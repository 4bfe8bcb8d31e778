"""The rows of the children listed per parent, made with their parents: a customer's
payment methods (0-3) and balance transactions, its cash balance transactions; a setup
intent's attempts; a connected account's persons and capabilities; a metered
subscription item's usage summaries. (A payout's balance transactions are the ledger's,
``ledger.py``.) Every row names its parent where Stripe's object has the field, and the
parent's fields that follow from them are set: a customer's ``balance``, a setup intent's
``latest_attempt``, an account's ``capabilities``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_sim import per_parent
from stripe_sim.synth import DAY

if TYPE_CHECKING:
    from stripe_sim.dataset import AccountData, Generator

# Capabilities a connected account has requested; some accounts also the 1099-K one.
CAPABILITIES = ("card_payments", "transfers")
EXTRA_CAPABILITY = "tax_reporting_us_1099_k"
CAPABILITY_STATUS = ("active", "active", "pending", "inactive")
ATTEMPT_STATUS = {"succeeded": "succeeded", "requires_action": "requires_action"}
PERIOD = 30 * DAY


def metered(item: dict[str, Any]) -> bool:
    """A subscription item billed by reported usage."""
    recurring = (item.get("price") or {}).get("recurring") or {}
    return recurring.get("usage_type") == "metered"


class KinMaker:
    """Makes the per-parent children of one generator's parents, and new ones for
    mutations (:meth:`new`)."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen

    def times(self, start: int, n: int) -> list[int]:
        """``n`` creation times from ``start`` to the clock, oldest first."""
        end = max(start + 1, self.gen.now)
        return sorted(self.gen.rng.randrange(start, end) for _ in range(n))

    def attach(self, data: AccountData, stream: str, obj: dict[str, Any]) -> None:
        """Give a new parent its children (a payout's transactions: ``Ledger.payout``)."""
        if stream == "customer":
            self.customer(data, obj)
        elif stream == "setupintent":
            self.setup_intent(data, obj)
        elif stream == "connectedaccount":
            self.account(data, obj)
        elif stream == "payout":
            self.gen.ledger.payout(data, obj)

    def many(self, data: AccountData, child: str, parent: dict[str, Any], n: int) -> list[Any]:
        """``n`` new rows of ``child`` for ``parent``, stored as its list (newest first)."""
        objects = [self.new(child, parent, t) for t in self.times(parent["created"], n)]
        rows = [per_parent.row_of(child, obj) for obj in objects]
        per_parent.store(data, child, parent["id"], rows)
        return objects

    def customer(self, data: AccountData, obj: dict[str, Any]) -> None:
        volume = self.gen.children.volume
        self.many(data, "paymentmethod", obj, min(3, volume("paymentmethod")))
        moves = self.many(
            data, "customerbalancetransaction", obj, volume("customerbalancetransaction")
        )
        balance = 0
        for move in moves:  # oldest first: each ends where the next starts
            balance += move["amount"]
            move["ending_balance"] = balance
        obj["balance"] = balance
        rows = [per_parent.row_of("customerbalancetransaction", m) for m in moves]
        per_parent.store(data, "customerbalancetransaction", obj["id"], rows)
        cash = self.many(
            data,
            "customercashbalancetransaction",
            obj,
            volume("customercashbalancetransaction"),
        )
        total = 0
        for move in cash:
            total += move["net_amount"]
            move["ending_balance"] = total
        rows = [per_parent.row_of("customercashbalancetransaction", m) for m in cash]
        per_parent.store(data, "customercashbalancetransaction", obj["id"], rows)

    def setup_intent(self, data: AccountData, obj: dict[str, Any]) -> None:
        attempts = self.many(data, "setupattempt", obj, self.gen.children.volume("setupattempt"))
        obj["latest_attempt"] = attempts[-1]["id"] if attempts else None
        if attempts:
            obj["status"] = "succeeded" if attempts[-1]["status"] == "succeeded" else obj["status"]

    def account(self, data: AccountData, obj: dict[str, Any]) -> None:
        self.many(data, "person", obj, self.gen.children.volume("person"))
        names = [*CAPABILITIES, *([EXTRA_CAPABILITY] if self.gen.rng.random() < 0.3 else [])]
        capabilities = [self.capability(obj, name, obj["created"]) for name in names]
        rows = [per_parent.row_of("capability", c) for c in capabilities]
        per_parent.store(data, "capability", obj["id"], rows)
        obj["capabilities"] = {c["id"]: c["status"] for c in capabilities}

    def items(self, data: AccountData, items: list[dict[str, Any]]) -> None:
        """Usage summaries of the metered items of a new subscription: one per period
        since the item's creation (closed ones invoiced), the newest the current one."""
        for item in items:
            if not metered(item):
                continue
            periods = max(1, min(25, (self.gen.now - item["created"]) // PERIOD + 1))
            summaries = [
                self.summary(item, item["created"] + i * PERIOD, i < periods - 1)
                for i in range(periods)
            ]
            rows = [per_parent.row_of("usagerecordsummary", s) for s in summaries]
            per_parent.store(data, "usagerecordsummary", item["id"], rows)

    def new(self, child: str, parent: dict[str, Any], created: int) -> dict[str, Any]:
        """One new row of ``child`` under ``parent`` (not a capability, named by Stripe)."""
        gen = self.gen
        synth = gen.synth
        factory = gen.factory(per_parent.SPECS[child].object)
        fixed: dict[str, Any] = {"customer": parent["id"]}
        if child == "paymentmethod":
            fixed.update(type="card", billing_details=self.billing(), metadata={})
        elif child == "customerbalancetransaction":
            amount = -synth.money() if gen.rng.random() < 0.7 else synth.money()
            fixed.update(
                amount=amount,
                type="adjustment",
                invoice=None,
                credit_note=None,
                description=synth.words(3),
                ending_balance=(parent.get("balance") or 0) + amount,
            )
        elif child == "customercashbalancetransaction":
            fixed.update(type="funded", net_amount=synth.money(), ending_balance=0)
        elif child == "setupattempt":
            status = ATTEMPT_STATUS.get(parent.get("status", ""), "failed")
            fixed = {
                "setup_intent": parent["id"],
                "customer": parent.get("customer"),
                "payment_method": synth.stripe_id("pm", 24),
                "status": status,
                "setup_error": None,
            }
        elif child == "person":
            fixed = {"account": parent["id"], "first_name": synth.person().split()[0]}
        obj = factory.build(created, fixed=fixed)
        if "created" not in factory.fields:
            del obj["created"]
        return obj

    def billing(self) -> dict[str, Any]:
        details = self.gen.billing_details()
        details["address"]["state"] = details["address"]["state"][:2]
        return details

    def capability(self, account: dict[str, Any], name: str, created: int) -> dict[str, Any]:
        obj = self.gen.factory("capability").build(created, name)
        obj.update(
            account=account["id"],
            requested=True,
            requested_at=created,
            status=self.gen.rng.choice(CAPABILITY_STATUS),
        )
        del obj["created"]
        return obj

    def summary(self, item: dict[str, Any], start: int, closed: bool) -> dict[str, Any]:
        obj = self.gen.factory("usage_record_summary").build(start)
        obj.update(
            subscription_item=item["id"],
            invoice=self.gen.synth.stripe_id("in", 24) if closed else None,
            period={"start": start, "end": start + PERIOD if closed else None},
            total_usage=self.gen.rng.randrange(0, 5000),
        )
        obj.pop("created", None)
        return obj
