"""Which of Stripe's refusals mean that the account cannot read a table at all.

Issuing, Radar reviews, Reporting, the Connect-only tables and anything a restricted key
may not read are refused as a whole: a 403 (the key lacks the permission), a 400 saying
the account is not set up for the product, or a 404 for the product's own list endpoint.
Such a table is skipped with one warning and its state left as it was; the other tables
go on. Any other refusal (and any answer that is not Stripe's error object) still fails
the run.
"""

from __future__ import annotations

import re

from tap_stripe.client import StripeAPIError
from tap_stripe.tables import TableSpec

# Stripe's code for an account the key may not act for (a connected account whose access
# was revoked, or none): that account fails, not one of its tables.
ACCOUNT_INVALID = "account_invalid"
# Stripe's words for an account that has not enabled a product (checked on 400s only).
NOT_SET_UP = re.compile(
    r"not (?:yet )?(?:set up|enabled|activated|onboarded)|must be enabled|"
    r"does not have access|only available (?:to|for)|not available (?:to|for|on) (?:your|this)",
    re.IGNORECASE,
)


def unavailable_reason(error: StripeAPIError, spec: TableSpec) -> str | None:
    """Why ``error`` means the account cannot read ``spec``'s table, or None if it does not.

    Only Stripe's own error objects count: a proxy's 403 page is no answer about the table.
    """
    if error.error_type is None or error.code == ACCOUNT_INVALID:
        return None
    detail = f"HTTP {error.status} {error.message or 'no message'}"
    if error.status == 403:
        return f"the API key may not read it ({detail})"
    if error.status == 400 and NOT_SET_UP.search(error.message or ""):
        return f"the account is not set up for it ({detail})"
    if error.status == 404 and _is_table_endpoint(error.path, spec):
        return f"Stripe has no such endpoint for this account ({detail})"
    return None


def _is_table_endpoint(path: str, spec: TableSpec) -> bool:
    """``path`` is the table's own list endpoint (a 404 of one object is no such refusal)."""
    pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(spec.path))
    return re.search(f"{pattern}$", path) is not None
