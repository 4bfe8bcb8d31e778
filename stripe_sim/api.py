"""The Stripe API surface: auth, routing, parameters, paging, filters and ``expand``.

Every function here is pure request -> response over a :class:`SimState`; the HTTP server
adds latency, rate limits and faults around it.
"""

from __future__ import annotations

import base64
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from stripe_sim import child_retrieve, errors, ledger, per_parent
from stripe_sim.children import CHILD_OF, included
from stripe_sim.dataset import EVENT_RETENTION, AccountData, deleted_customer
from stripe_sim.errors import StripeError
from stripe_sim.nested import NESTED_ROUTES, NestedRoute
from stripe_sim.state import SimState
from stripe_sim.store import CursorMissing, Predicate, Row, encode
from stripe_sim.synth import load_shapes, resource_shape
from stripe_sim.tables import ID_PREFIX_STREAM, INCLUDABLE, PLURALS, SPECS, SYNTHESIS

PAGING = frozenset({"limit", "starting_after", "ending_before", "expand"})
CREATED_OPS = frozenset({"gt", "gte", "lt", "lte"})
# The single-object paths of the registry (``/v1/account``, ``/v1/balance``) -> their table.
SINGLE_PATHS = {spec.path: name for name, spec in SPECS.items() if spec.single_object}
KEY_RE = re.compile(r"^([A-Za-z_]+)(?:\[([A-Za-z0-9_]*)\])?(?:\[[A-Za-z0-9_]*\])*$")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


