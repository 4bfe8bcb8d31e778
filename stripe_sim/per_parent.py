"""Children listed once per parent (the registry's ``per_parent_child`` tables): a
customer's payment methods and balance transactions, a setup intent's attempts, a
connected account's persons and capabilities, a metered subscription item's usage
summaries, an automatic payout's balance transactions.

Each parent's rows are kept as a :class:`~stripe_sim.store.Table` of their own in
``AccountData.kin[child][parent_id]`` (newest first, Stripe's order), so a page costs the
same whatever the number of parents, and served at the child's path with the parent's
id in the path or the query. A payout's balance transactions are the very rows of the
account's ledger (``/v1/balance_transactions``): the relation is only the query filter,
the 2023-08-16 balance transaction has no ``payout`` field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from stripe_sim import errors
from stripe_sim.children import remember_removed_as
from stripe_sim.store import CursorMissing, Page, Predicate, Row, Table, encode
from stripe_sim.tables import PER_PARENT, SPECS, SYNTHESIS, ParentParam

if TYPE_CHECKING:
    from stripe_sim.api import Params
    from stripe_sim.dataset import AccountData

PAGING = frozenset({"limit", "starting_after", "ending_before", "expand"})
EMPTY = Table.of(())
KIN_TABLES: tuple[str, ...] = tuple(child for children in PER_PARENT.values() for child in children)
MANUAL_PAYOUT = (
    "Balance transaction history can only be filtered on automatic transfers, not manual."
)


@dataclass(frozen=True)
class KinRoute:
    """Where one per-parent child is listed: its path, and the parent's id in it or in
    the query."""

    child: str
    pattern: re.Pattern[str]
    id_param: str | None

    @classmethod
    def of(cls, child: str) -> KinRoute:
        spec = SPECS[child]
        parent = spec.parent
        assert parent is not None
        pattern = re.escape(spec.path).replace(
            re.escape(f"{{{parent.parameter}}}"), r"(?P<id>[^/]+)"
        )
        in_query = parent.location is ParentParam.QUERY
        return cls(child, re.compile(pattern + "$"), parent.parameter if in_query else None)

    def match(self, path: str, params: Params) -> str | None:
        """The parent id in ``path`` ("" when it comes in the query); None: not this list.
        ``/v1/balance_transactions`` is a payout's list only with ``payout=``."""
        found = self.pattern.match(path)
        if found is None:
            return None
        if self.child == "payoutbalancetransaction" and "payout" not in params.names():
            return None
        return found.groupdict().get("id", "")


ROUTES: tuple[KinRoute, ...] = tuple(KinRoute.of(child) for child in KIN_TABLES)


def column(child: str) -> str:
    parent = SPECS[child].parent
    assert parent is not None
    return parent.column


def parent_table(child: str) -> str:
    parent = SPECS[child].parent
    assert parent is not None
    return parent.table


def store(data: AccountData, child: str, parent_id: str, rows: list[Row]) -> None:
    """Make ``rows`` the complete list of ``child`` under one parent."""
    data.kin[child][parent_id] = Table.of(rows)


def row_of(table: str, obj: dict[str, Any]) -> Row:
    """A row with the attributes its list filters read (``type``...), sorted by its
    creation (a usage summary, which has none, by its period's start)."""
    attrs = {name: obj.get(name) for name in SYNTHESIS[table].filter_attrs}
    created = obj.get("created") or (obj.get("period") or {}).get("start") or 0
    return Row(created, obj["id"], encode(obj), attrs)


def live_parents(data: AccountData, child: str) -> Iterator[str]:
    """The ids of the child's live parents, newest first (subscription items: the items
    of the subscriptions newest first, each subscription's in their order)."""
    table = parent_table(child)
    if table == "subscriptionitem":
        lists = data.nested["subscription", "items"]
        for row in data.tables["subscription"].rows:
            yield from (item.id for item in lists.get(row.id, ()))
        return
    yield from (row.id for row in data.tables[table].rows)


