"""The registry's child tables: rows that belong to a row of another table.

Children of an embedded list are rows of their parent's nested list, written with the
parent (``family.py``); children Stripe embeds nowhere are listed once per parent. Each
row carries its parent's id in the column ``Parent.column``. ``tables.py`` joins these to
the top-level tables and checks every child against its parent.
"""

from __future__ import annotations

from tap_stripe.table_spec import Parent, ParentParam, TableSpec, frozen

CHILD_TABLES: tuple[TableSpec, ...] = (
    # Children of an embedded list: rows of their parent's completed nested list, written with
    # the parent. Line item ids were not unique before 2019-12-03, and the ids of quote,
    # checkout session and payment link line items are not documented as unique: their key
    # holds the parent's id.
    TableSpec(
        name="invoicelineitem",
        path="/v1/invoices/{invoice}/lines",
        object="line_item",
        key_properties=("invoice", "id"),
        parent=Parent("invoice", "invoice", embedded_field="lines", column="invoice"),
    ),
    TableSpec(
        name="subscriptionitem",
        path="/v1/subscription_items",
        object="subscription_item",
        parent=Parent(
            "subscription",
            "subscription",
            ParentParam.QUERY,
            embedded_field="items",
            column="subscription",
        ),
    ),
    TableSpec(
        name="creditnotelineitem",
        path="/v1/credit_notes/{credit_note}/lines",
        object="credit_note_line_item",
        parent=Parent("creditnote", "credit_note", embedded_field="lines", column="credit_note"),
    ),
    TableSpec(
        name="quotelineitem",
        path="/v1/quotes/{quote}/line_items",
        object="item",
        key_properties=("quote", "id"),
        parent=Parent("quote", "quote", embedded_field="line_items", column="quote"),
    ),
    TableSpec(
        name="checkoutsessionlineitem",
        path="/v1/checkout/sessions/{session}/line_items",
        object="item",
        key_properties=("checkout_session", "id"),
        parent=Parent(
            "checkoutsession", "session", embedded_field="line_items", column="checkout_session"
        ),
    ),
    TableSpec(
        name="paymentlinklineitem",
        path="/v1/payment_links/{payment_link}/line_items",
        object="item",
        key_properties=("payment_link", "id"),
        parent=Parent(
            "paymentlink", "payment_link", embedded_field="line_items", column="payment_link"
        ),
    ),
    TableSpec(
        name="transferreversal",
        path="/v1/transfers/{id}/reversals",
        object="transfer_reversal",
        parent=Parent("transfer", "id", embedded_field="reversals", column="transfer"),
    ),
    TableSpec(
        name="feerefund",
        path="/v1/application_fees/{id}/refunds",
        object="fee_refund",
        parent=Parent("applicationfee", "id", embedded_field="refunds", column="fee"),
        event_types=("application_fee.refund.updated",),
        retrieve="/v1/application_fees/{fee}/refunds/{id}",
    ),
    # A customer's sources and tax ids, expanded on the customers' list; their own
    # events (customer.source.*, customer.tax_id.*) carry their changes and deletes.
    TableSpec(
        name="card",
        path="/v1/customers/{customer}/sources",
        parent=Parent("customer", "customer", embedded_field="sources", column="customer"),
        filters=frozen({"object": "card"}),
        event_types=("customer.source.*",),
        deletable=True,
        retrieve="/v1/customers/{customer}/sources/{id}",
    ),
    TableSpec(
        name="bankaccount",
        path="/v1/customers/{customer}/sources",
        object="bank_account",
        parent=Parent("customer", "customer", embedded_field="sources", column="customer"),
        filters=frozen({"object": "bank_account"}),
        event_types=("customer.source.*",),
        deletable=True,
        retrieve="/v1/customers/{customer}/sources/{id}",
    ),
    TableSpec(
        name="taxid",
        path="/v1/customers/{customer}/tax_ids",
        object="tax_id",
        parent=Parent("customer", "customer", embedded_field="tax_ids", column="customer"),
        event_types=("customer.tax_id.*",),
        deletable=True,
        retrieve="/v1/customers/{customer}/tax_ids/{id}",
    ),
    # A connected account's external accounts, expanded on the accounts' list: read whole
    # with it every run.
    TableSpec(
        name="externalaccount",
        path="/v1/accounts/{account}/external_accounts",
        object="bank_account|card",
        parent=Parent(
            "connectedaccount", "account", embedded_field="external_accounts", column="account"
        ),
    ),
    # Children Stripe embeds nowhere: listed once per parent, in a full read and for each
    # new parent; after that through their own events, or for each parent whose events
    # changed them.
    TableSpec(
        name="paymentmethod",
        path="/v1/customers/{customer}/payment_methods",
        object="payment_method",
        parent=Parent("customer", "customer", column="customer"),
        event_types=(
            "payment_method.attached",
            "payment_method.automatically_updated",
            "payment_method.detached",
            "payment_method.updated",
        ),
        # A detached payment method is no longer the customer's.
        delete_event_types=("payment_method.detached",),
        retrieve="/v1/payment_methods/{id}",
    ),
    TableSpec(
        name="customerbalancetransaction",
        path="/v1/customers/{customer}/balance_transactions",
        object="customer_balance_transaction",
        parent=Parent("customer", "customer", column="customer", refresh_on=("balance",)),
    ),
    TableSpec(
        name="customercashbalancetransaction",
        path="/v1/customers/{customer}/cash_balance_transactions",
        object="customer_cash_balance_transaction",
        parent=Parent("customer", "customer", column="customer"),
        event_types=("customer_cash_balance_transaction.created",),
        retrieve="/v1/customers/{customer}/cash_balance_transactions/{id}",
    ),
    TableSpec(
        name="setupattempt",
        path="/v1/setup_attempts",
        object="setup_attempt",
        parent=Parent("setupintent", "setup_intent", ParentParam.QUERY, column="setup_intent"),
    ),
    # A connected account's persons and capabilities: their events are the account's,
    # not the platform's, so they are listed per account (for the accounts that changed,
    # and for every one once per relist_children_hours: relisting.py).
    TableSpec(
        name="person",
        path="/v1/accounts/{account}/persons",
        parent=Parent("connectedaccount", "account", column="account"),
    ),
    TableSpec(
        name="capability",
        path="/v1/accounts/{account}/capabilities",
        # A capability's id is its name (card_payments): unique per account only.
        key_properties=("account", "id"),
        parent=Parent("connectedaccount", "account", column="account"),
    ),
    # Usage of each metered subscription item, listed again when its subscription changes
    # (Stripe sends no event for reported usage).
    TableSpec(
        name="usagerecordsummary",
        path="/v1/subscription_items/{subscription_item}/usage_record_summaries",
        object="usage_record_summary",
        parent=Parent(
            "subscriptionitem",
            "subscription_item",
            column="subscription_item",
            only_if=frozen({"price.recurring.usage_type": "metered"}),
        ),
    ),
    # The balance transactions of each automatic payout (Stripe answers 400 for a manual
    # one), listed again when the payout changes (paid, reconciled).
    TableSpec(
        name="payoutbalancetransaction",
        path="/v1/balance_transactions",
        object="balance_transaction",
        key_properties=("payout", "id"),
        parent=Parent(
            "payout",
            "payout",
            ParentParam.QUERY,
            column="payout",
            only_if=frozen({"automatic": True}),
        ),
    ),
)