@dataclass
class Params:
    """Query parameters decoded the way Stripe reads form-style nesting; not ``strict``,
    the parameters the API does not know are ignored (``SimConfig.strict_params``)."""

    scalars: dict[str, str]
    lists: dict[str, list[str]]
    maps: dict[str, dict[str, str]]
    strict: bool = True

    @classmethod
    def parse(cls, query: str, strict: bool = True) -> Params:
        params = cls({}, {}, {}, strict)
        for key, value in parse_qsl(query, keep_blank_values=True):
            match = KEY_RE.match(key)
            if match is None:
                if strict:
                    raise errors.unknown_parameter(key)
                continue
            base, sub = match.group(1), match.group(2)
            if sub is None:
                if base in ("expand", "types"):
                    params.lists.setdefault(base, []).append(value)
                else:
                    params.scalars[base] = value
            elif sub == "" or sub.isdigit():
                params.lists.setdefault(base, []).append(value)
            else:
                params.maps.setdefault(base, {})[sub] = value
        return params

    def names(self) -> set[str]:
        return set(self.scalars) | set(self.lists) | set(self.maps)

    def check(self, allowed: frozenset[str]) -> None:
        for name in sorted(self.names()):
            if name not in allowed and self.strict:
                raise errors.unknown_parameter(name)

    def integer(self, name: str, value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise errors.invalid_integer(name, value) from None

    def limit(self) -> int:
        raw = self.scalars.get("limit")
        if raw is None:
            return 10
        limit = self.integer("limit", raw)
        if limit < 1:
            raise errors.out_of_range("limit", "greater than or equal to 1")
        if limit > 100:
            raise errors.out_of_range("limit", "less than or equal to 100")
        return limit

    def created_bounds(self) -> tuple[int | None, int | None]:
        """``created`` as ``(gte, lte)``: plain integer or ``created[gt|gte|lt|lte]``."""
        gte: int | None = None
        lte: int | None = None
        if "created" in self.scalars:
            exact = self.integer("created", self.scalars["created"])
            return exact, exact
        for op, raw in self.maps.get("created", {}).items():
            if op not in CREATED_OPS:
                if self.strict:
                    raise errors.unknown_parameter(f"created[{op}]")
                continue
            value = self.integer(f"created[{op}]", raw)
            if op in ("gt", "gte"):
                bound = value + 1 if op == "gt" else value
                gte = bound if gte is None else max(gte, bound)
            else:
                bound = value - 1 if op == "lt" else value
                lte = bound if lte is None else min(lte, bound)
        return gte, lte

    def expand(self) -> list[str]:
        return self.lists.get("expand", [])


def authenticate(state: SimState, authorization: str | None) -> None:
    """Bearer (or Basic with the key as user name) auth, as Stripe accepts."""
    if not authorization:
        raise errors.missing_key()
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            credential = base64.b64decode(credential).decode().partition(":")[0]
        except ValueError:
            credential = ""
    elif scheme.lower() != "bearer":
        raise errors.missing_key()
    if credential.strip() != state.config.api_key:
        raise errors.invalid_key()


def handle(state: SimState, method: str, path: str, query: str, headers: Any) -> Response:
    """Answer one ``/v1`` request (``headers`` is any mapping with ``.get``)."""
    try:
        authenticate(state, headers.get("Authorization"))
        account_id = headers.get("Stripe-Account")
        data = state.account(account_id)
        if data is None:
            raise errors.account_invalid(str(account_id))
        if method != "GET":
            raise errors.unrecognized_url(method, path)
        params = Params.parse(query, state.config.strict_params)
        return Response(200, route(state, data, path, params))
    except StripeError as exc:
        return Response(exc.status, exc.body())


def route(state: SimState, data: AccountData, path: str, params: Params) -> bytes:
    clean = "/" + path.strip("/")
    if clean in SINGLE_PATHS:
        refuse_if_unavailable(state, data, SINGLE_PATHS[clean])
        params.check(frozenset({"expand"}))
        return data.account if SINGLE_PATHS[clean] == "account" else ledger.balance(data)
    for nested in NESTED_ROUTES:
        parent_id = nested.match(clean)
        if parent_id is not None:
            for stream in (nested.table, *CHILD_OF.get((nested.table, nested.field), ())):
                refuse_if_unavailable(state, data, stream, clean)
            return nested_list(data, nested, parent_id, params)
    for kin in per_parent.ROUTES:
        parent_id = kin.match(clean, params)
        if parent_id is not None:
            refuse_if_unavailable(state, data, per_parent.parent_table(kin.child), clean)
            refuse_if_unavailable(state, data, kin.child, clean)
            page, url = per_parent.kin_page(data, kin, parent_id, params, predicate_for)
            return list_body([row.body for row in page.rows], page.has_more, url)
    child = child_retrieve.retrieve(data, clean)
    if child is not None:
        params.check(frozenset({"expand"}))
        return child
    rest = clean.removeprefix("/v1/")
    stream = PLURALS.get(rest)
    if stream is not None:
        refuse_if_unavailable(state, data, stream)
        params.check(PAGING | SYNTHESIS[stream].list_params)
        return list_page(state, data, stream, params, clean)
    plural, _, object_id = rest.rpartition("/")
    stream = PLURALS.get(plural)
    if stream is None or not object_id:
        raise errors.unrecognized_url("GET", path)
    refuse_if_unavailable(state, data, stream)
    params.check(frozenset({"expand"}))
    return retrieve(state, data, stream, object_id, params.expand())


def refuse_if_unavailable(
    state: SimState, data: AccountData, stream: str, path: str | None = None
) -> None:
    """Answer as Stripe does for a table the account (or the key) may not read; a parent
    refused refuses its nested lists too."""
    answer = state.knobs.unavailable.get(stream)
    if answer is not None:
        raise errors.unavailable(answer, path or SPECS[stream].path, data.account_id)


def nested_list(data: AccountData, nested: NestedRoute, parent_id: str, params: Params) -> bytes:
    """A page of a parent's complete nested list (its id in the path or the query), its
    entries filtered by the documented parameters naming an attribute they keep (a
    customer's sources by ``object``)."""
    documented = frozenset(load_shapes()["list_params"].get(nested.template, ()))
    if nested.id_param is None:
        params.check(PAGING | documented)
    else:
        params.check(PAGING | documented | {nested.id_param})
        parent_id = params.scalars.get(nested.id_param, "")
        if not parent_id:
            raise errors.missing_param(nested.id_param)
    rows = data.nested[nested.table, nested.field].get(parent_id)
    if rows is None:
        raise errors.no_such(SPECS[nested.table].object, parent_id, nested.id_param or "id")
    wanted = {name: params.scalars[name] for name in documented & set(params.scalars)}
    if wanted.get("object"):
        rows = [row for row in rows if row.attrs.get("object") == wanted["object"]]
    url = nested.url(parent_id)
    return nested_page(rows, params, url, nested.entry_object.split("|")[0])


def retrieve(
    state: SimState, data: AccountData, stream: str, object_id: str, expand: list[str]
) -> bytes:
    row = data.tables[stream].get(object_id)
    if row is None and stream == "customer" and object_id in data.deleted_customers:
        return deleted_customer(object_id)
    if row is None or (stream == "event" and row.created < state.clock() - EVENT_RETENTION):
        raise errors.no_such(SPECS[stream].object, object_id)
    if not expand:
        return row.body
    return expanded(data, stream, [row.body], expand, prefix="")[0]


def list_page(state: SimState, data: AccountData, stream: str, params: Params, url: str) -> bytes:
    limit = params.limit()
    gte, lte = params.created_bounds()
    if stream == "event":
        oldest = state.clock() - EVENT_RETENTION
        gte = oldest if gte is None else max(gte, oldest)
    after = params.scalars.get("starting_after")
    before = params.scalars.get("ending_before")
    if after and before:
        raise errors.only_one("ending_before", "starting_after")
    try:
        page = data.tables[stream].page(
            gte=gte,
            lte=lte,
            starting_after=after or None,
            ending_before=before or None,
            limit=limit,
            predicate=predicate_for(stream, params),
        )
    except CursorMissing as exc:
        param = "starting_after" if after else "ending_before"
        raise errors.no_such(SPECS[stream].object, str(exc), param) from None
    bodies = [row.body for row in page.rows]
    if params.expand():
        bodies = expanded(data, stream, bodies, params.expand(), prefix="data.")
    return list_body(bodies, page.has_more, url)


def list_body(bodies: list[bytes], has_more: bool, url: str) -> bytes:
    return (
        b'{"object":"list","data":['
        + b",".join(bodies)
        + b'],"has_more":'
        + (b"true" if has_more else b"false")
        + b',"url":"'
        + url.encode()
        + b'"}'
    )


def nested_page(rows: list[Row], params: Params, url: str, resource: str) -> bytes:
    """Pages of an invoice's lines or a subscription's items, in their stored order."""
    limit = params.limit()
    after = params.scalars.get("starting_after")
    before = params.scalars.get("ending_before")
    if after and before:
        raise errors.only_one("ending_before", "starting_after")
    ids = [row.id for row in rows]
    cursor = after or before
    if cursor and cursor not in ids:
        raise errors.no_such(resource, cursor, "starting_after" if after else "ending_before")
    if after:
        start = ids.index(after) + 1
        chosen, has_more = rows[start : start + limit], start + limit < len(rows)
    elif before:
        end = ids.index(before)
        start = max(0, end - limit)
        chosen, has_more = rows[start:end], start > 0
    else:
        chosen, has_more = rows[:limit], limit < len(rows)
    return list_body([row.body for row in chosen], has_more, url)


def predicate_for(stream: str, params: Params) -> Predicate | None:
    """Combine the list filters of ``params`` into one row predicate (None: no filter)."""
    checks: list[Callable[[Row], bool]] = []
    for name in SYNTHESIS[stream].equality_filters:
        if name in params.scalars:
            wanted = as_attr(params.scalars[name])
            checks.append(lambda row, n=name, w=wanted: row.attrs.get(n) == w)
    if stream == "subscription":
        status = params.scalars.get("status")
        if status is None:
            checks.append(lambda row: row.attrs.get("status") != "canceled")
        elif status == "ended":
            checks.append(lambda row: row.attrs.get("status") in ("canceled", "incomplete_expired"))
        elif status != "all":
            checks.append(lambda row: row.attrs.get("status") == status)
    if stream == "event":
        checks.extend(event_type_checks(params))
    if not checks:
        return None
    return lambda row: all(check(row) for check in checks)


def event_type_checks(params: Params) -> list[Callable[[Row], bool]]:
    single = params.scalars.get("type")
    many = params.lists.get("types")
    if single is not None and many is not None:
        raise errors.only_one("type", "types")
    if single is not None:
        if "*" in single:
            return [lambda row: fnmatch.fnmatchcase(row.attrs["type"], single)]
        return [lambda row: row.attrs["type"] == single]
    if many is not None:
        if len(many) > 20 or any("*" in name for name in many):
            raise errors.StripeError(
                400,
                "types takes up to 20 specific event names; use type for one '*' wildcard.",
                param="types",
            )
        wanted = set(many)
        return [lambda row: row.attrs["type"] in wanted]
    return []


def as_attr(value: str) -> Any:
    """Form values arrive as text; booleans filter boolean attributes."""
    return {"true": True, "false": False}.get(value, value)


def expanded(
    data: AccountData, stream: str, bodies: list[bytes], paths: list[str], prefix: str
) -> list[bytes]:
    """Re-encode ``bodies`` with the requested related objects embedded, and the lists
    Stripe includes only when expanded (a quote's ``line_items``: their first page)."""
    expandable = SYNTHESIS[stream].expandable
    allowed = set(resource_shape(SPECS[stream].object)["expandable"]) if expandable else set()
    split: list[list[str]] = []
    for path in paths:
        if not path.startswith(prefix) or path[len(prefix) :].split(".")[0] not in allowed:
            raise errors.not_expandable(path)
        split.append(path[len(prefix) :].split("."))
    includable = INCLUDABLE.get(stream, frozenset())
    out = []
    for body in bodies:
        obj = orjson.loads(body)
        for parts in split:
            if parts[0] in includable:
                obj[parts[0]] = included(data, stream, parts[0], obj["id"])
            else:
                embed(data, obj, parts)
        out.append(encode(obj))
    return out


def embed(data: AccountData, obj: dict[str, Any], parts: list[str]) -> None:
    """Replace the id at ``parts`` with the object it names, recursively for dotted paths."""
    head, rest = parts[0], parts[1:]
    value = obj.get(head)
    if isinstance(value, str):
        stream = ID_PREFIX_STREAM.get(value.split("_", 1)[0])
        row = data.tables[stream].get(value) if stream else None
        if row is not None:
            value = orjson.loads(row.body)
            obj[head] = value
        elif stream == "customer" and value in data.deleted_customers:
            obj[head] = orjson.loads(deleted_customer(value))
    if rest and isinstance(value, dict):
        embed(data, value, rest)
