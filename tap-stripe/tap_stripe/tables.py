"""The registry of Stripe tables the tap replicates.

Each table is data: adding one is an entry here plus its generated schema in
``schemas/<name>.json``. The tap's parts read everything they need from a
:class:`TableSpec`, and so do the simulator, the test fakes, the e2e harness and the bench.

The registry declares every kind of table the tap is meant to read (:class:`ReadMode`, a
:class:`Parent`, a child from the parent's embedded list); :data:`BUILT_KINDS` says which
of them the tap reads today, and :func:`require_built` refuses the others by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


class ReadMode(StrEnum):
    """How a table's own endpoint is read."""

    CREATED = "created"
    """A list with a ``created`` filter: read window by window, bookmark on ``created``."""
    NEWEST_FIRST = "newest_first"
    """A list without a ``created`` filter, newest first: read down to the bookmark."""
    FULL = "full"
    """A list read whole on every run."""
    SINGLE = "single"
    """One object (``/v1/account``)."""


class ParentParam(StrEnum):
    """Where a child table's request carries its parent's id."""

    PATH = "path"
    """In the path: ``/v1/invoices/{invoice}/lines``."""
    QUERY = "query"
    """In the query: ``/v1/subscription_items?subscription=<id>``."""


class TableKind(StrEnum):
    """What reading a table takes: its read mode, or which kind of child it is."""

    CREATED = "created"
    NEWEST_FIRST = "newest_first"
    FULL = "full"
    SINGLE = "single"
    EMBEDDED_CHILD = "embedded_child"
    """Rows of the parent's embedded list, paged past Stripe's cut from the child's path."""
    PER_PARENT_CHILD = "per_parent_child"
    """Rows listed from the child's path once per parent row."""


BUILT_KINDS: frozenset[TableKind] = frozenset(
    {TableKind.CREATED, TableKind.NEWEST_FIRST, TableKind.FULL, TableKind.SINGLE}
)
"""The kinds the tap reads today; a table of another kind is refused at construction."""


@dataclass(frozen=True)
class Parent:
    """The table a child table's rows belong to.

    Attributes:
        table: The parent table's name in the registry.
        parameter: The name the parent's id goes under: the ``{placeholder}`` in the
            child's path, or the query parameter.
        location: Whether ``parameter`` is in the path or the query.
        embedded_field: The parent's field holding the child's rows as a Stripe list
            (``lines`` of an invoice); ``None`` when the rows are read only from the
            child's endpoint, once per parent.
    """

    table: str
    parameter: str
    location: ParentParam = ParentParam.PATH
    embedded_field: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """How one Stripe table is read.

    Attributes:
        name: Stream name, the lower-cased Stripe class name (``balancetransaction``).
        path: List endpoint (``/v1/charges``), or the single object's path (``/v1/account``).
            A child's path holds ``{<parameter>}`` when its parent's id goes in the path.
        read: How the table's endpoint is read (:class:`ReadMode`).
        object: The ``object`` field of the table's records (``balance_transaction``);
            empty means the same as ``name``.
        key_properties: The record's key.
        parent: The parent of a child table, ``None`` for a top-level table.
        filters: Query parameters every list request must carry (``status=all``: without
            it Stripe leaves cancelled subscriptions out).
        expand: Expansions requested on every request (``expand[]=data.<field>`` on lists).
        event_types: Stripe event types whose ``data.object`` is an object of this table
            (``*`` matches any suffix). A table with event types captures updates and
            deletes through ``/v1/events`` (see ``capture.py``).
        parent_event_types: Event types of the parent whose object carries this child's
            rows (``invoice.*`` for invoice lines).
        deletable: Stripe deletes objects of this table (they leave the lists and a
            ``*.deleted`` event is their tombstone). Subscriptions are not: their
            ``customer.subscription.deleted`` means cancelled, and they stay.
        nested_lists: Fields holding a Stripe list object that Stripe cuts short, mapped to
            the path template that pages the complete list; ``{id}`` is the parent's id.
        created_field: The field holding the object's creation time, which the list's
            ``created`` filter selects on (``date`` for invoice items).

    ``replication_key`` and ``single_object`` follow from ``read``.
    """

    name: str
    path: str
    read: ReadMode = ReadMode.CREATED
    object: str = ""
    key_properties: tuple[str, ...] = ("id",)
    parent: Parent | None = None
    filters: Mapping[str, str] = field(default_factory=_frozen)
    expand: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    parent_event_types: tuple[str, ...] = ()
    deletable: bool = False
    nested_lists: Mapping[str, str] = field(default_factory=_frozen)
    created_field: str = "created"

    def __post_init__(self) -> None:
        if not self.object:
            object.__setattr__(self, "object", self.name)
        parent = self.parent
        placeholders = set(re.findall(r"\{(\w+)\}", self.path))
        if parent is not None and parent.location is ParentParam.PATH:
            if placeholders != {parent.parameter}:
                msg = f"table '{self.name}': path {self.path} must hold {{{parent.parameter}}}"
                raise ValueError(msg)
        elif placeholders:
            msg = f"table '{self.name}': path {self.path} has a placeholder but no parent in it"
            raise ValueError(msg)

    @property
    def replication_key(self) -> str | None:
        """The creation-time field for tables read incrementally; ``None`` for full-table
        reads."""
        if self.read in (ReadMode.CREATED, ReadMode.NEWEST_FIRST):
            return self.created_field
        return None

    @property
    def single_object(self) -> bool:
        """The path returns one object rather than a list."""
        return self.read is ReadMode.SINGLE

    @property
    def kind(self) -> TableKind:
        """What reading the table takes."""
        if self.parent is None:
            return TableKind(self.read.value)
        if self.parent.embedded_field is not None:
            return TableKind.EMBEDDED_CHILD
        return TableKind.PER_PARENT_CHILD


