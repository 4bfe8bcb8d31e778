"""The rows of the registry's child tables: each parent's complete nested list, the first
page of it that Stripe embeds in the parent, and the truth of a child table.

A parent's nested list is kept whole in ``AccountData.nested`` and served, paged, at the
child's endpoint; the parent carries its first page (10 entries and ``has_more``), except
a list Stripe includes only when expanded (a quote's ``line_items``,
:data:`~stripe_sim.tables.INCLUDABLE`), which the stored parent leaves out. Children
removed by a mutation, or with their parent, are remembered with the time of removal so
that a test can check the warehouse's tombstones against them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from stripe_sim.store import Row, encode
from stripe_sim.tables import CHILDREN, INCLUDABLE, SPECS, objects_of

if TYPE_CHECKING:
    from stripe_sim.dataset import AccountData, Generator, Pool

NESTED_PAGE = 10
# Child tables Stripe never leaves empty: a payment link sells at least one line item.
MIN_ENTRIES = {"paymentlinklineitem": 1}
# Parent table -> the entries' amount field and the parent's fields holding their sum.
SUMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "invoice": (
        "amount",
        (
            "subtotal",
            "subtotal_excluding_tax",
            "total",
            "total_excluding_tax",
            "amount_due",
            "amount_remaining",
        ),
    ),
    "creditnote": (
        "amount",
        ("amount", "subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax"),
    ),
    "quote": ("amount_total", ("amount_subtotal", "amount_total")),
    "checkoutsession": ("amount_total", ("amount_subtotal", "amount_total")),
    "transfer": ("amount", ("amount_reversed",)),
    "applicationfee": ("amount", ("amount_refunded",)),
}
# Parent table -> its flag that all of its amount went back, and the field summing it.
RETURNED = {
    "transfer": ("reversed", "amount_reversed"),
    "applicationfee": ("refunded", "amount_refunded"),
}


def link(child: str) -> tuple[str, str, str]:
    """A child table's parent table, the parent's list field, and the child's column that
    holds the parent's id."""
    parent = SPECS[child].parent
    assert parent is not None and parent.embedded_field is not None
    return parent.table, parent.embedded_field, parent.column


# (parent table, list field) -> the child tables made of that list's entries (a
# customer's ``sources``: its cards and its bank accounts).
CHILD_OF: dict[tuple[str, str], tuple[str, ...]] = {}
for _names in CHILDREN.values():
    for _name in _names:
        CHILD_OF[link(_name)[:2]] = (*CHILD_OF.get(link(_name)[:2], ()), _name)


def of_child(child: str, rows: list[Row]) -> list[Row]:
    """The entries of a nested list that are rows of ``child`` (by their ``object``)."""
    objects = objects_of(SPECS[child])
    return [row for row in rows if row.attrs.get("object") in objects]


