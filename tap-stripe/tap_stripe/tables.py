"""The registry of Stripe tables the tap replicates.

Each table is data: adding one is an entry here plus its generated schema in
``schemas/<name>.json``. The tap's parts read everything they need from a
:class:`TableSpec`, and so do the simulator, the test fakes, the e2e harness and the bench.

Every kind of table is declared as data (:class:`ReadMode`, a :class:`Parent`, a child
from the parent's embedded list or listed per parent).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tap_stripe.child_tables import CHILD_TABLES
from tap_stripe.table_spec import (
    Parent,
    ParentParam,
    ReadMode,
    TableKind,
    TableSpec,
    frozen,
)

__all__ = [
    "TABLES",
    "TABLES_BY_NAME",
    "Parent",
    "ParentParam",
    "ReadMode",
    "TableKind",
    "TableSpec",
    "check_children",
    "embedded_children",
    "tracks_deletes",
]

_TOP_LEVEL: tuple[TableSpec, ...] = (
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
        # Expanded for the cards, bank accounts and tax ids tables only: a customer's
        # sources and tax ids come with the list instead of a request per customer.
        child_expand=("sources", "tax_ids"),
        nested_lists=frozen(
            {"sources": "/v1/customers/{id}/sources", "tax_ids": "/v1/customers/{id}/tax_ids"}
        ),
    ),
    TableSpec(
        name="subscription",
        path="/v1/subscriptions",
        filters=frozen({"status": "all"}),
        event_types=("customer.subscription.*",),
        nested_lists=frozen({"items": "/v1/subscription_items?subscription={id}"}),
    ),
    TableSpec(
        name="invoice",
        path="/v1/invoices",
        event_types=("invoice.*",),
        deletable=True,
        nested_lists=frozen({"lines": "/v1/invoices/{id}/lines"}),
    ),
    TableSpec(name="event", path="/v1/events"),
    TableSpec(name="coupon", path="/v1/coupons", event_types=("coupon.*",), deletable=True),
    TableSpec(name="product", path="/v1/products", event_types=("product.*",), deletable=True),
    TableSpec(name="price", path="/v1/prices", event_types=("price.*",), deletable=True),
    TableSpec(
        name="balancetransaction",
        path="/v1/balance_transactions",
        object="balance_transaction",
    ),
    TableSpec(name="account", path="/v1/account", read=ReadMode.SINGLE),
    # The balance has no id and no creation time: each run adds its copy, stamped.
    TableSpec(
        name="balance",
        path="/v1/balance",
        read=ReadMode.SINGLE,
        key_properties=("snapshot_at",),
        snapshot_field="snapshot_at",
    ),
    # Payments
    TableSpec(
        name="paymentintent",
        path="/v1/payment_intents",
        object="payment_intent",
        event_types=("payment_intent.*",),
    ),
    TableSpec(
        name="setupintent",
        path="/v1/setup_intents",
        object="setup_intent",
        event_types=("setup_intent.*",),
    ),
    TableSpec(
        name="refund",
        path="/v1/refunds",
        # charge.refund.updated carries the refund; charge.refunded carries the charge.
        event_types=("charge.refund.updated", "refund.created", "refund.updated"),
    ),
    TableSpec(name="dispute", path="/v1/disputes", event_types=("charge.dispute.*",)),
    TableSpec(name="review", path="/v1/reviews", event_types=("review.*",)),
    TableSpec(name="payout", path="/v1/payouts", event_types=("payout.*",)),
    TableSpec(name="topup", path="/v1/topups", event_types=("topup.*",)),
    TableSpec(name="file", path="/v1/files", event_types=("file.*",)),
    # Billing
    TableSpec(
        name="invoiceitem",
        path="/v1/invoiceitems",
        event_types=("invoiceitem.*",),
        deletable=True,
        # Invoice items have no created: their date is when they were created, and the
        # list's created filter selects on it.
        created_field="date",
    ),
    TableSpec(
        name="subscriptionschedule",
        path="/v1/subscription_schedules",
        object="subscription_schedule",
        event_types=("subscription_schedule.*",),
    ),
    TableSpec(name="plan", path="/v1/plans", event_types=("plan.*",), deletable=True),
    TableSpec(
        name="promotioncode",
        path="/v1/promotion_codes",
        object="promotion_code",
        event_types=("promotion_code.*",),
    ),
    TableSpec(name="taxrate", path="/v1/tax_rates", object="tax_rate", event_types=("tax_rate.*",)),
    # No events report a shipping rate's changes: a full read each run retires the rest.
    TableSpec(
        name="shippingrate",
        path="/v1/shipping_rates",
        object="shipping_rate",
        read=ReadMode.FULL,
    ),
    # Newest-first lists without a created filter, read down to the bookmark.
    TableSpec(
        name="creditnote",
        path="/v1/credit_notes",
        read=ReadMode.NEWEST_FIRST,
        object="credit_note",
        event_types=("credit_note.*",),
        nested_lists=frozen({"lines": "/v1/credit_notes/{id}/lines"}),
    ),
    # A quote's and a checkout session's line items are left out unless expanded.
    TableSpec(
        name="quote",
        path="/v1/quotes",
        read=ReadMode.NEWEST_FIRST,
        event_types=("quote.*",),
        expand=("line_items",),
        nested_lists=frozen({"line_items": "/v1/quotes/{id}/line_items"}),
    ),
    TableSpec(
        name="checkoutsession",
        path="/v1/checkout/sessions",
        read=ReadMode.NEWEST_FIRST,
        object="checkout.session",
        event_types=("checkout.session.*",),
        expand=("line_items",),
        nested_lists=frozen({"line_items": "/v1/checkout/sessions/{id}/line_items"}),
    ),
    TableSpec(
        name="earlyfraudwarning",
        path="/v1/radar/early_fraud_warnings",
        read=ReadMode.NEWEST_FIRST,
        object="radar.early_fraud_warning",
        event_types=("radar.early_fraud_warning.*",),
    ),
    # Lists without created at all: read whole every run.
    TableSpec(
        name="paymentlink",
        path="/v1/payment_links",
        read=ReadMode.FULL,
        object="payment_link",
        expand=("line_items",),
        nested_lists=frozen({"line_items": "/v1/payment_links/{id}/line_items"}),
    ),
    TableSpec(name="taxcode", path="/v1/tax_codes", read=ReadMode.FULL, object="tax_code"),
    # Connect
    TableSpec(
        name="transfer",
        path="/v1/transfers",
        event_types=("transfer.*",),
        nested_lists=frozen({"reversals": "/v1/transfers/{id}/reversals"}),
        platform_only=True,
    ),
    TableSpec(
        name="applicationfee",
        path="/v1/application_fees",
        object="application_fee",
        # application_fee.refund.updated carries a fee refund.
        event_types=("application_fee.created", "application_fee.refunded"),
        nested_lists=frozen({"refunds": "/v1/application_fees/{id}/refunds"}),
        platform_only=True,
    ),
    # A connected account's account.updated is an event of that account, not listed in
    # the platform's /v1/events: a full read each run catches changes and removals.
    TableSpec(
        name="connectedaccount",
        path="/v1/accounts",
        object="account",
        read=ReadMode.FULL,
        child_expand=("external_accounts",),
        nested_lists=frozen({"external_accounts": "/v1/accounts/{id}/external_accounts"}),
        platform_only=True,
    ),
    # Reporting
    TableSpec(
        name="reportrun",
        path="/v1/reporting/report_runs",
        object="reporting.report_run",
        event_types=("reporting.report_run.*",),
    ),
    # Issuing
    TableSpec(
        name="issuingauthorization",
        path="/v1/issuing/authorizations",
        object="issuing.authorization",
        event_types=("issuing_authorization.*",),
    ),
    TableSpec(
        name="issuingcard",
        path="/v1/issuing/cards",
        object="issuing.card",
        event_types=("issuing_card.*",),
    ),
    TableSpec(
        name="issuingcardholder",
        path="/v1/issuing/cardholders",
        object="issuing.cardholder",
        event_types=("issuing_cardholder.*",),
    ),
    TableSpec(
        name="issuingtransaction",
        path="/v1/issuing/transactions",
        object="issuing.transaction",
        event_types=("issuing_transaction.*",),
    ),
    TableSpec(
        name="issuingdispute",
        path="/v1/issuing/disputes",
        object="issuing.dispute",
        event_types=("issuing_dispute.*",),
    ),
)

TABLES: tuple[TableSpec, ...] = _TOP_LEVEL + CHILD_TABLES

TABLES_BY_NAME: Mapping[str, TableSpec] = MappingProxyType({t.name: t for t in TABLES})


def embedded_children(parent: str) -> tuple[TableSpec, ...]:
    """The tables made of rows of ``parent``'s embedded lists, in registry order."""
    return tuple(
        spec
        for spec in TABLES
        if spec.kind is TableKind.EMBEDDED_CHILD and spec.parent and spec.parent.table == parent
    )


