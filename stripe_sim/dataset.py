"""Generate one Stripe account's deterministic data: related objects spread over time.

Order matters because ids join: products, then prices (-> products), coupons, customers,
subscriptions (-> customers, prices), invoices (-> subscriptions, customers), charges
(-> customers, invoices), balance transactions (-> charges), and ``*.created`` events for
everything created in the last 30 days.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from stripe_sim.children import ChildMaker, nest
from stripe_sim.config import API_VERSION, MAIN_ACCOUNT, OTHER_API_VERSION, SimConfig
from stripe_sim.factory import ObjectFactory
from stripe_sim.kin import KinMaker
from stripe_sim.ledger import Ledger
from stripe_sim.store import Row, Table, encode
from stripe_sim.synth import DAY, Synth
from stripe_sim.tables import DERIVED, LIST_KINDS, PER_PARENT, SPECS, SYNTHESIS, event_for

EVENT_RETENTION = 30 * DAY
# Stripe object name -> the list table holding such objects (the first one listed).
REFERENCED: dict[str, str] = {
    spec.object: name for name, spec in reversed(SPECS.items()) if spec.kind in LIST_KINDS
}
SUBSCRIPTION_STATUS = (
    ("active", 60),
    ("canceled", 15),
    ("trialing", 10),
    ("past_due", 8),
    ("unpaid", 3),
    ("incomplete", 2),
    ("incomplete_expired", 2),
)
INVOICE_STATUS = (("paid", 70), ("open", 15), ("draft", 5), ("void", 5), ("uncollectible", 5))
CHARGE_STATUS = (("succeeded", 92), ("failed", 5), ("pending", 3))
# Share of recurring prices billed by reported usage (their items have usage summaries).
METERED_SHARE = 0.2


def row_of(stream: str, obj: dict[str, Any]) -> Row:
    """Encode ``obj`` once; keep the attributes list filters need."""
    attrs = {key: obj.get(key) for key in SYNTHESIS[stream].filter_attrs}
    return Row(obj.get(SPECS[stream].created_field, 0), obj["id"], encode(obj), attrs)


def deleted_customer(customer_id: str) -> bytes:
    """What Stripe answers for a deleted customer, retrieved or expanded."""
    return encode({"id": customer_id, "object": "customer", "deleted": True})


def created_event_type(stream: str, obj: dict[str, Any]) -> str | None:
    """Stripe's event for a new object (charges report their outcome; no charge.created)."""
    if stream == "charge":
        return f"charge.{obj['status']}"
    return event_for(stream, "created") if SPECS[stream].event_types else None


def rate_of(value: float) -> float:
    return min(1.0, max(0.0, value))


