"""Stripe's error bodies, as the API returns them (``{"error": {...}}``)."""

from __future__ import annotations

from typing import Any

import orjson

DOCS = "https://stripe.com/docs"


class StripeError(Exception):
    """An API error: HTTP status plus Stripe's error object."""

    def __init__(self, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"message": message, "type": "invalid_request_error"}
        self.error.update({k: v for k, v in fields.items() if v is not None})

    def body(self) -> bytes:
        return orjson.dumps({"error": self.error})


def missing_key() -> StripeError:
    return StripeError(
        401,
        "You did not provide an API key. You need to provide your API key in the Authorization "
        "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). "
        f"See {DOCS}/api#authentication for details.",
    )


def invalid_key() -> StripeError:
    # Stripe echoes a masked key; the simulator leaves it out entirely (house rule).
    return StripeError(401, "Invalid API Key provided.")


def account_invalid(account: str) -> StripeError:
    return StripeError(
        403,
        f"The provided key does not have access to account '{account}' (or that account "
        "does not exist). Application access may have been revoked.",
        code="account_invalid",
    )


def unknown_parameter(param: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {param}", param=param)


def invalid_integer(param: str, value: str) -> StripeError:
    return StripeError(400, f"Invalid integer: {value}", param=param)


def out_of_range(param: str, bound: str) -> StripeError:
    return StripeError(400, f"This value must be {bound}.", param=param)


def only_one(*params: str) -> StripeError:
    return StripeError(
        400, f"You may only specify one of these parameters: {', '.join(params)}.", param=params[0]
    )


def missing_param(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", param=param)


def not_expandable(path: str) -> StripeError:
    return StripeError(400, f"This property cannot be expanded ({path}).", param="expand")


def no_such(resource: str, object_id: str, param: str = "id") -> StripeError:
    status = 404 if param == "id" else 400
    return StripeError(
        status,
        f"No such {resource.replace('_', ' ')}: '{object_id}'",
        code="resource_missing",
        doc_url=f"{DOCS}/error-codes/resource-missing",
        param=param,
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404, f"Unrecognized request URL ({method}: {path}). Please see {DOCS} for the API."
    )


def rate_limited() -> StripeError:
    return StripeError(
        429,
        "Request rate limit exceeded. You can learn more about rate limits here "
        f"{DOCS}/rate-limits.",
        code="rate_limit",
        doc_url=f"{DOCS}/error-codes/rate-limit",
    )


def api_error() -> StripeError:
    error = StripeError(500, "An unknown error occurred")
    error.error["type"] = "api_error"
    return error


# How Stripe answers a request for a table the account or the key may not read.
UNAVAILABLE_ANSWERS = ("permission", "not_set_up", "missing")


def unavailable(answer: str, path: str, account_id: str) -> StripeError:
    """Stripe's answer for a table the account cannot use, by kind of answer.

    ``permission``: a restricted key without the table's read permission (403);
    ``not_set_up``: the account has not enabled the product (400, as Issuing answers);
    ``missing``: the product's endpoint does not exist for the account (404).
    """
    if answer == "permission":
        return StripeError(
            403,
            "The provided key 'rk_test_*********sim' does not have the required permissions "
            f"for this endpoint on account '{account_id}'.",
        )
    if answer == "not_set_up":
        product = path.removeprefix("/v1/").split("/")[0].replace("_", " ").title()
        return StripeError(
            400,
            f"Your account is not set up to use {product}. Please visit "
            "https://dashboard.stripe.com to get started.",
        )
    return unrecognized_url("GET", path)
