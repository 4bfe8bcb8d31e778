"""The tap's settings as the SDK declares them (``--about``, Meltano, the defaults);
``settings.py`` checks their values."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_stripe.client import DEFAULT_API_URL, DEFAULT_API_VERSION
from tap_stripe.relisting import DEFAULT_RELIST_HOURS

# Accounts read at the same time in a run of many: enough to keep the global budget busy
# while the small accounts' requests wait on Stripe (one account's tables run at once).
DEFAULT_ACCOUNTS_AT_ONCE = 4

CONFIG_SCHEMA: dict = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        secret=True,
        description="Stripe secret or restricted key (sk_live_, sk_test_, rk_live_, rk_test_).",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description="Read objects created at or after this time; default: all history.",
    ),
    th.Property(
        "account_id",
        th.StringType,
        description="Connected account to read, sent as the Stripe-Account header.",
    ),
    th.Property(
        "account_ids",
        th.CustomType({"type": ["array", "string"], "items": {"type": "string"}}),
        description="Connected accounts to read (Stripe-Account), each into the same tables; "
        "also a comma-separated string.",
    ),
    th.Property(
        "all_connected_accounts",
        th.BooleanType,
        default=False,
        description="Read every account GET /v1/accounts lists (paged to its end).",
    ),
    th.Property(
        "include_platform",
        th.BooleanType,
        description="Read the key's own account too; default: when no account is named, or "
        "with all_connected_accounts.",
    ),
    th.Property(
        "budget_per_account",
        th.BooleanType,
        default=False,
        description="Give each account its own request budgets (Stripe does not document "
        "whose budget a Stripe-Account request spends; default: one budget for the key).",
    ),
    th.Property(
        "max_accounts_at_once",
        th.IntegerType,
        default=DEFAULT_ACCOUNTS_AT_ONCE,
        description="Accounts read at the same time, each with all its tables at once.",
    ),
    th.Property("api_url", th.StringType, default=DEFAULT_API_URL),
    th.Property(
        "api_version",
        th.StringType,
        default=DEFAULT_API_VERSION,
        description="Stripe-Version sent with every request; the schemas describe 2023-08-16.",
    ),
    th.Property(
        "lookback_window",
        th.IntegerType,
        default=300,
        description="Seconds re-read below the bookmark: Stripe can make an object "
        "visible after later ones.",
    ),
    th.Property(
        "relist_children_hours",
        th.IntegerType,
        default=DEFAULT_RELIST_HOURS,
        description="How often a connected account's persons and capabilities (which "
        "no platform event reports) are listed for every account; between, only for the "
        "accounts whose object changed; 0: every run.",
    ),
    th.Property("request_timeout", th.IntegerType, default=60, description="Seconds."),
    th.Property(
        "max_requests_per_second",
        th.IntegerType,
        description="Client-side request budget shared by all streams; default 95 for "
        "live keys and 24 for test keys (Stripe allows 100 and 25); lower it to leave "
        "room for the account's other API traffic; 0: unlimited.",
    ),
    th.Property(
        "max_requests_per_second_per_endpoint",
        th.NumberType,
        description="Client-side budget of each endpoint (method and path template, "
        "GET /v1/charges/{id} being one for every id), inside the global one; default "
        "24 (Stripe allows 25 unless documented otherwise); 0: unlimited.",
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType,
        description="Requests in flight at once; default from the request budget.",
    ),
    th.Property(
        "retry_backoff_seconds",
        th.NumberType,
        default=1.0,
        description="Base of the exponential backoff between retries.",
    ),
).to_dict()
