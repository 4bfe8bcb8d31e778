"""The account's ledger: the balance transactions of charges and payouts, which charges'
transactions each automatic payout pays out, and the balance they add up to.

A charge that moved money has its balance transaction, available two days later. A
payout pays out the transactions that became available before it (oldest first, all of
them but the last week's, so that some funds stay available); its own transaction (type
``payout``, the negative amount) debits the balance. An automatic payout's transactions
(those it pays out and its own) are what ``/v1/balance_transactions?payout=`` lists; they
are entered when the payout is paid (arrived), so an automatic payout in transit lists
none until a mutation pays it. A manual payout's transaction is entered when it is made,
and Stripe lists no transactions for it. ``/v1/balance`` sums the ledger per currency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from stripe_sim import per_parent
from stripe_sim.store import Row, encode
from stripe_sim.synth import DAY

if TYPE_CHECKING:
    from stripe_sim.dataset import AccountData, Generator

AVAILABLE_AFTER = 2 * DAY
# Funds that became available in the last week are not paid out by generated payouts.
KEPT_AVAILABLE = 7 * DAY
AUTOMATIC_SHARE = 0.7


class Ledger:
    """One generator's ledger: the transactions not paid out yet, and the ones made since
    the caller last took them (:meth:`drain`)."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        # Payouts are made by mutations now, not generated over the data's time span.
        self.live = False
        self.unpaid: list[Row] = []
        self.new_rows: list[Row] = []
        # Automatic payout id -> the transactions it will pay out when paid.
        self.reserved: dict[str, list[Row]] = {}

    def charge_transactions(self, charges: list[Row]) -> list[Row]:
        """The balance transaction of each charge that moved money (none for a failed one)."""
        gen = self.gen
        factory = gen.factory("balance_transaction")
        rows: list[Row] = []
        for row in charges:
            charge = orjson.loads(row.body)
            if charge["balance_transaction"] is None:
                continue
            fee = round(charge["amount"] * 0.029) + 30
            available_on = charge["created"] + AVAILABLE_AFTER
            fixed = dict(
                amount=charge["amount"],
                fee=fee,
                net=charge["amount"] - fee,
                fee_details=[
                    {
                        "amount": fee,
                        "application": None,
                        "currency": "usd",
                        "description": "Stripe processing fees",
                        "type": "stripe_fee",
                    }
                ],
                available_on=available_on,
                status="available" if available_on < gen.now else "pending",
                source=charge["id"],
                type="charge",
                reporting_category="charge",
                description=charge["description"],
                exchange_rate=None,
            )
            obj = factory.build(charge["created"], charge["balance_transaction"], fixed)
            rows.append(per_parent.row_of("balancetransaction", obj))
        self.new_rows.extend(rows)
        self.unpaid.extend(rows)
        self.unpaid.sort(key=lambda r: orjson.loads(r.body)["available_on"])
        return rows

    def take(self, until: int) -> list[Row]:
        """The unpaid transactions available by ``until``, oldest first, now paid out."""
        taken = [r for r in self.unpaid if orjson.loads(r.body)["available_on"] <= until]
        gone = {r.id for r in taken}
        self.unpaid = [r for r in self.unpaid if r.id not in gone]
        return taken

    def payout(self, data: AccountData, obj: dict[str, Any]) -> None:
        """Shape a new payout: what it pays out, whether it is automatic, its status (paid
        once its arrival date has passed), and its transactions. A payout made by a
        mutation pays out every available transaction and is automatic and in transit."""
        gen, mutation = self.gen, self.live
        created = obj["created"]
        until = created if mutation else min(created, gen.now - KEPT_AVAILABLE)
        taken = self.take(until)
        amount = sum(orjson.loads(r.body)["net"] for r in taken)
        automatic = mutation or gen.rng.random() < AUTOMATIC_SHARE
        arrival = created + AVAILABLE_AFTER
        arrived = arrival < gen.now and not mutation
        obj.update(
            amount=amount or gen.synth.money(),
            automatic=automatic,
            arrival_date=arrival,
            balance_transaction=gen.synth.stripe_id("txn", 24),
            failure_balance_transaction=None,
            failure_code=None,
            failure_message=None,
            original_payout=None,
            reversed_by=None,
            status="paid" if arrived else "in_transit",
            reconciliation_status="not_applicable",
        )
        if not taken:  # nothing to pay out: Stripe would have refused it
            obj["status"] = "canceled"
            return
        if not automatic:
            self.enter(obj)
            return
        self.reserved[obj["id"]] = taken
        if arrived:
            self.pay(data, obj)
        else:
            obj["reconciliation_status"] = "in_progress"

    def enter(self, payout: dict[str, Any]) -> Row:
        """The payout's own transaction, debiting the balance."""
        created = payout["created"]
        obj = self.gen.factory("balance_transaction").build(created, payout["balance_transaction"])
        obj.update(
            amount=-payout["amount"],
            fee=0,
            net=-payout["amount"],
            fee_details=[],
            available_on=created,
            status="available",
            source=payout["id"],
            type="payout",
            reporting_category="payout",
            description="STRIPE PAYOUT",
            exchange_rate=None,
        )
        row = per_parent.row_of("balancetransaction", obj)
        self.new_rows.append(row)
        return row

    def pay(self, data: AccountData, payout: dict[str, Any]) -> dict[str, Any]:
        """An automatic payout arrives: its transaction is entered and its transactions
        listed under it. Returns the previous values of the fields that changed."""
        previous = {"status": payout["status"], "reconciliation_status": "in_progress"}
        rows = [*self.reserved.pop(payout["id"]), self.enter(payout)]
        per_parent.store(data, "payoutbalancetransaction", payout["id"], rows)
        payout.update(status="paid", reconciliation_status="completed")
        return previous

    def drain(self) -> list[Row]:
        """The transactions entered since the last call."""
        rows, self.new_rows = self.new_rows, []
        return rows


def balance(data: AccountData) -> bytes:
    """Stripe's balance object: the ledger's net amounts per currency, available and
    pending (every transaction's ``source_types`` is a card's)."""
    sums: dict[str, dict[str, int]] = {"available": {}, "pending": {}}
    for row in data.tables["balancetransaction"].rows:
        bucket = sums["available" if row.attrs.get("status") == "available" else "pending"]
        currency = row.attrs.get("currency") or "usd"
        bucket[currency] = bucket.get(currency, 0) + (row.attrs.get("net") or 0)

    def funds(name: str) -> list[dict[str, Any]]:
        found = sums[name] or {"usd": 0}
        return [
            {"amount": amount, "currency": currency, "source_types": {"card": amount}}
            for currency, amount in sorted(found.items())
        ]

    return encode(
        {
            "object": "balance",
            "available": funds("available"),
            "connect_reserved": [{"amount": 0, "currency": "usd"}],
            "livemode": False,
            "pending": funds("pending"),
        }
    )