def tracks_deletes(spec: TableSpec) -> bool:
    """Whether rows of ``spec`` can be marked deleted from events: its own, or for a
    child, its parent's."""
    if spec.event_types:
        return True
    parent = TABLES_BY_NAME.get(spec.parent.table) if spec.parent is not None else None
    return parent is not None and bool(parent.event_types)


def platform_only(spec: TableSpec) -> bool:
    """Whether ``spec`` is the platform's alone (its connected accounts, the fees it
    collects, the transfers it makes, and their children): read once, from the platform,
    never for a connected account."""
    while spec.parent is not None:
        spec = TABLES_BY_NAME[spec.parent.table]
    return spec.platform_only


def check_children(tables: Mapping[str, TableSpec]) -> None:
    """Refuse a child whose parent does not carry its rows: its parent must be in the
    registry, and a parent's nested-list template must page exactly the child's path."""
    for spec in tables.values():
        parent = spec.parent
        if parent is None:
            continue
        owner = tables.get(parent.table)
        grandparent = owner.parent if owner is not None else None
        if (
            owner is None
            or not parent.column
            or (grandparent is not None and tables[grandparent.table].parent is not None)
            or (grandparent is not None and parent.embedded_field is not None)
        ):
            msg = (
                f"table '{spec.name}': parent '{parent.table}' must be a top-level table "
                "(or, for a child listed per parent, a child of one)"
            )
            raise ValueError(msg)
        if parent.embedded_field is None:
            continue
        template = owner.nested_lists.get(parent.embedded_field, "")
        if parent.location is ParentParam.PATH:
            expected = spec.path.replace(f"{{{parent.parameter}}}", "{id}")
        else:
            expected = f"{spec.path}?{parent.parameter}={{id}}"
        if template != expected:
            msg = (
                f"table '{spec.name}': its parent '{parent.table}' must page "
                f"'{parent.embedded_field}' from {expected}, not {template or 'nowhere'}"
            )
            raise ValueError(msg)


check_children(TABLES_BY_NAME)
