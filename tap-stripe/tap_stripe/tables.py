"""The registry of Stripe tables the tap replicates.

Each table is data: adding one is an entry here plus its generated schema in
``schemas/<name>.json``. The stream machinery in ``streams.py`` is written once and
reads everything it needs from a :class:`TableSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class TableSpec:
    """How one Stripe table is read.

    Attributes:
        name: Stream name, the lower-cased Stripe class name (``balancetransaction``).
        path: List endpoint (``/v1/charges``), or the single object's path (``/v1/account``).
        replication_key: ``"created"`` for tables read incrementally through the list
            endpoint's ``created`` filter; ``None`` for full-table reads.
        filters: Extra query parameters for every list request (``status=all``).
        expand: Expansions requested on every request (``expand[]=data.<field>`` on lists).
        event_types: Stripe event types whose ``data.object`` is an object of this table
            (``*`` matches any suffix). A table with event types captures updates and
            deletes through ``/v1/events`` (see ``changes.py``).
        deletable: Stripe deletes objects of this table (they leave the lists and a
            ``*.deleted`` event is their tombstone). Subscriptions are not: their
            ``customer.subscription.deleted`` means cancelled, and they stay.
        nested_lists: Fields holding a Stripe list object that Stripe cuts short, mapped to
            the path template that pages the complete list; ``{id}`` is the parent's id.
        single_object: The path returns one object rather than a list.
    """

    name: str
    path: str
    replication_key: str | None = "created"
    filters: Mapping[str, str] = field(default_factory=_frozen)
    expand: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    deletable: bool = False
    nested_lists: Mapping[str, str] = field(default_factory=_frozen)
    single_object: bool = False


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        name="charge",
        path="/v1/charges",
        # Explicit: charge.dispute.* and charge.refund.* carry other objects.
        event_types=(
            "charge.captured",
            "charge.expired",
            "charge.failed",
            "charge.pending",
            "charge.refunded",
            "charge.succeeded",
            "charge.updated",
        ),
    ),
    TableSpec(
        name="customer",
        path="/v1/customers",
        # Explicit: customer.subscription.*, customer.source.* etc. carry other objects.
        event_types=("customer.created", "customer.updated", "customer.deleted"),
        deletable=True,
    ),
    TableSpec(
        name="subscription",
        path="/v1/subscriptions",
        filters=_frozen({"status": "all"}),
        event_types=("customer.subscription.*",),
        nested_lists=_frozen({"items": "/v1/subscription_items?subscription={id}"}),
    ),
    TableSpec(
        name="invoice",
        path="/v1/invoices",
        event_types=("invoice.*",),
        deletable=True,
        nested_lists=_frozen({"lines": "/v1/invoices/{id}/lines"}),
    ),
    TableSpec(name="event", path="/v1/events"),
    TableSpec(name="coupon", path="/v1/coupons", event_types=("coupon.*",), deletable=True),
    TableSpec(name="product", path="/v1/products", event_types=("product.*",), deletable=True),
    TableSpec(name="price", path="/v1/prices", event_types=("price.*",), deletable=True),
    TableSpec(name="balancetransaction", path="/v1/balance_transactions"),
    TableSpec(
        name="account",
        path="/v1/account",
        replication_key=None,
        single_object=True,
    ),
)

TABLES_BY_NAME: Mapping[str, TableSpec] = MappingProxyType({t.name: t for t in TABLES})
