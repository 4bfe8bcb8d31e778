"""A table read for one account of the run: the stream's copy for it, its state entry,
and the ACTIVATE_VERSION that retires only that account's rows."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from singer_sdk.singerlib import ActivateVersionMessage

from tap_stripe.accounts import ACCOUNT_COLUMN, Account
from tap_stripe.progress import UNFINISHED_VERSION, WRITTEN_TABLES, ReadPlan
from tap_stripe.relisting import Relisting
from tap_stripe.state import TIMES, inherit_one_account_state
from tap_stripe.table_spec import TableKind

if TYPE_CHECKING:
    from tap_stripe.run import Run


class PerAccount:
    """What an SDK stream of a Stripe table (``streams.StripeStream``) does per account.

    The SDK builds one stream per table; a run of many accounts reads each table once per
    account with a copy of that stream (:meth:`for_account`), bound to the account.
    """

    account: Account | None
    child_streams: list[Any]
    _run: Any
    _prefetched: Any

    def for_account(self, account: Account, run: Run) -> Self:
        """This table (and its children) read from ``account`` in ``run``: a copy sharing
        the SDK's settings (catalog selection, stream maps, schema), with the account's
        own state entry, requests and records."""
        copied = copy.copy(self)
        copied.account = account
        copied._run = lambda: run
        copied._prefetched = None
        copied.child_streams = []
        for child in self.child_streams:
            assert isinstance(child, PerAccount)
            copied.adopt(child.for_account(account, run))
        return copied

    def member(self, name: str) -> Self:
        """This stream or its descendant named ``name``."""
        family: list[Any] = [self]
        while family:
            stream = family.pop()
            if stream.name == name:
                return stream
            family += [child for child in stream.child_streams if isinstance(child, PerAccount)]
        raise KeyError(name)

    def _table_state(self) -> dict:
        """This table's state entry for the account read: one per account (the SDK's
        state partitions, keyed by ``_stripe_account``); a state written before there were
        several is the first account's."""
        if self.account is None:
            return self.get_context_state(None)
        entry = self.get_context_state({ACCOUNT_COLUMN: self.account.id})
        if self.account.first:
            inherit_one_account_state(self.get_context_state(None), entry)
        return entry

    def first_sync_done(self) -> bool:
        """Whether this table's state for the account read holds a finished reading."""
        entry = self._table_state()
        return UNFINISHED_VERSION not in entry and any(
            key in entry for key in (*TIMES, WRITTEN_TABLES)
        )

    def _skip(self, reason: str, state_before: dict) -> None:
        """Leave out a table the account cannot read, its state as it was before the run."""
        self.logger.warning(
            "Skipping table '%s': %s; its state is left as it was, the other tables go on",
            self.name,
            reason,
        )
        state = self._table_state()
        state.clear()
        state.update(state_before)
        self._state_changed()

    def _relisting(self, plan: ReadPlan) -> Relisting | None:
        """For a table read whole with selected children listed per parent: the parents
        whose lists this run reads (``relisting.py``)."""
        listed = [
            child.name
            for child in self._selected_children()
            if child.spec.kind is TableKind.PER_PARENT_CHILD
        ]
        if not plan.whole or not listed:
            return None
        run = self._run()
        return Relisting.plan(self._table_state(), listed, int(run.started_at), run.relist_hours)

    def _activate_version(self, version: int, relisting: Relisting | None = None) -> None:
        """Tell the target that rows not written under ``version`` are gone from Stripe,
        in this table (when selected) and in its selected children: of the account read
        only (the message's ``scope``), never another account's.

        A child listed for some parents only (``relisting`` not whole) retires nothing:
        its other parents' rows were not read again. The state then records the parents
        as listed.
        """
        scope = {} if self.account is None else {ACCOUNT_COLUMN: self.account.id}
        streams = [self] if self.selected else []
        for stream in streams + self._selected_children():
            if relisting is not None and not relisting.whole and stream.name in relisting.tables:
                continue
            for stream_map in stream.stream_maps:
                self._tap.write_message(
                    ScopedActivateVersion(stream_map.stream_alias, version, scope)
                )
        if relisting is not None:
            relisting.save(self._table_state())


@dataclass
class ScopedActivateVersion(ActivateVersionMessage):
    """Singer's ACTIVATE_VERSION with the rows it covers: those whose columns equal
    ``scope`` (target-duckdb retires only those; a target that does not know the member
    ignores it). Empty: the whole table, as in Singer."""

    scope: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The message, without ``scope`` when it is empty."""
        message = super().to_dict()
        if not self.scope:
            message.pop("scope", None)
        return message
