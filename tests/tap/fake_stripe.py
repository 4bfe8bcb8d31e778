"""A small in-memory Stripe behind requests-mock, for the tap's HTTP-level tests.

It pages like Stripe: newest first (``created`` then ``id`` descending), ``limit``,
``starting_after``, ``created[gte]``/``created[lt]``, ``has_more``; nested list endpoints
for invoice lines and subscription items; ``/v1/events`` filtered by ``type`` (exact or
``prefix.*``) or ``types[]`` (exact names only, as Stripe); retrieval by id
(``GET /v1/<plural>/<id>``, 404 ``resource_missing`` or the deleted-customer stub); and
lets a test queue failures, for any request or for one path.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests_mock
from tap_stripe.tables import TABLES, TABLES_BY_NAME, ParentParam, TableKind, TableSpec
from tap_stripe.tap import load_schema

API_URL = "https://stripe.test"
API_KEY = "sk_test_51FakeKeyThatMustNeverBeSeen0123456789"
# The key's own account: every record of a run without account settings carries its id.
OWN_ACCOUNT_ID = "acct_1Fake"

# The tables, their paths and nested lists come from the tap's registry. Ids take Stripe's
# prefix where a test looks at it, the table's name otherwise.
LIST_PATHS = {
    spec.name: spec.path for spec in TABLES if not spec.single_object and spec.parent is None
}
SINGLE_PATHS = tuple(spec.path for spec in TABLES if spec.single_object)
NESTED_TEMPLATES = tuple(t for spec in TABLES for t in spec.nested_lists.values())


def _listed_template(spec: TableSpec) -> str:
    """A per-parent child's list as a nested-list template (``{id}``: the parent's id)."""
    assert spec.parent is not None
    if spec.parent.location is ParentParam.QUERY:
        return f"{spec.path}?{spec.parent.parameter}={{id}}"
    return spec.path.replace(f"{{{spec.parent.parameter}}}", "{id}")


# Children listed per parent: table -> template. Those on a list path of their own
# (``/v1/balance_transactions?payout=``) are answered by that list's handler.
LISTED_TEMPLATES = {
    spec.name: _listed_template(spec) for spec in TABLES if spec.kind is TableKind.PER_PARENT_CHILD
}
PREFIXES = {name: name for name in LIST_PATHS} | {
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
# Where a list's objects hold their creation time (``date`` for invoice items).
CREATED_FIELDS = {spec.path: spec.created_field for spec in TABLES}
EVENTS_PATH = LIST_PATHS["event"]
PINNED_API_VERSION = "2023-08-16"
MAX_TYPES = 20
_ids = itertools.count(1)


def make_object(stream: str, created: int, **fields: Any) -> dict:
    """A Stripe-shaped object of ``stream`` with the few fields the tests look at."""
    spec = TABLES_BY_NAME[stream]
    obj: dict[str, Any] = {
        "id": f"{PREFIXES[stream]}_{next(_ids):08d}",
        "object": spec.object,
        CREATED_FIELDS.get(spec.path, "created"): created,
        "livemode": False,
        "metadata": {"order": str(created)},
    }
    if not spec.single_object and spec.created_field not in load_schema(stream)["properties"]:
        del obj["created"]  # payment links and tax codes have no creation time
    if stream == "charge":
        obj.update(amount=1000, currency="usd", paid=True, status="succeeded")
    obj.update(fields)
    return obj


def make_event(
    event_type: str,
    obj: dict,
    *,
    created: int,
    api_version: str | None = PINNED_API_VERSION,
    previous: dict | None = None,
) -> dict:
    """A Stripe event whose ``data.object`` is ``obj`` (``previous``: its
    ``previous_attributes``)."""
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": f"evt_{next(_ids):08d}",
        "object": "event",
        "type": event_type,
        "created": created,
        "api_version": api_version,
        "livemode": False,
        "data": data,
    }


def created_of(path: str, obj: dict) -> int:
    """An object's creation time, from the field its list holds it in (0 if none)."""
    return obj.get(CREATED_FIELDS.get(path, "created"), 0)


