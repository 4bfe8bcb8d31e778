"""What the registry says of one Stripe table: how it is read (:class:`ReadMode`), its
parent if it is a child (:class:`Parent`), and everything else in a :class:`TableSpec`.

The registry itself is ``tables.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from urllib.parse import quote


def frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


class ReadMode(StrEnum):
    """How a table's own endpoint is read."""

    CREATED = "created"
    """A list with a ``created`` filter: read window by window, bookmark on ``created``."""
    NEWEST_FIRST = "newest_first"
    """A list without a ``created`` filter, newest first: read down to the bookmark."""
    FULL = "full"
    """A list read whole on every run."""
    SINGLE = "single"
    """One object (``/v1/account``)."""


class ParentParam(StrEnum):
    """Where a child table's request carries its parent's id."""

    PATH = "path"
    """In the path: ``/v1/invoices/{invoice}/lines``."""
    QUERY = "query"
    """In the query: ``/v1/subscription_items?subscription=<id>``."""


class TableKind(StrEnum):
    """What reading a table takes: its read mode, or which kind of child it is."""

    CREATED = "created"
    NEWEST_FIRST = "newest_first"
    FULL = "full"
    SINGLE = "single"
    EMBEDDED_CHILD = "embedded_child"
    """Rows of the parent's embedded list, paged past Stripe's cut from the child's path."""
    PER_PARENT_CHILD = "per_parent_child"
    """Rows listed from the child's path once per parent row."""


@dataclass(frozen=True)
class Parent:
    """The table a child table's rows belong to.

    Attributes:
        table: The parent table's name in the registry.
        parameter: The name the parent's id goes under: the ``{placeholder}`` in the
            child's path, or the query parameter.
        location: Whether ``parameter`` is in the path or the query.
        embedded_field: The parent's field holding the child's rows as a Stripe list
            (``lines`` of an invoice); ``None`` when the rows are read only from the
            child's endpoint, once per parent.
        column: The child record's column holding its parent's id (``invoice``); the
            tap sets it on every row, whether or not Stripe's object has the field.
        only_if: For a child listed per parent: the parent fields and values of the
            parents that have such a list (``automatic: True``: Stripe lists the balance
            transactions of automatic payouts only, and answers 400 for the others).
        refresh_on: For a child listed per parent without events of its own: the parent
            fields whose change (an update event's ``previous_attributes``) means its
            rows changed (a customer's ``balance``); empty means any change does.
    """

    table: str
    parameter: str
    location: ParentParam = ParentParam.PATH
    embedded_field: str | None = None
    column: str = ""
    only_if: Mapping[str, Any] = field(default_factory=frozen)
    refresh_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """How one Stripe table is read.

    Attributes:
        name: Stream name, the lower-cased Stripe class name (``balancetransaction``).
        path: List endpoint (``/v1/charges``), or the single object's path (``/v1/account``).
            A child's path holds ``{<parameter>}`` when its parent's id goes in the path.
        read: How the table's endpoint is read (:class:`ReadMode`).
        object: The ``object`` field of the table's records (``balance_transaction``);
            empty means the same as ``name``.
        key_properties: The record's key.
        parent: The parent of a child table, ``None`` for a top-level table.
        filters: Query parameters every list request must carry (``status=all``: without
            it Stripe leaves cancelled subscriptions out).
        expand: Expansions requested on every request (``expand[]=data.<field>`` on lists).
        event_types: Stripe event types whose ``data.object`` is an object of this table
            (``*`` matches any suffix). A table with event types captures updates and
            deletes through ``/v1/events`` (see ``capture.py``).
        deletable: Stripe deletes objects of this table (they leave the lists and a
            ``*.deleted`` event is their tombstone). Subscriptions are not: their
            ``customer.subscription.deleted`` means cancelled, and they stay.
        nested_lists: Fields holding a Stripe list object that Stripe cuts short, mapped to
            the path template that pages the complete list; ``{id}`` is the parent's id.
        created_field: The field holding the object's creation time, which the list's
            ``created`` filter selects on (``date`` for invoice items).
        snapshot_field: For a single object without an id (``balance``): the field the
            tap stamps each run's copy with (Stripe's time, whole seconds), which keys it;
            the table keeps one row per run.
        child_expand: Nested lists the parent's list is asked to expand only for the
            children made of them (a customer's ``sources`` and ``tax_ids``); they are
            left out of the parent's own rows, whose events never carry them.
        delete_event_types: Event types besides ``*.deleted`` (of a deletable table) that
            take an object out of the table (``payment_method.detached``).
        retrieve: Path template retrieving one object, its ``{fields}`` taken from the
            object (``/v1/customers/{customer}/tax_ids/{id}``); ``<path>/{id}`` when empty.
        platform_only: The platform's own table (connected accounts, application fees,
            transfers): read once, from the platform, in a run of many accounts.

    ``replication_key`` and ``single_object`` follow from ``read``.
    """

    name: str
    path: str
    read: ReadMode = ReadMode.CREATED
    object: str = ""
    key_properties: tuple[str, ...] = ("id",)
    parent: Parent | None = None
    filters: Mapping[str, str] = field(default_factory=frozen)
    expand: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    deletable: bool = False
    nested_lists: Mapping[str, str] = field(default_factory=frozen)
    created_field: str = "created"
    snapshot_field: str | None = None
    child_expand: tuple[str, ...] = ()
    delete_event_types: tuple[str, ...] = ()
    retrieve: str = ""
    platform_only: bool = False

    def __post_init__(self) -> None:
        if not self.object:
            object.__setattr__(self, "object", self.name)
        parent = self.parent
        placeholders = set(re.findall(r"\{(\w+)\}", self.path))
        if parent is not None and parent.location is ParentParam.PATH:
            if placeholders != {parent.parameter}:
                msg = f"table '{self.name}': path {self.path} must hold {{{parent.parameter}}}"
                raise ValueError(msg)
        elif placeholders:
            msg = f"table '{self.name}': path {self.path} has a placeholder but no parent in it"
            raise ValueError(msg)

    @property
    def replication_key(self) -> str | None:
        """The creation-time field for tables read incrementally; ``None`` for full-table
        reads and for children, which are read with their parent."""
        if self.parent is None and self.read in (ReadMode.CREATED, ReadMode.NEWEST_FIRST):
            return self.created_field
        return None

    def is_delete_event(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` takes its object out of the table."""
        if event_type in self.delete_event_types:
            return True
        return self.deletable and event_type.endswith(".deleted")

    def retrieve_path(self, obj: Mapping[str, Any]) -> str:
        """The path retrieving ``obj`` (its fields fill the template, each quoted)."""
        template = self.retrieve or f"{self.path}/{{id}}"
        names = re.findall(r"\{(\w+)\}", template)
        return template.format(**{name: quote(str(obj.get(name, "")), safe="") for name in names})

    @property
    def single_object(self) -> bool:
        """The path returns one object rather than a list."""
        return self.read is ReadMode.SINGLE

    @property
    def kind(self) -> TableKind:
        """What reading the table takes."""
        if self.parent is None:
            return TableKind(self.read.value)
        if self.parent.embedded_field is not None:
            return TableKind.EMBEDDED_CHILD
        return TableKind.PER_PARENT_CHILD
