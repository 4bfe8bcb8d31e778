"""The nested-list endpoints, from the registry's ``nested_lists`` path templates.

A template holds the parent's id as ``{id}``, either in the path
(``/v1/invoices/{id}/lines``) or as a query parameter
(``/v1/subscription_items?subscription={id}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stripe_sim.tables import SPECS, SYNTHESIS


@dataclass(frozen=True)
class NestedRoute:
    """One nested list: which table and field it completes, and how its URL reads."""

    table: str
    field: str
    template: str
    pattern: re.Pattern[str]
    id_param: str | None
    entry_object: str

    @classmethod
    def of(cls, table: str, field: str, template: str) -> NestedRoute:
        path, _, query = template.partition("?")
        id_param = query.partition("=")[0] or None
        pattern = re.escape(path).replace(re.escape("{id}"), r"(?P<id>[^/]+)")
        entry = SYNTHESIS[table].nested_objects[field]
        return cls(table, field, template, re.compile(pattern + "$"), id_param, entry)

    def match(self, path: str) -> str | None:
        """The parent id in ``path`` ("" when it comes in the query); None: another path."""
        found = self.pattern.match(path)
        if found is None:
            return None
        return found.groupdict().get("id", "")

    def url(self, parent_id: str) -> str:
        return self.template.format(id=parent_id)


NESTED_ROUTES: tuple[NestedRoute, ...] = tuple(
    NestedRoute.of(name, field, template)
    for name, spec in SPECS.items()
    for field, template in spec.nested_lists.items()
)