def type_matches(pattern: str, event_type: str) -> bool:
    """Stripe's ``type`` filter: an exact name, or a prefix followed by ``*``."""
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


def invalid_request(context: Any, message: str, code: str | None = None) -> dict:
    """A 400 as Stripe words it."""
    context.status_code = 400
    body: dict[str, Any] = {"type": "invalid_request_error", "message": message}
    if code:
        body["code"] = code
    return {"error": body}


def stripe_list(data: list[dict], url: str, has_more: bool = False) -> dict:
    """A Stripe list object."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


class FakeStripe:
    """Serves list endpoints from ``self.objects`` and retrieval from ``self.current``.

    Every request is recorded in ``self.requests`` as ``(path, params)``; a parameter
    named ``...[]`` holds the list of its values, any other its last value. The key's own
    account (``GET /v1/account`` without ``Stripe-Account``), which every run asks once
    for its id, is recorded in ``self.own_account_requests`` instead: it is also the
    ``account`` table's record, so a run makes no other request for it.
    """

    def __init__(self, mocker: requests_mock.Mocker, api_url: str = API_URL) -> None:
        self.api_url = api_url
        self.mocker = mocker
        self.objects: dict[str, list[dict]] = {path: [] for path in LIST_PATHS.values()}
        self.account: dict = {"id": OWN_ACCOUNT_ID, "object": "account", "country": "US"}
        self.balance: dict = {
            "object": "balance",
            "available": [{"amount": 1200, "currency": "usd"}],
            "pending": [{"amount": 300, "currency": "usd"}],
            "livemode": False,
        }
        self.nested: dict[str, list[dict]] = {}
        # Rows of children listed per parent: (table, parent id) -> rows.
        self.listed: dict[tuple[str, str], list[dict]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        # The Stripe-Account of each of ``requests`` (None: the key's own account).
        self.request_accounts: list[str | None] = []
        self.own_account_requests = 0
        self.failures: list[Callable[[Any, Any], dict | None]] = []
        self.fail_after: int | None = None
        # Current object per stream and id, answered by GET /v1/<plural>/<id>.
        self.current: dict[str, dict[str, dict]] = {stream: {} for stream in LIST_PATHS}
        # Deleted customers: retrieving one answers Stripe's stub instead of a 404.
        self.deleted_customers: set[str] = set()
        # Failures queued for one path only (answered before ``failures``).
        self.path_failures: dict[str, list[Callable[[Any, Any], dict | None]]] = {}
        # Stripe's clock, sent as the ``Date`` of list and single-object answers when set.
        self.clock: float | None = None
        for path in self.objects:
            mocker.get(f"{api_url}{path}", json=self._list)
        for path in SINGLE_PATHS:
            mocker.get(f"{api_url}{path}", json=self._single)
        for template in NESTED_TEMPLATES:
            mocker.get(_nested_url(api_url, template), json=self._nested)
        for template in LISTED_TEMPLATES.values():
            if template.partition("?")[0] not in self.objects:
                mocker.get(_nested_url(api_url, template), json=self._listed)
        plurals = "|".join(re.escape(path.removeprefix("/v1/")) for path in LIST_PATHS.values())
        mocker.get(
            re.compile(re.escape(api_url) + rf"/v1/(?:{plurals})/[^/?]+(?:\?|$)"),
            json=self._retrieve,
        )

    def add(self, stream: str, objects: list[dict]) -> list[dict]:
        """Make ``objects`` visible in ``stream``'s list (and retrievable by id)."""
        self.objects[LIST_PATHS[stream]].extend(objects)
        self.current[stream].update((obj["id"], obj) for obj in objects)
        return objects

    def put(self, stream: str, obj: dict) -> dict:
        """Make ``obj`` what retrieving its id answers (the list is left alone)."""
        self.current[stream][obj["id"]] = obj
        return obj

    def delete(self, stream: str, object_id: str) -> None:
        """Delete an object as Stripe does: it leaves the list; retrieving it answers 404,
        or the ``deleted: true`` stub for a customer."""
        path = LIST_PATHS[stream]
        self.objects[path] = [obj for obj in self.objects[path] if obj["id"] != object_id]
        self.current[stream].pop(object_id, None)
        if stream == "customer":
            self.deleted_customers.add(object_id)

    def add_event(
        self,
        event_type: str,
        obj: dict,
        *,
        created: int,
        api_version: str | None = PINNED_API_VERSION,
        previous: dict | None = None,
    ) -> dict:
        """Make an event about ``obj`` visible on ``/v1/events``."""
        event = make_event(
            event_type, obj, created=created, api_version=api_version, previous=previous
        )
        self.objects[EVENTS_PATH].append(event)
        return event

    def fail_path(self, path: str, *responses: Callable[[Any, Any], dict | None]) -> None:
        """Answer the next requests to ``path`` with ``responses``, one each."""
        self.path_failures.setdefault(path, []).extend(responses)

    def list_requests(self, stream: str) -> list[dict[str, Any]]:
        """Query parameters of the requests made to ``stream``'s list endpoint."""
        return [params for path, params in self.requests if path == LIST_PATHS[stream]]

    def retrieve_requests(self, stream: str) -> list[str]:
        """Ids retrieved from ``stream``'s endpoint, in request order."""
        prefix = LIST_PATHS[stream] + "/"
        return [
            path.removeprefix(prefix)
            for path, _ in self.requests
            if path.startswith(prefix) and "/" not in path.removeprefix(prefix)
        ]

    def _record(self, request: Any) -> tuple[str, dict[str, Any]]:
        parsed = urlparse(request.url)
        params: dict[str, Any] = {
            key: values if key.endswith("[]") else values[-1]
            for key, values in parse_qs(parsed.query).items()
        }
        if parsed.path == "/v1/account" and "Stripe-Account" not in request.headers:
            self.own_account_requests += 1
        else:
            self.requests.append((parsed.path, params))
            self.request_accounts.append(request.headers.get("Stripe-Account"))
        return parsed.path, params

    def _maybe_fail(self, request: Any, context: Any) -> dict | None:
        if self.fail_after is not None and len(self.requests) > self.fail_after:
            context.status_code = 400
            context.headers["Request-Id"] = "req_cutoff"
            return {"error": {"type": "invalid_request_error", "message": "cut off"}}
        queued = self.path_failures.get(urlparse(request.url).path)
        if queued:
            return queued.pop(0)(request, context)
        if self.failures:
            return self.failures.pop(0)(request, context)
        return None

    def _list(self, request: Any, context: Any) -> dict:
        path, params = self._record(request)
        if self.clock is not None:
            context.headers["Date"] = formatdate(self.clock, usegmt=True)
        failure = self._maybe_fail(request, context)
        if failure is not None:
            return failure
        items = self.objects[path]
        for table, template in LISTED_TEMPLATES.items():
            path_part, _, query = template.partition("?")
            parameter = query.partition("=")[0]
            if path == path_part and parameter in params:
                items = self.listed.get((table, params[parameter]), [])
                return self._page(list(items), params, path, context)
        if path == EVENTS_PATH:
            filtered = self._filter_events(items, params, context)
            if isinstance(filtered, dict):
                return filtered
            items = filtered
        if "created[gte]" in params:
            items = [o for o in items if created_of(path, o) >= int(params["created[gte]"])]
        if "created[lt]" in params:
            items = [o for o in items if created_of(path, o) < int(params["created[lt]"])]
        for key, value in params.items():
            if key in ("status",):
                items = [o for o in items if value == "all" or o.get(key) == value]
        return self._page(items, params, path, context)

    def _filter_events(
        self, events: list[dict], params: dict[str, Any], context: Any
    ) -> list[dict] | dict:
        """The events ``type``/``types[]`` select, or Stripe's 400 for a bad filter."""
        if "type" in params and "types[]" in params:
            return invalid_request(context, "You may only specify one of: type, types")
        if "type" in params:
            return [e for e in events if type_matches(params["type"], e["type"])]
        if "types[]" in params:
            names = params["types[]"]
            if len(names) > MAX_TYPES:
                return invalid_request(context, f"types: at most {MAX_TYPES} event types")
            wildcards = [name for name in names if "*" in name]
            if wildcards:
                return invalid_request(
                    context,
                    f"Invalid types[]: '{wildcards[0]}' is not a valid event type; "
                    "wildcards are only allowed with type",
                )
            return [e for e in events if e["type"] in names]
        return events

    def _page(self, items: list[dict], params: dict[str, str], path: str, context: Any) -> dict:
        items = sorted(items, key=lambda o: (created_of(path, o), o["id"]), reverse=True)
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

    def _single(self, request: Any, context: Any) -> dict:
        path, _ = self._record(request)
        own_account = path == "/v1/account" and "Stripe-Account" not in request.headers
        # The run's own-account lookup fails only as asked for its path (``fail_path``).
        queued = self.path_failures.get(path) if own_account else None
        failure = None if own_account and not queued else self._maybe_fail(request, context)
        if failure is not None:
            return failure
        if self.clock is not None:
            context.headers["Date"] = formatdate(self.clock, usegmt=True)
        return self.balance if path == "/v1/balance" else self.account

    def _retrieve(self, request: Any, context: Any) -> dict:
        path, _ = self._record(request)
        failure = self._maybe_fail(request, context)
        if failure is not None:
            return failure
        list_path, _, object_id = path.rpartition("/")
        stream = next(name for name, known in LIST_PATHS.items() if known == list_path)
        if object_id in self.current[stream]:
            return self.current[stream][object_id]
        if stream == "customer" and object_id in self.deleted_customers:
            return {"id": object_id, "object": "customer", "deleted": True}
        context.status_code = 404
        return {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "param": "id",
                "message": f"No such {stream}: '{object_id}'",
            }
        }

    def _listed(self, request: Any, context: Any) -> dict:
        path, params = self._record(request)
        failure = self._maybe_fail(request, context)
        if failure is not None:
            return failure
        table, template = next(
            (t, template)
            for t, template in LISTED_TEMPLATES.items()
            if _nested_match(template, path)
        )
        items = self.listed.get((table, _parent_id(template, path, params)), [])
        return self._page(list(items), params, path, context)

    def _nested(self, request: Any, context: Any) -> dict:
        path, params = self._record(request)
        key = next(_parent_id(t, path, params) for t in NESTED_TEMPLATES if _nested_match(t, path))
        return self._page(list(self.nested.get(key, [])), params, path, context)


def _nested_url(api_url: str, template: str) -> re.Pattern[str]:
    """What requests-mock matches for a nested list's template (query left to the handler)."""
    path = template.partition("?")[0]
    pattern = re.escape(path).replace(re.escape("{id}"), "[^/?]+")
    return re.compile(re.escape(api_url) + pattern + r"(?:\?|$)")


def _nested_match(template: str, path: str) -> bool:
    pattern = re.escape(template.partition("?")[0]).replace(re.escape("{id}"), "[^/]+")
    return re.fullmatch(pattern, path) is not None


def _parent_id(template: str, path: str, params: dict[str, Any]) -> str:
    """The parent's id: the query parameter holding ``{id}``, or the path segment."""
    path_template, _, query = template.partition("?")
    if query:
        return params[query.partition("=")[0]]
    return path.split("/")[path_template.split("/").index("{id}")]


def error(status: int, headers: dict[str, str] | None = None, body: dict | None = None) -> Callable:
    """A queued failure answering ``status`` once."""

    def respond(request: Any, context: Any) -> dict:
        context.status_code = status
        context.headers.update(headers or {})
        return body or {"error": {"type": "api_error", "message": f"status {status}"}}

    return respond