def listing(url: str, page: list[Any], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def nest(
    data: AccountData,
    stream: str,
    list_field: str,
    parent_id: str,
    created: int,
    entries: list[dict[str, Any]],
) -> dict[str, Any]:
    """Keep a parent's complete nested list for its endpoint; return what Stripe embeds in
    the parent: the list's first page."""
    data.nested[stream, list_field][parent_id] = [
        Row(created, entry["id"], encode(entry), {"object": entry.get("object")})
        for entry in entries
    ]
    url = SPECS[stream].nested_lists[list_field].format(id=parent_id)
    return listing(url, entries[:NESTED_PAGE], len(entries) > NESTED_PAGE)


def included(data: AccountData, stream: str, list_field: str, parent_id: str) -> dict[str, Any]:
    """The first page of a list Stripe includes only when expanded, as it embeds it."""
    rows = data.nested[stream, list_field].get(parent_id, [])
    page = [orjson.loads(row.body) for row in rows[:NESTED_PAGE]]
    url = SPECS[stream].nested_lists[list_field].format(id=parent_id)
    return listing(url, page, len(rows) > NESTED_PAGE)


def apply(
    data: AccountData,
    stream: str,
    list_field: str,
    obj: dict[str, Any],
    entries: list[dict[str, Any]],
    created: int,
) -> dict[str, Any]:
    """Make ``entries`` the complete list ``list_field`` of the parent ``obj``: kept for its
    endpoint, its first page embedded (unless Stripe includes it only when expanded), the
    sums it sets updated. Returns the previous values of the parent's fields that
    changed, as Stripe's ``previous_attributes`` has them."""
    previous: dict[str, Any] = {}
    page = nest(data, stream, list_field, obj["id"], created, entries)
    if list_field not in INCLUDABLE[stream]:
        if list_field in obj:
            previous[list_field] = obj[list_field]
        obj[list_field] = page
    rule = SUMS.get(stream)
    if rule is None:
        return previous
    amount_field, targets = rule
    total = sum(entry.get(amount_field) or 0 for entry in entries)
    changes = {name: total for name in targets if name in obj}
    flag = RETURNED.get(stream)
    if flag is not None and flag[0] in obj:
        changes[flag[0]] = total >= obj["amount"] > 0
    previous.update({name: obj[name] for name, value in changes.items() if obj[name] != value})
    obj.update(changes)
    return previous


def remaining(stream: str, obj: dict[str, Any]) -> int:
    """What is left to reverse or refund of a transfer or an application fee."""
    return obj["amount"] - (obj.get(RETURNED[stream][1]) or 0)


def remember_removed(
    data: AccountData, child: str, parent_id: str, child_ids: list[str], when: int
) -> None:
    """Note children that left their parent's list (the truth's ``deleted``)."""
    remember_removed_as(data, child, link(child)[2], parent_id, child_ids, when)


def remember_removed_as(
    data: AccountData, child: str, column: str, parent_id: str, child_ids: list[str], when: int
) -> None:
    """Note rows of ``child`` (its parent's id in ``column``) that left their parent."""
    data.removed.setdefault(child, []).extend(
        {"id": child_id, column: parent_id, "removed_at": when} for child_id in child_ids
    )


def removed_with_parent(
    data: AccountData, stream: str, list_field: str, parent_id: str, when: int
) -> None:
    """A deleted parent's list goes with it: its entries count as removed children."""
    rows = data.nested[stream, list_field].pop(parent_id, None) or []
    for child in CHILD_OF.get((stream, list_field), ()):
        gone = [row.id for row in of_child(child, rows)]
        if gone:
            remember_removed(data, child, parent_id, gone, when)


def row_count(data: AccountData, child: str) -> int:
    """How many live rows a child table has."""
    parent_table, list_field, _ = link(child)
    lists = data.nested[parent_table, list_field].values()
    return sum(len(of_child(child, rows)) for rows in lists)


def truth(data: AccountData, child: str) -> tuple[list[str], list[bytes]]:
    """The live rows of a child table: the entries of its live parents' lists (parents
    newest first, entries in list order), each with its parent's id in the child's
    parent column (added where Stripe's object has no such field)."""
    parent_table, list_field, column = link(child)
    lists = data.nested[parent_table, list_field]
    ids: list[str] = []
    bodies: list[bytes] = []
    for row in data.tables[parent_table].rows:
        for entry in of_child(child, lists.get(row.id, [])):
            obj = orjson.loads(entry.body)
            if obj.get(column) != row.id:
                obj[column] = row.id
                body = encode(obj)
            else:
                body = entry.body
            ids.append(entry.id)
            bodies.append(body)
    return ids, bodies


class ChildMaker:
    """Makes the children of one generator's parents made from their shape alone (transfer
    reversals, quote line items...), and new ones for mutations."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.parents: Counter[str] = Counter()

    def volume(self, child: str) -> int:
        """How many children the next parent gets: every 16th 11-25 (so paging past the
        cut of 10 is exercised), every 8th none (or the fewest Stripe allows), the others
        1-3. Counting parents rather than drawing makes even a small table hold some of
        each."""
        index = self.parents[child]
        self.parents[child] += 1
        if index % 16 == 5:
            return self.gen.rng.randrange(11, 26)
        if index % 8 == 3:
            return MIN_ENTRIES.get(child, 0)
        return self.gen.rng.randrange(1, 4)

    def attach(
        self,
        data: AccountData,
        stream: str,
        obj: dict[str, Any],
        created: int,
        pool_of: Callable[[str], Pool | None],
    ) -> None:
        """Give a new parent its children, made at its creation (the children sharing one
        list, a customer's cards and bank accounts, in it together)."""
        lists: dict[str, list[dict[str, Any]]] = {}
        for child in CHILDREN.get(stream, ()):
            n = self.volume(child)
            entries = [self.entry(child, obj, created, pool_of) for _ in range(n)]
            if stream in RETURNED:
                for entry in entries:  # together at most half of the amount
                    entry["amount"] = max(1, obj["amount"] // (2 * n))
            lists.setdefault(link(child)[1], []).extend(entries)
        for list_field, entries in lists.items():
            apply(data, stream, list_field, obj, entries, created)

    def entry(
        self,
        child: str,
        parent: dict[str, Any],
        created: int,
        pool_of: Callable[[str], Pool | None],
    ) -> dict[str, Any]:
        """One child from its object's shape (one of its objects, for a table of several:
        an external account is a bank account or a card), naming its parent where the
        object has a reference to it (``transfer_reversal.transfer``, ``card.customer``;
        an external account's ``account``); a line item sells a price."""
        spec = SPECS[child]
        objects = objects_of(spec)
        factory = self.gen.factory(
            objects[0] if len(objects) == 1 else self.gen.rng.choice(objects)
        )
        parent_object = SPECS[link(child)[0]].object
        fixed = {
            name: parent["id"]
            for name, shape in factory.fields.items()
            if parent_object in shape.get("x", ())
        }
        if child == "externalaccount":
            fixed["account"] = parent["id"]
        if spec.object == "item":
            fixed.update(self.item_fields(created, pool_of("price")))
        obj = factory.build(created, fixed=fixed)
        if "created" not in factory.fields:
            del obj["created"]
        return obj

    def item_fields(self, created: int, prices: Pool | None) -> dict[str, Any]:
        """A line item (``item``) of an earlier price (a whole price object, as embedded)."""
        gen = self.gen
        price = gen.pick_before(prices, created) if prices else None
        quantity = gen.rng.randrange(1, 4)
        amount = (price["unit_amount"] if price else gen.synth.money()) * quantity
        return {
            "price": price,
            "quantity": quantity,
            "description": gen.synth.words(2).title(),
            "amount_subtotal": amount,
            "amount_total": amount,
            "amount_discount": 0,
            "amount_tax": 0,
        }