def subscription_item(data: AccountData, item_id: str) -> dict[str, Any] | None:
    for rows in data.nested["subscription", "items"].values():
        for row in rows:
            if row.id == item_id:
                return orjson.loads(row.body)
    return None


def kin_page(
    data: AccountData,
    route: KinRoute,
    parent_id: str,
    params: Params,
    predicate_for: Callable[[str, Params], Predicate | None],
) -> tuple[Page, str]:
    """A page of one parent's children, filtered as Stripe's list filters them, and the
    list's url."""
    child = route.child
    allowed = PAGING | SYNTHESIS[child].list_params
    if route.id_param is not None:
        allowed |= {route.id_param}
        parent_id = params.scalars.get(route.id_param, "")
        if not parent_id:
            raise errors.missing_param(route.id_param)
    params.check(allowed)
    check_parent(data, child, parent_id, route.id_param or "id")
    table = data.kin[child].get(parent_id, EMPTY)
    gte, lte = params.created_bounds() if "created" in allowed else (None, None)
    after = params.scalars.get("starting_after")
    before = params.scalars.get("ending_before")
    if after and before:
        raise errors.only_one("ending_before", "starting_after")
    try:
        page = table.page(
            gte=gte,
            lte=lte,
            starting_after=after or None,
            ending_before=before or None,
            limit=params.limit(),
            predicate=predicate_for(child, params),
        )
    except CursorMissing as exc:
        param = "starting_after" if after else "ending_before"
        raise errors.no_such(SPECS[child].object, str(exc), param) from None
    placeholder = "{" + (SPECS[child].parent.parameter if SPECS[child].parent else "") + "}"
    return page, SPECS[child].path.replace(placeholder, parent_id)


def check_parent(data: AccountData, child: str, parent_id: str, param: str) -> None:
    """404 for an unknown (or deleted) parent; 400 for a manual payout, as Stripe."""
    table = parent_table(child)
    if table == "subscriptionitem":
        if subscription_item(data, parent_id) is None:
            raise errors.no_such("subscription_item", parent_id, param)
        return
    row = data.tables[table].get(parent_id)
    if row is None:
        raise errors.no_such(SPECS[table].object, parent_id, param)
    if child == "payoutbalancetransaction" and not orjson.loads(row.body).get("automatic"):
        raise errors.StripeError(400, MANUAL_PAYOUT, param="payout")


def truth(data: AccountData, child: str) -> tuple[list[str], list[bytes]]:
    """The live rows of a per-parent child: each live parent's list (parents newest
    first), each row with its parent's id in the child's column."""
    name = column(child)
    ids: list[str] = []
    bodies: list[bytes] = []
    lists = data.kin[child]
    for parent_id in live_parents(data, child):
        for row in lists.get(parent_id, EMPTY).rows:
            obj = orjson.loads(row.body)
            obj[name] = parent_id
            ids.append(row.id)
            bodies.append(encode(obj))
    return ids, bodies


def row_count(data: AccountData, child: str) -> int:
    lists = data.kin[child]
    return sum(len(lists.get(parent_id, EMPTY)) for parent_id in live_parents(data, child))


def removed_with_parent(data: AccountData, stream: str, parent_id: str, when: int) -> None:
    """A deleted parent's children go with it (the truth's ``deleted``)."""
    for child in PER_PARENT.get(stream, ()):
        table = data.kin[child].pop(parent_id, None)
        if table is not None and len(table):
            ids = [row.id for row in table.rows]
            remember_removed_as(data, child, column(child), parent_id, ids, when)


def find(data: AccountData, child: str, object_id: str) -> tuple[str, Row] | None:
    """The parent id and row of one child (a scan: retrieving by id is rare)."""
    for parent_id, table in data.kin[child].items():
        row = table.get(object_id)
        if row is not None:
            return parent_id, row
    return None