class NotBuiltError(ValueError):
    """A registry entry of a kind the tap cannot read yet."""


def require_built(spec: TableSpec) -> None:
    """Refuse a table the tap would misread: one of a kind not built yet."""
    if spec.kind not in BUILT_KINDS:
        built = ", ".join(sorted(BUILT_KINDS))
        msg = f"table '{spec.name}': kind '{spec.kind}' is not read yet (read today: {built})"
        raise NotBuiltError(msg)


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
    TableSpec(
        name="balancetransaction",
        path="/v1/balance_transactions",
        object="balance_transaction",
    ),
    TableSpec(name="account", path="/v1/account", read=ReadMode.SINGLE),
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
        nested_lists=_frozen({"lines": "/v1/credit_notes/{id}/lines"}),
    ),
    TableSpec(
        name="quote",
        path="/v1/quotes",
        read=ReadMode.NEWEST_FIRST,
        event_types=("quote.*",),
    ),
    TableSpec(
        name="checkoutsession",
        path="/v1/checkout/sessions",
        read=ReadMode.NEWEST_FIRST,
        object="checkout.session",
        event_types=("checkout.session.*",),
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
    ),
    TableSpec(name="taxcode", path="/v1/tax_codes", read=ReadMode.FULL, object="tax_code"),
    # Connect
    TableSpec(name="transfer", path="/v1/transfers", event_types=("transfer.*",)),
    TableSpec(
        name="applicationfee",
        path="/v1/application_fees",
        object="application_fee",
        # application_fee.refund.updated carries a fee refund.
        event_types=("application_fee.created", "application_fee.refunded"),
    ),
    # A connected account's account.updated is an event of that account, not listed in
    # the platform's /v1/events: a full read each run catches changes and removals.
    TableSpec(
        name="connectedaccount",
        path="/v1/accounts",
        object="account",
        read=ReadMode.FULL,
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

TABLES_BY_NAME: Mapping[str, TableSpec] = MappingProxyType({t.name: t for t in TABLES})
