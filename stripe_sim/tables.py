"""The tables the simulator serves: the project's registry, ``tap_stripe.tables.TABLES``.

The registry says which tables exist and everything about them Stripe's API shows to a
client: paths, required filters, event types, nested lists, deletability and object
names. What only a simulator knows, how the objects of each table are synthesized and
filtered, is derived for each table from its entry and ``shapes.json`` (the object's
shape, its id prefix, the list endpoint's documented parameters): a table added to the
registry is served with no code of its own. :data:`TUNED` overrides that for the tables
whose data is shaped by hand in ``dataset.py`` (statuses, amounts, ids that join). A
child table (the rows of its parent's embedded list, :data:`CHILDREN`) is served through
its parent's nested-list endpoint and its data is made with its parent
(``children.py``). A registry table the simulator cannot serve stops it at import, naming
it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType

from tap_stripe.tables import TABLES, ParentParam, TableKind, TableSpec

from stripe_sim.synth import load_shapes


@dataclass(frozen=True)
class Synthesis:
    """How the simulator makes and filters one table's objects.

    Attributes:
        counted: Its volume is a knob (``--count TABLE=N``); otherwise it follows from
            other tables (balance transactions from charges, events from everything).
        id_prefix: Prefix of its ids, so ``expand[]`` finds the object an id names.
        list_params: Stripe's documented list parameters besides paging; others are 400.
        equality_filters: The list parameters that filter by an equal attribute.
        filter_attrs: Attributes kept beside each encoded object, for the filters.
        expandable: ``expand[]`` works on its fields (not on events, as in Stripe's lists).
        nested_objects: Nested-list field -> ``object`` of its entries, for error messages.
    """

    counted: bool = True
    id_prefix: str | None = None
    list_params: frozenset[str] = frozenset({"created"})
    equality_filters: tuple[str, ...] = ()
    filter_attrs: tuple[str, ...] = ()
    expandable: bool = True
    nested_objects: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _constant(shape: dict) -> str:
    """The one value of a constant string shape (an enum of one member, or a const)."""
    value = shape["v"]
    return value[0] if isinstance(value, list) else value


def _entry_object(shape: dict) -> str | None:
    """The ``object`` of a list shape's entries; ``a|b`` for a list of several resources
    (a customer's ``sources``)."""
    if shape.get("o"):
        return "|".join(shape["o"])
    entry = shape.get("i") or {}
    if "object" in entry.get("f", {}):
        return _constant(entry["f"]["object"])
    return None


def nested_objects(resource: str) -> MappingProxyType[str, str]:
    """List field -> ``object`` of its entries, for a resource's lists (includable ones
    too)."""
    shape = load_shapes()["resources"][resource]
    lists = {**shape["fields"], **shape.get("includable", {})}
    return MappingProxyType(
        {
            name: entry
            for name, field_shape in lists.items()
            if field_shape.get("t") == "list" and (entry := _entry_object(field_shape))
        }
    )


# The tables shaped by hand, in the order objects are generated and mutated: each refers
# only to earlier ones. Tables derived from their shape come after them, in registry order.
TUNED: MappingProxyType[str, Synthesis] = MappingProxyType(
    {
        "account": Synthesis(counted=False, list_params=frozenset()),
        "product": Synthesis(
            id_prefix="prod",
            list_params=frozenset({"active", "created", "ids", "shippable", "url"}),
            equality_filters=("active", "shippable"),
            filter_attrs=("active", "shippable"),
        ),
        "price": Synthesis(
            id_prefix="price",
            list_params=frozenset(
                {"active", "created", "currency", "lookup_keys", "product", "recurring", "type"}
            ),
            equality_filters=("active", "currency", "product", "type"),
            filter_attrs=("active", "product", "type", "currency"),
        ),
        "coupon": Synthesis(),
        "customer": Synthesis(
            id_prefix="cus",
            list_params=frozenset({"created", "email", "test_clock"}),
            equality_filters=("email",),
            filter_attrs=("email",),
            nested_objects=nested_objects("customer"),
        ),
        "subscription": Synthesis(
            id_prefix="sub",
            list_params=frozenset(
                {
                    "automatic_tax",
                    "collection_method",
                    "created",
                    "current_period_end",
                    "current_period_start",
                    "customer",
                    "price",
                    "status",
                    "test_clock",
                }
            ),
            equality_filters=("collection_method", "customer"),
            filter_attrs=("status", "customer", "collection_method"),
            nested_objects=MappingProxyType({"items": "subscription_item"}),
        ),
        "invoice": Synthesis(
            id_prefix="in",
            list_params=frozenset(
                {"created", "collection_method", "customer", "due_date", "status", "subscription"}
            ),
            equality_filters=("collection_method", "customer", "status", "subscription"),
            filter_attrs=("customer", "subscription", "status", "collection_method"),
            nested_objects=MappingProxyType({"lines": "line_item"}),
        ),
        "charge": Synthesis(
            id_prefix="ch",
            list_params=frozenset({"created", "customer", "payment_intent", "transfer_group"}),
            equality_filters=("customer",),
            filter_attrs=("customer", "status"),
        ),
        "balancetransaction": Synthesis(
            counted=False,
            id_prefix="txn",
            list_params=frozenset({"created", "currency", "payout", "source", "type"}),
            equality_filters=("currency", "source", "type"),
            # net and status: the balance sums them.
            filter_attrs=("type", "source", "currency", "net", "status"),
        ),
        "event": Synthesis(
            counted=False,
            list_params=frozenset({"created", "delivery_success", "type", "types"}),
            filter_attrs=("type",),
            expandable=False,
        ),
    }
)

# The kinds served as a top-level list (``/v1/<plural>``), newest first.
LIST_KINDS = frozenset({TableKind.CREATED, TableKind.NEWEST_FIRST, TableKind.FULL})
# The kinds of table the simulator serves today: a child of an embedded list is served
# through its parent's nested-list endpoint, a child listed per parent at its own path
# once per parent (``per_parent.py``), neither as a list of its own.
SERVED_KINDS = LIST_KINDS | {
    TableKind.SINGLE,
    TableKind.EMBEDDED_CHILD,
    TableKind.PER_PARENT_CHILD,
}
# Shape kinds a list parameter can filter on by equality.
_EQUALITY_KINDS = frozenset({"str", "bool"})


def derived_synthesis(spec: TableSpec) -> Synthesis:
    """How to make and filter a table's objects, from its entry and its object's shape.

    Its id prefix is the shape's; its list parameters are the ones the spec documents for
    its endpoint; those naming a top-level string or boolean field, or a reference to
    another object (its id), filter by equality.
    """
    shapes = load_shapes()
    fields = shapes["resources"][spec.object]["fields"]
    id_shape = fields.get("id", {})
    params = frozenset(shapes["list_params"].get(spec.path, ()))
    equality = tuple(
        sorted(
            name
            for name in params
            if name != "created"
            and (fields.get(name, {}).get("t") in _EQUALITY_KINDS or "x" in fields.get(name, {}))
        )
    )
    return Synthesis(
        counted=spec.kind in LIST_KINDS,
        id_prefix=id_shape.get("prefix") if id_shape.get("g") == "id" else None,
        list_params=params,
        equality_filters=equality,
        filter_attrs=equality,
        nested_objects=nested_objects(spec.object),
    )


def child_synthesis(spec: TableSpec) -> Synthesis:
    """A child's rows are made with their parent and served only through its endpoint:
    no count of their own, no id to expand, the endpoint's documented parameters (those
    naming a top-level string field of its object filter by equality)."""
    params = frozenset(load_shapes()["list_params"].get(spec.path, ()))
    if spec.parent is not None and spec.parent.location is ParentParam.QUERY:
        params -= {spec.parent.parameter}
    fields: dict = {}
    for name in objects_of(spec):
        fields.update(load_shapes()["resources"][name]["fields"])
    equality = tuple(
        sorted(n for n in params if n != "created" and fields.get(n, {}).get("t") == "str")
    )
    return Synthesis(
        counted=False,
        list_params=params,
        equality_filters=equality,
        filter_attrs=equality,
        expandable=False,
    )


def objects_of(spec: TableSpec) -> tuple[str, ...]:
    """The Stripe objects a table's rows are (``bank_account|card``: either)."""
    return tuple(spec.object.split("|"))


def endpoint_template(spec: TableSpec) -> str:
    """The child's endpoint as its parent's nested-list template (``{id}``: the parent)."""
    parent = spec.parent
    assert parent is not None
    if parent.location is ParentParam.PATH:
        return spec.path.replace(f"{{{parent.parameter}}}", "{id}")
    return f"{spec.path}?{parent.parameter}={{id}}"


def child_problems(spec: TableSpec, by_name: Mapping[str, TableSpec]) -> list[str]:
    """Why a child table cannot be served through its parent, if it cannot."""
    parent = spec.parent
    if parent is None or spec.kind is not TableKind.EMBEDDED_CHILD:
        return []
    owner = by_name.get(parent.table)
    if owner is None or owner.kind not in LIST_KINDS:
        return [f"table '{spec.name}': its parent '{parent.table}' is not a served list"]
    template = owner.nested_lists.get(str(parent.embedded_field))
    if template != endpoint_template(spec):
        return [
            f"table '{spec.name}': its parent '{parent.table}' must page "
            f"'{parent.embedded_field}' from {endpoint_template(spec)}, not {template}"
        ]
    return []


def check_registry(tables: tuple[TableSpec, ...]) -> dict[str, Synthesis]:
    """Every table's synthesis: the tuned ones first (in their order), then the derived
    ones and the children in registry order. Refuses a registry the simulator cannot
    serve, naming every table it cannot."""
    names = {spec.name for spec in tables}
    by_name = {spec.name: spec for spec in tables}
    resources = load_shapes()["resources"]
    problems = [
        f"table '{spec.name}': object '{spec.object}' has no shape in stripe_sim/shapes.json "
        "(run stripe_sim/scripts/derive_shapes.py)"
        for spec in tables
        if spec.name not in TUNED and not set(objects_of(spec)) <= set(resources)
    ]
    problems += [
        f"table '{spec.name}' is of kind '{spec.kind}', which the simulator does not serve"
        for spec in tables
        if spec.kind not in SERVED_KINDS
    ]
    problems += [problem for spec in tables for problem in child_problems(spec, by_name)]
    problems += [
        f"stripe_sim/tables.py tunes '{name}', which is not in the registry"
        for name in TUNED
        if name not in names
    ]
    if problems:
        raise RuntimeError("stripe_sim cannot serve the registry: " + "; ".join(problems))
    syntheses = {
        **TUNED,
        **{
            spec.name: child_synthesis(spec) if spec.parent else derived_synthesis(spec)
            for spec in tables
            if spec.name not in TUNED
        },
    }
    for spec in tables:
        nested = syntheses[spec.name].nested_objects
        missing = set(spec.nested_lists) - set(nested)
        problems += [f"table '{spec.name}': nested list '{f}' has no object" for f in missing]
        entry = nested_entry(syntheses, spec)
        if spec.parent and entry is not None and not set(objects_of(spec)) <= set(entry.split("|")):
            problems.append(
                f"table '{spec.name}': its object '{spec.object}' is not the object of "
                f"'{spec.parent.table}.{spec.parent.embedded_field}' "
                f"('{nested_entry(syntheses, spec)}')"
            )
    if problems:
        raise RuntimeError("stripe_sim cannot serve the registry: " + "; ".join(problems))
    return syntheses


def nested_entry(syntheses: Mapping[str, Synthesis], spec: TableSpec) -> str | None:
    """The ``object`` of the entries of the parent's list a child's rows come from."""
    parent = spec.parent
    if parent is None or parent.table not in syntheses:
        return None
    return syntheses[parent.table].nested_objects.get(str(parent.embedded_field))


SYNTHESIS: MappingProxyType[str, Synthesis] = MappingProxyType(check_registry(TABLES))
SPECS: MappingProxyType[str, TableSpec] = MappingProxyType(
    {name: spec for name in SYNTHESIS for spec in TABLES if spec.name == name}
)
# The tables whose objects are made from their shape alone (``Generator.derived``).
DERIVED: tuple[str, ...] = tuple(
    name for name in SYNTHESIS if name not in TUNED and SPECS[name].kind in LIST_KINDS
)


def _children_of(kind: TableKind) -> MappingProxyType[str, tuple[str, ...]]:
    """Parent table -> its child tables of ``kind``, in registry order."""
    found: dict[str, tuple[str, ...]] = {}
    for name, spec in SPECS.items():
        if spec.parent is not None and spec.kind is kind:
            found[spec.parent.table] = (*found.get(spec.parent.table, ()), name)
    return MappingProxyType(found)


# Parent table -> its child tables made of the rows of its embedded lists.
CHILDREN = _children_of(TableKind.EMBEDDED_CHILD)
# Parent table -> its child tables listed once per parent (``per_parent.py``).
PER_PARENT = _children_of(TableKind.PER_PARENT_CHILD)
# Table -> its nested lists Stripe leaves out of the object unless expanded (``includable``
# in shapes.json): a quote's ``line_items``.
INCLUDABLE: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        name: frozenset(spec.nested_lists)
        & set(load_shapes()["resources"][spec.object].get("includable", {}))
        for name, spec in SPECS.items()
        if spec.nested_lists
    }
)
STREAMS: tuple[str, ...] = tuple(sorted(SPECS))
# ``/v1/<plural>`` of every list table -> its name.
PLURALS: MappingProxyType[str, str] = MappingProxyType(
    {
        spec.path.removeprefix("/v1/"): name
        for name, spec in SPECS.items()
        if spec.kind in LIST_KINDS
    }
)
COUNTED: tuple[str, ...] = tuple(name for name, synthesis in SYNTHESIS.items() if synthesis.counted)
# Id prefix -> the table expanding such an id; the first table wins (plans have price ids).
ID_PREFIX_STREAM: MappingProxyType[str, str] = MappingProxyType(
    {s.id_prefix: name for name, s in reversed(SYNTHESIS.items()) if s.id_prefix}
)


