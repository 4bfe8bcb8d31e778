"""A small in-memory Stripe behind requests-mock, for the tap's HTTP-level tests.

It pages like Stripe: newest first (``created`` then ``id`` descending), ``limit``,
``starting_after``, ``created[gte]``/``created[lt]``, ``has_more``; nested list endpoints
for invoice lines and subscription items; and lets a test queue failures.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests_mock

API_URL = "https://stripe.test"
API_KEY = "sk_test_51FakeKeyThatMustNeverBeSeen0123456789"

LIST_PATHS = {
    "charge": "/v1/charges",
    "customer": "/v1/customers",
    "subscription": "/v1/subscriptions",
    "invoice": "/v1/invoices",
    "event": "/v1/events",
    "coupon": "/v1/coupons",
    "product": "/v1/products",
    "price": "/v1/prices",
    "balancetransaction": "/v1/balance_transactions",
}
PREFIXES = {
    "charge": "ch",
    "customer": "cus",
    "subscription": "sub",
    "invoice": "in",
    "event": "evt",
    "coupon": "co",
    "product": "prod",
    "price": "price",
    "balancetransaction": "txn",
}
_ids = itertools.count(1)


def make_object(stream: str, created: int, **fields: Any) -> dict:
    """A Stripe-shaped object of ``stream`` with the few fields the tests look at."""
    obj_name = "balance_transaction" if stream == "balancetransaction" else stream
    obj: dict[str, Any] = {
        "id": f"{PREFIXES[stream]}_{next(_ids):08d}",
        "object": obj_name,
        "created": created,
        "livemode": False,
        "metadata": {"order": str(created)},
    }
    if stream == "charge":
        obj.update(amount=1000, currency="usd", paid=True, status="succeeded")
    obj.update(fields)
    return obj


def stripe_list(data: list[dict], url: str, has_more: bool = False) -> dict:
    """A Stripe list object."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


class FakeStripe:
    """Serves list endpoints from ``self.objects``; records every request."""

    def __init__(self, mocker: requests_mock.Mocker, api_url: str = API_URL) -> None:
        self.api_url = api_url
        self.mocker = mocker
        self.objects: dict[str, list[dict]] = {path: [] for path in LIST_PATHS.values()}
        self.account: dict = {"id": "acct_1Fake", "object": "account", "country": "US"}
        self.nested: dict[str, list[dict]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.failures: list[Callable[[Any, Any], dict | None]] = []
        self.fail_after: int | None = None
        for path in self.objects:
            mocker.get(f"{api_url}{path}", json=self._list)
        mocker.get(f"{api_url}/v1/account", json=self._account)
        mocker.get(re.compile(re.escape(api_url) + r"/v1/invoices/[^/]+/lines"), json=self._nested)
        mocker.get(f"{api_url}/v1/subscription_items", json=self._nested)

    def add(self, stream: str, objects: list[dict]) -> list[dict]:
        """Make ``objects`` visible in ``stream``'s list."""
        self.objects[LIST_PATHS[stream]].extend(objects)
        return objects

    def list_requests(self, stream: str) -> list[dict[str, str]]:
        """Query parameters of the requests made to ``stream``'s list endpoint."""
        return [params for path, params in self.requests if path == LIST_PATHS[stream]]

    def _record(self, request: Any) -> tuple[str, dict[str, str]] | None:
        parsed = urlparse(request.url)
        params = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        self.requests.append((parsed.path, params))
        return parsed.path, params

    def _maybe_fail(self, request: Any, context: Any) -> dict | None:
        if self.fail_after is not None and len(self.requests) > self.fail_after:
            context.status_code = 400
            context.headers["Request-Id"] = "req_cutoff"
            return {"error": {"type": "invalid_request_error", "message": "cut off"}}
        if self.failures:
            return self.failures.pop(0)(request, context)
        return None

    def _list(self, request: Any, context: Any) -> dict:
        path, params = self._record(request)
        failure = self._maybe_fail(request, context)
        if failure is not None:
            return failure
        items = self.objects[path]
        if "created[gte]" in params:
            items = [o for o in items if o["created"] >= int(params["created[gte]"])]
        if "created[lt]" in params:
            items = [o for o in items if o["created"] < int(params["created[lt]"])]
        for key, value in params.items():
            if key in ("status",):
                items = [o for o in items if value == "all" or o.get(key) == value]
        return self._page(items, params, path, context)

    def _page(self, items: list[dict], params: dict[str, str], path: str, context: Any) -> dict:
        items = sorted(items, key=lambda o: (o.get("created", 0), o["id"]), reverse=True)
        if "starting_after" in params:
            ids = [o["id"] for o in items]
            if params["starting_after"] not in ids:
                context.status_code = 400
                return {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"No such object: '{params['starting_after']}'",
                    }
                }
            items = items[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit", 10))
        return stripe_list(items[:limit], path, has_more=len(items) > limit)

    def _account(self, request: Any, context: Any) -> dict:
        self._record(request)
        failure = self._maybe_fail(request, context)
        return failure if failure is not None else self.account

    def _nested(self, request: Any, context: Any) -> dict:
        path, params = self._record(request)
        key = params["subscription"] if path == "/v1/subscription_items" else path.split("/")[3]
        return self._page(list(self.nested.get(key, [])), params, path, context)


def error(status: int, headers: dict[str, str] | None = None, body: dict | None = None) -> Callable:
    """A queued failure answering ``status`` once."""

    def respond(request: Any, context: Any) -> dict:
        context.status_code = status
        context.headers.update(headers or {})
        return body or {"error": {"type": "api_error", "message": f"status {status}"}}

    return respond