def encode_event(
    event_id: str,
    created: int,
    event_type: str,
    body: bytes,
    previous: dict[str, Any] | None = None,
    api_version: str = API_VERSION,
    account: str | None = None,
) -> Row:
    """An event row embedding the object's bytes as ``data.object`` without re-encoding it;
    ``account``: the connected account whose event it is (Stripe's ``account`` field)."""
    data = b'{"object":' + body
    if previous is not None:
        data += b',"previous_attributes":' + orjson.dumps(previous)
    head_fields: dict[str, Any] = {"id": event_id, "object": "event"}
    if account is not None:
        head_fields["account"] = account
    head = orjson.dumps({**head_fields, "api_version": api_version})
    tail = orjson.dumps(
        {
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
    )
    body_bytes = head[:-1] + b',"created":%d,"data":' % created + data + b"}," + tail[1:]
    body_bytes = bytes(memoryview(body_bytes))
    return Row(created, event_id, body_bytes, {"type": event_type})


@dataclass
class AccountData:
    """One account's tables plus the full nested lists Stripe cuts at 10 items.

    ``nested`` maps ``(table, field)`` of each of the registry's nested lists to its
    entries per parent id. ``deleted_customers`` remembers deleted customers' ids, which
    Stripe keeps answering with a stub; it is replaced as a whole, like the tables.
    ``removed`` lists, per child table, the children that left their parent's list
    (``children.remember_removed``). ``kin`` holds the children listed per parent, per
    child table and parent id (``per_parent.py``).
    """

    account_id: str
    account: bytes
    tables: dict[str, Table]
    nested: dict[tuple[str, str], dict[str, list[Row]]] = field(
        default_factory=lambda: {
            (name, list_field): {}
            for name, spec in SPECS.items()
            for list_field in spec.nested_lists
        }
    )
    deleted_customers: frozenset[str] = frozenset()
    removed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Detached payment methods, which Stripe still retrieves (``customer`` null).
    detached: dict[str, bytes] = field(default_factory=dict)
    kin: dict[str, dict[str, Table]] = field(
        default_factory=lambda: {child: {} for kids in PER_PARENT.values() for child in kids}
    )


class Pool:
    """Objects sorted by ``created`` with their creation times, for picking earlier ones."""

    def __init__(self, items: list[dict[str, Any]], created_field: str = "created") -> None:
        self.items = items
        self.created = [item.get(created_field, 0) for item in items]


def weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


class Generator:
    """Builds an :class:`AccountData` from a config, a seed and a size scale.

    The platform's generator is given the ids of the connected accounts with data of their
    own (``connected``): its ``connectedaccount`` table lists them first, created before
    the data's time span, then the rest of its count. Any other generator makes a connected
    account's data, whose events name it (``account``).
    """

    def __init__(
        self,
        config: SimConfig,
        seed: int,
        scale: float,
        account_id: str,
        connected: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.synth = Synth(self.rng)
        self.scale = scale
        self.account_id = account_id
        self.connected = connected
        self.event_account = None if account_id == MAIN_ACCOUNT else account_id
        self.now = config.start_time()
        self.begin = self.now - int(config.days * DAY)
        self.factories: dict[str, ObjectFactory] = {}
        self.children = ChildMaker(self)
        self.kin = KinMaker(self)
        self.ledger = Ledger(self)

    def factory(self, resource: str) -> ObjectFactory:
        if resource not in self.factories:
            self.factories[resource] = ObjectFactory(
                self.synth, resource, self.begin, self.config.newer_fields_rate
            )
        return self.factories[resource]

    def count(self, table: str) -> int:
        wanted = self.config.count(table)
        if self.scale == 1.0:
            return wanted
        return max(min(wanted, 2), int(wanted * self.scale))

    def times(self, n: int) -> list[int]:
        return sorted(self.rng.randrange(self.begin, self.now) for _ in range(n))

    def pick_before(self, pool: Pool, when: int) -> dict[str, Any] | None:
        """A random object of ``pool`` created no later than ``when`` (else the oldest)."""
        if not pool.items:
            return None
        index = bisect_right(pool.created, when)
        return pool.items[self.rng.randrange(max(index, 1))]

    def build(self) -> AccountData:
        products = [self.product(t) for t in self.times(self.count("product"))]
        product_pool = Pool(products)
        prices = [self.price(t, product_pool) for t in self.times(self.count("price"))]
        first_price: dict[str, str] = {}
        for price in prices:
            first_price.setdefault(price["product"], price["id"])
        for product in products:
            product["default_price"] = first_price.get(product["id"])
        coupons = [self.coupon(t) for t in self.times(self.count("coupon"))]
        data = AccountData(self.account_id, b"", {})
        customers = Pool([self.customer(t, data) for t in self.times(self.count("customer"))])
        recurring = Pool([p for p in prices if p["type"] == "recurring"] or prices)
        subscriptions = Pool(
            [
                self.subscription(t, customers, recurring, data)
                for t in self.times(self.count("subscription"))
            ]
        )
        invoices = [
            self.invoice(t, customers, subscriptions, prices, data)
            for t in self.times(self.count("invoice"))
        ]
        by_id = {s["id"]: s for s in subscriptions.items}
        for invoice in invoices:
            if invoice["subscription"]:
                by_id[invoice["subscription"]]["latest_invoice"] = invoice["id"]
        charges = self.charges(customers, invoices)
        self.ledger.charge_transactions(charges)
        pools = {
            "product": product_pool,
            "price": Pool(prices),
            "coupon": Pool(coupons),
            "customer": customers,
            "subscription": subscriptions,
            "invoice": Pool(invoices),
            "charge": Pool([{"id": row.id, "created": row.created} for row in charges]),
        }
        derived: dict[str, list[Row]] = {}
        for stream in DERIVED:
            if SPECS[stream].kind not in LIST_KINDS:
                continue
            objects = self.derived_objects(stream, pools.get, data)
            pools[stream] = Pool(objects, SPECS[stream].created_field)
            derived[stream] = [row_of(stream, obj) for obj in objects]
        rows = {
            "product": [row_of("product", o) for o in products],
            "price": [row_of("price", o) for o in prices],
            "coupon": [row_of("coupon", o) for o in coupons],
            "customer": [row_of("customer", o) for o in customers.items],
            "subscription": [row_of("subscription", o) for o in subscriptions.items],
            "invoice": [row_of("invoice", o) for o in invoices],
            "charge": charges,
            "balancetransaction": self.ledger.drain(),
            **derived,
        }
        rows["event"] = self.creation_events(rows)
        data.tables = {stream: Table.of(table_rows) for stream, table_rows in rows.items()}
        data.account = encode(self.account())
        return data

    def derived_objects(
        self, stream: str, pool_of: Callable[[str], Pool | None], data: AccountData
    ) -> list[dict[str, Any]]:
        """The objects of a table made from its shape alone, oldest first: for the
        platform's ``connectedaccount``, the accounts with data, then the rest of its count."""
        own = self.connected if stream == "connectedaccount" else ()
        made = [self.derived(stream, self.begin - DAY, pool_of, data, name) for name in own]
        count = max(0, self.count(stream) - len(own))
        return made + [self.derived(stream, t, pool_of, data) for t in self.times(count)]

    def derived(
        self,
        stream: str,
        created: int,
        pool_of: Callable[[str], Pool | None],
        data: AccountData,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        """An object of a table made from its shape alone, with its children.

        Each field that names another table's object (an expandable reference) gets the
        id of an object of that table created before it, so that ids join.
        """
        factory = self.factory(SPECS[stream].object)
        fixed: dict[str, Any] = {}
        for name, shape in factory.fields.items():
            for resource in shape.get("x", ()):
                pool = pool_of(REFERENCED.get(resource, ""))
                if pool is not None:
                    picked = self.pick_before(pool, created)
                    fixed[name] = picked["id"] if picked else None
                    break
        obj = factory.build(created, object_id, fixed)
        created_field = SPECS[stream].created_field
        if created_field not in factory.fields:  # objects without a creation time
            del obj["created"]
        elif created_field != "created":
            obj[created_field] = obj.pop("created")
        self.children.attach(data, stream, obj, created, pool_of)
        self.kin.attach(data, stream, obj)
        return obj

    def product(self, created: int) -> dict[str, Any]:
        obj = self.factory("product").build(created)
        obj.update(
            active=self.rng.random() < 0.9,
            name=self.synth.words(2).title(),
            description=self.synth.words(6),
            updated=created,
            default_price=None,
        )
        return obj

    def price(self, created: int, products: Pool) -> dict[str, Any]:
        obj = self.factory("price").build(created)
        product = self.pick_before(products, created)
        is_recurring = self.rng.random() < 0.7
        amount = self.synth.money()
        obj.update(
            active=self.rng.random() < 0.9,
            product=product["id"] if product else self.synth.stripe_id("prod", 14),
            type="recurring" if is_recurring else "one_time",
            unit_amount=amount,
            unit_amount_decimal=str(amount),
            billing_scheme="per_unit",
            tiers_mode=None,
            custom_unit_amount=None,
            transform_quantity=None,
            recurring=(
                {
                    "aggregate_usage": None,
                    "interval": self.rng.choice(("month", "year")),
                    "interval_count": 1,
                    "usage_type": "metered" if self.rng.random() < METERED_SHARE else "licensed",
                }
                if is_recurring
                else None
            ),
        )
        return obj

    def coupon(self, created: int) -> dict[str, Any]:
        obj = self.factory("coupon").build(created)
        percent = self.rng.random() < 0.6
        duration = self.rng.choice(("forever", "once", "repeating"))
        obj.update(
            percent_off=round(self.rng.uniform(5, 50), 1) if percent else None,
            amount_off=None if percent else self.synth.money(),
            currency=None if percent else "usd",
            duration=duration,
            duration_in_months=self.rng.randrange(1, 13) if duration == "repeating" else None,
            name=f"{self.synth.words(1)} promo",
            valid=True,
        )
        return obj

    def customer(self, created: int, data: AccountData) -> dict[str, Any]:
        """A customer with its sources and tax ids (left out of it unless expanded), its
        payment methods and its balance's transactions."""
        obj = self.factory("customer").build(created)
        obj.update(
            email=self.synth.email(),
            name=self.synth.person(),
            description=self.synth.words(4),
            invoice_prefix=self.synth.token(8, "ABCDEF0123456789"),
            balance=0,
            delinquent=self.rng.random() < 0.05,
            discount=None,
        )
        self.children.attach(data, "customer", obj, created, lambda table: None)
        self.kin.attach(data, "customer", obj)
        return obj

    def subscription(
        self,
        created: int,
        customers: Pool,
        prices: Pool,
        data: AccountData,
    ) -> dict[str, Any]:
        obj = self.factory("subscription").build(created)
        customer = self.pick_before(customers, created)
        status = weighted(self.rng, SUBSCRIPTION_STATUS)
        many = self.rng.random() < 0.05
        n_items = self.rng.randrange(11, 26) if many else self.rng.randrange(1, 4)
        items = [self.subscription_item(created, obj["id"], prices) for _ in range(n_items)]
        self.kin.items(data, items)
        ended = created + self.rng.randrange(DAY, 200 * DAY) if status == "canceled" else None
        period_start = created + self.rng.randrange(0, 30 * DAY)
        obj.update(
            customer=customer["id"] if customer else self.synth.stripe_id("cus", 14),
            status=status,
            items=nest(data, "subscription", "items", obj["id"], created, items),
            canceled_at=ended,
            ended_at=ended,
            cancel_at=None,
            start_date=created,
            billing_cycle_anchor=created,
            current_period_start=period_start,
            current_period_end=period_start + 30 * DAY,
            trial_start=created if status == "trialing" else None,
            trial_end=created + 14 * DAY if status == "trialing" else None,
            latest_invoice=None,
            discount=None,
            schedule=None,
            pending_setup_intent=None,
            default_payment_method=None,
            default_source=None,
        )
        return obj

    def subscription_item(self, created: int, subscription_id: str, prices: Pool) -> dict[str, Any]:
        item = self.factory("subscription_item").build(created)
        item.update(
            price=self.pick_before(prices, created),
            quantity=self.rng.randrange(1, 6),
            subscription=subscription_id,
            billing_thresholds=None,
        )
        return item

    def invoice(
        self,
        created: int,
        customers: Pool,
        subscriptions: Pool,
        prices: list[dict[str, Any]],
        data: AccountData,
    ) -> dict[str, Any]:
        obj = self.factory("invoice").build(created)
        subscription = self.pick_before(subscriptions, created) if self.rng.random() < 0.7 else None
        if subscription is not None and subscription["created"] <= created:
            customer_id = subscription["customer"]
            items = data.nested["subscription", "items"][subscription["id"]]
            sub_items = [orjson.loads(r.body) for r in items]
            lines = [
                self.line(created, obj["id"], item["price"], subscription) for item in sub_items
            ]
        else:
            subscription = None
            customer = self.pick_before(customers, created)
            customer_id = customer["id"] if customer else self.synth.stripe_id("cus", 14)
            n_lines = (
                self.rng.randrange(11, 31) if self.rng.random() < 0.05 else self.rng.randrange(1, 4)
            )
            lines = [
                self.line(created, obj["id"], self.rng.choice(prices), None) for _ in range(n_lines)
            ]
        total = sum(line["amount"] for line in lines)
        status = weighted(self.rng, INVOICE_STATUS)
        paid = status == "paid"
        obj.update(
            customer=customer_id,
            subscription=subscription["id"] if subscription else None,
            billing_reason="subscription_cycle" if subscription else "manual",
            status=status,
            paid=paid,
            lines=nest(data, "invoice", "lines", obj["id"], created, lines),
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            amount_due=total,
            amount_paid=total if paid else 0,
            amount_remaining=0 if paid else total,
            charge=None,
            number=f"{self.synth.token(8, 'ABCDEF0123456789')}-{self.rng.randrange(1, 9999):04d}",
            period_start=created - 30 * DAY,
            period_end=created,
            discount=None,
            status_transitions={
                "finalized_at": None if status == "draft" else created + 60,
                "marked_uncollectible_at": created + DAY if status == "uncollectible" else None,
                "paid_at": created + 120 if paid else None,
                "voided_at": created + DAY if status == "void" else None,
            },
        )
        return obj

    def line(
        self,
        created: int,
        invoice_id: str,
        price: dict[str, Any],
        subscription: dict[str, Any] | None,
    ) -> dict[str, Any]:
        prefix = "sli" if subscription else "il"  # Stripe's ids of subscription lines
        line = self.factory("line_item").build(created, self.synth.stripe_id(prefix, 24))
        quantity = self.rng.randrange(1, 4)
        amount = price["unit_amount"] * quantity
        line.update(
            amount=amount,
            amount_excluding_tax=amount,
            unit_amount_excluding_tax=str(price["unit_amount"]),
            description=f"{quantity} x {self.synth.words(2)}",
            price=price,
            quantity=quantity,
            subscription=subscription["id"] if subscription else None,
            type="subscription" if subscription else "invoiceitem",
            period={"start": created - 30 * DAY, "end": created},
        )
        if subscription is None:
            line["invoice_item"] = self.synth.stripe_id("ii", 24)
        else:
            del line["invoice_item"]  # Stripe leaves it out of subscription lines
        if "invoice" in line:  # a field of newer API versions, present in some objects
            line["invoice"] = invoice_id
        del line["created"]
        return line

    def charges(self, customers: Pool, invoices: list[dict[str, Any]]) -> list[Row]:
        budget = self.count("charge")
        paid = [i for i in invoices if i["paid"]][:budget]
        rows: list[Row] = []
        for invoice in paid:
            created = min(invoice["created"] + self.rng.randrange(30, 600), self.now - 1)
            charge = self.charge(created, invoice["customer"], invoice["total"], invoice["id"])
            invoice["charge"] = charge["id"]
            rows.append(row_of("charge", charge))
        for created in self.times(budget - len(paid)):
            customer = self.pick_before(customers, created) if self.rng.random() < 0.9 else None
            amount = self.synth.money()
            charge = self.charge(created, customer["id"] if customer else None, amount, None)
            rows.append(row_of("charge", charge))
        return rows

    def charge(
        self, created: int, customer_id: str | None, amount: int, invoice_id: str | None
    ) -> dict[str, Any]:
        status = "succeeded" if invoice_id else weighted(self.rng, CHARGE_STATUS)
        failed = status == "failed"
        refunded = status == "succeeded" and self.rng.random() < 0.03
        fixed = dict(
            amount=amount,
            amount_captured=0 if failed else amount,
            amount_refunded=amount if refunded else 0,
            refunded=refunded,
            captured=not failed,
            paid=status == "succeeded",
            status=status,
            customer=customer_id,
            invoice=invoice_id,
            balance_transaction=None if failed else self.synth.stripe_id("txn", 24),
            failure_code="card_declined" if failed else None,
            failure_message="Your card was declined." if failed else None,
            failure_balance_transaction=None,
            description=self.synth.words(5),
            billing_details=self.billing_details(),
            payment_intent=self.synth.stripe_id("pi", 24),
            receipt_url=f"https://pay.sim.example/receipts/payment/{self.synth.token(96)}",
            calculated_statement_descriptor="SIMULATED STORE",
            outcome={
                "network_status": "declined_by_network" if failed else "approved_by_network",
                "reason": "generic_decline" if failed else None,
                "risk_level": "normal",
                "risk_score": self.rng.randrange(0, 65),
                "seller_message": "The bank did not return any further details."
                if failed
                else "Payment complete.",
                "type": "issuer_declined" if failed else "authorized",
            },
        )
        return self.factory("charge").build(created, fixed=fixed)

    def billing_details(self) -> dict[str, Any]:
        synth = self.synth
        return {
            "address": {
                "city": synth.words(1),
                "country": "US",
                "line1": f"{self.rng.randrange(1, 999)} {synth.words(2)} St",
                "line2": None,
                "postal_code": synth.token(5, "0123456789"),
                "state": self.rng.choice(("CA", "NY", "TX", "WA", "IL", "MA")),
            },
            "email": synth.email(),
            "name": synth.person(),
            "phone": None,
        }

    def creation_events(self, rows: dict[str, list[Row]]) -> list[Row]:
        """``*.created`` events for objects created within the retention window."""
        cutoff = self.now - EVENT_RETENTION
        events: list[Row] = []
        for stream in sorted(rows):
            for row in rows[stream]:
                if row.created < cutoff:
                    continue
                event_type = created_event_type(stream, {"status": row.attrs.get("status")})
                if event_type is not None:
                    events.append(self.event(row.created, event_type, row.body))
        return events

    def event(
        self,
        created: int,
        event_type: str,
        body: bytes,
        previous: dict[str, Any] | None = None,
        other_version_rate: float | None = None,
    ) -> Row:
        """An event; some are rendered at an older API version (null fields left out)."""
        rate = (
            self.config.other_api_version_rate
            if other_version_rate is None
            else rate_of(other_version_rate)
        )
        version = API_VERSION
        if rate > 0 and self.rng.random() < rate:
            obj = orjson.loads(body)
            body = encode({k: v for k, v in obj.items() if v is not None})
            version = OTHER_API_VERSION
        event_id = self.synth.stripe_id("evt", 24)
        return encode_event(
            event_id, created, event_type, body, previous, version, self.event_account
        )

    def account(self) -> dict[str, Any]:
        obj = self.factory("account").build(self.begin - DAY, self.account_id)
        obj.update(
            email=self.synth.email(),
            country="US",
            default_currency="usd",
            charges_enabled=True,
            payouts_enabled=True,
            details_submitted=True,
        )
        return obj


def generate(config: SimConfig, *, seed: int, scale: float, account_id: str) -> AccountData:
    """The account's full, deterministic data set."""
    return Generator(config, seed, scale, account_id).build()
