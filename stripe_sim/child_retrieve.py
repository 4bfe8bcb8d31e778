"""Retrieving one child by id, at the registry's ``retrieve`` path
(``/v1/customers/{customer}/sources/{id}``, ``/v1/payment_methods/{id}``): what the tap
asks for when an event's object cannot be trusted. A removed child answers 404, except a
detached payment method, which Stripe keeps (its ``customer`` null).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stripe_sim import errors, per_parent
from stripe_sim.children import of_child
from stripe_sim.tables import SPECS, TableKind, objects_of

if TYPE_CHECKING:
    from stripe_sim.dataset import AccountData


@dataclass(frozen=True)
class RetrieveRoute:
    child: str
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, child: str) -> RetrieveRoute:
        template = SPECS[child].retrieve
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        return cls(child, re.compile(pattern + "$"))


ROUTES: tuple[RetrieveRoute, ...] = tuple(
    RetrieveRoute.of(name) for name, spec in SPECS.items() if spec.parent and spec.retrieve
)


def retrieve(data: AccountData, path: str) -> bytes | None:
    """The child ``path`` names, or None when no child route matches it (404 for an
    unknown id; a customer's source is a card or a bank account, two routes alike)."""
    missing: tuple[str, str] | None = None
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        groups = found.groupdict()
        body = lookup(data, route.child, groups)
        if body is not None:
            return body
        missing = missing or (objects_of(SPECS[route.child])[0], groups["id"])
    if missing is not None:
        raise errors.no_such(*missing)
    return None


def lookup(data: AccountData, child: str, groups: dict[str, str]) -> bytes | None:
    spec = SPECS[child]
    parent = spec.parent
    assert parent is not None
    object_id, parent_id = groups["id"], groups.get(parent.column)
    if spec.kind is TableKind.EMBEDDED_CHILD:
        lists = data.nested[parent.table, str(parent.embedded_field)]
        candidates = [lists.get(parent_id, [])] if parent_id else list(lists.values())
        for rows in candidates:
            for row in of_child(child, rows):
                if row.id == object_id:
                    return row.body
        return None
    if parent_id:
        row = data.kin[child].get(parent_id, per_parent.EMPTY).get(object_id)
        return row.body if row else None
    found = per_parent.find(data, child, object_id)
    if found is not None:
        return found[1].body
    return data.detached.get(object_id)