# The event types Stripe has at the pinned API version: the simulator sends no other.
STRIPE_EVENT_TYPES: frozenset[str] = frozenset(load_shapes()["event_types"])


def has_event(stream: str, event_type: str) -> bool:
    """``event_type`` is an event type of Stripe's matching the table's in the registry."""
    return event_type in STRIPE_EVENT_TYPES and any(
        fnmatchcase(event_type, pattern) for pattern in SPECS[stream].event_types
    )


def event_for(stream: str, action: str) -> str | None:
    """Stripe's event type for ``action`` (created, updated, deleted) on a table's object.

    ``<prefix>.<action>`` for a prefix of the table's event types (``refund.created``,
    ``charge.refund.updated``); for an update without one, the table's first other
    event (``application_fee.refunded``). None when Stripe has no such event.
    """
    prefixes = dict.fromkeys(pattern.rsplit(".", 1)[0] for pattern in SPECS[stream].event_types)
    for prefix in prefixes:
        if has_event(stream, f"{prefix}.{action}"):
            return f"{prefix}.{action}"
    if action != "updated":
        return None
    others = (
        name
        for name in sorted(STRIPE_EVENT_TYPES)
        if has_event(stream, name) and not name.endswith((".created", ".deleted"))
    )
    return next(others, None)


# Tables read whole every run that Stripe lets change, and how: no event the tap reads
# reports it, its next read does. Shipping rates and payment links are archived, never
# deleted; a connected account can be; tax codes are Stripe's own catalogue.
READ_WHOLE_CHANGES: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "shippingrate": frozenset({"create", "update"}),
        "paymentlink": frozenset({"create", "update"}),
        "connectedaccount": frozenset({"create", "update", "delete"}),
    }
)
# Tables whose objects change between runs (those with event types, and those above), in
# generation order; child tables change through ``child_mutation.py`` and
# ``kin_mutation.py``.
MUTABLE: tuple[str, ...] = tuple(
    name
    for name in SYNTHESIS
    if (SPECS[name].event_types or name in READ_WHOLE_CHANGES) and SPECS[name].parent is None
)
# Tables whose objects a mutation can update: Stripe reports the change with an event.
UPDATABLE: frozenset[str] = frozenset(
    name
    for name in MUTABLE
    if name != "event"
    and (event_for(name, "updated") or "update" in READ_WHOLE_CHANGES.get(name, ()))
)
# Tables a mutation can delete from: Stripe deletes their objects, or (subscriptions)
# a delete is a cancellation with its ``.deleted`` event.
DELETABLE: frozenset[str] = frozenset(
    name
    for name in MUTABLE
    if SPECS[name].deletable
    or event_for(name, "deleted")
    or "delete" in READ_WHOLE_CHANGES.get(name, ())
)
