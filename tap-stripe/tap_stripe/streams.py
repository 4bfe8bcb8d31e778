"""The composition: one SDK stream per Stripe table, built from a TableSpec, its sync loop
calling the parts.

For each table the stream plans the run (``progress.py``), writes the events' changes
first (``capture.py``), then the listed pages (``listing.py``, nested lists completed by
``children.py``) through the emitter (``emit.py``: raw bytes, no per-record SDK loop),
and moves the bookmark by the one rule: to the end of the contiguous prefix of completed
windows (``windows.Frontier``), after their records are written. The SDK's max-value
bookmark would be wrong for newest-first pages and out-of-order windows.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from singer_sdk import Stream, Tap
from singer_sdk.singerlib import Metadata, MetadataMapping

from tap_stripe.account_stream import PerAccount
from tap_stripe.accounts import ACCOUNT_COLUMN, Account
from tap_stripe.availability import unavailable_reason
from tap_stripe.capture import Capture
from tap_stripe.changes import DELETED_AT
from tap_stripe.children import NestedLists
from tap_stripe.client import StripeAPIError
from tap_stripe.emit import Emitter
from tap_stripe.events_pass import ALL_EVENTS, EVENTS_PATH, EventsOf
from tap_stripe.family import ChildOutput, Family, ListedChild, embedded_rows
from tap_stripe.fetcher import Page, PageFetcher
from tap_stripe.listing import Listing
from tap_stripe.progress import Progress, ReadPlan
from tap_stripe.relisting import Relisting
from tap_stripe.run import Run
from tap_stripe.tables import ReadMode, TableKind, TableSpec, tracks_deletes
from tap_stripe.windows import Frontier, Window

if TYPE_CHECKING:
    from singer_sdk.helpers import types


@dataclass
class _Reading:
    """One run's reading of a table: its plan, its listed pages, its events (and its
    children's own) from the run's events pass."""

    plan: ReadPlan
    pages: Iterable[Page]
    events: EventsOf | None = None
    capture: Capture | None = None
    child_events: list[tuple[StripeStream, Capture, EventsOf]] = field(default_factory=list)

    def close(self) -> None:
        """Stop whatever is still being fetched."""
        if isinstance(self.pages, PageFetcher):
            self.pages.close()


class StripeStream(PerAccount, Stream):
    """A Stripe table: a paged list endpoint, or a single object (``account``).

    ``run`` gives the run's :class:`~tap_stripe.run.Run` once the sync needs it: the SDK
    builds streams at discovery, which needs no key and so no client.
    """

    is_sorted = False

    def __init__(
        self,
        tap: Tap,
        spec: TableSpec,
        schema: dict,
        run: Callable[[], Run],
        first_account: Callable[[], tuple[Account, Run]],
    ) -> None:
        self.spec = spec
        super().__init__(tap, schema=schema, name=spec.name)
        self.primary_keys = [ACCOUNT_COLUMN, *spec.key_properties]
        self.replication_key = spec.replication_key
        self._run = run
        self._first_account = first_account
        self._prefetched: _Reading | None = None
        self.parent: StripeStream | None = None
        # The account read (``for_account``); ``None`` for the streams of discovery.
        self.account: Account | None = None

    def adopt(self, child: StripeStream) -> None:
        """Make ``child`` (a child table) written with this stream's pages.

        The SDK then syncs this stream when only the child is selected, and never syncs
        the child on its own (it has a parent stream type).
        """
        child.parent = self
        child.parent_stream_type = StripeStream
        self.child_streams.append(child)

    def _selected_children(self) -> list[StripeStream]:
        """The selected tables written with this one's pages: its children, and theirs."""
        found = []
        for child in self.child_streams:
            assert isinstance(child, StripeStream)
            if child.selected:
                found.append(child)
            found += child._selected_children()
        return found

    def _written_tables(self) -> list[str]:
        """The tables this stream's reading writes this run: itself when selected, and
        its selected children."""
        own = [self.name] if self.selected else []
        return own + [child.name for child in self._selected_children()]

    @property
    def metadata(self) -> MetadataMapping:
        """The SDK's metadata, with the tombstone column always selected.

        A field selection that left ``_sdc_deleted_at`` out (or a catalog written before
        it existed) would turn every tombstone into a plain upsert of a live-looking row.
        """
        metadata = super().metadata
        entry = metadata.get(("properties", DELETED_AT))
        if entry is not None and tracks_deletes(self.spec):
            entry.inclusion = Metadata.InclusionType.AUTOMATIC
        return metadata

    # ---- the parts -----------------------------------------------------------------

    def _progress(self) -> Progress:
        return Progress(
            self._run(),
            self.spec,
            self._table_state(),
            replication_key=self.replication_key,
            incremental=self.replication_method == "INCREMENTAL",
            logger=self.logger,
            write_state=self._state_changed,
            written_tables=self._written_tables(),
        )

    def _state_changed(self) -> None:
        """Send the tap's STATE (the SDK's private ``_write_state_message`` is the one way
        through its state writer and flush flag)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _family(self, plan: ReadPlan, relisting: Relisting | None = None) -> Family:
        """The writer of this stream's pages: its own records when selected, and the rows
        of its selected children, whose SCHEMA goes out first (the SDK does not sync them
        on their own); ``relisting`` chooses the parents listed for per-parent children."""
        version = plan.version
        embedded, listed = [], []
        for child in self._selected_children():
            child._write_schema_message()
            emitter = child._emitter(version)
            if child.spec.kind is TableKind.EMBEDDED_CHILD:
                embedded.append(ChildOutput(child.spec, emitter))
            else:
                listed.append(_listed(child, emitter))
        return Family(
            self._emitter(version) if self.selected else None,
            embedded,
            listed,
            strip=self._child_expand(),
            list_owned=plan.events_since is None,
            relist=None if relisting is None else relisting.wanted,
        )

    def _child_expand(self) -> tuple[str, ...]:
        """The nested lists expanded for the selected children only."""
        fields = {
            child.spec.parent.embedded_field
            for child in self._selected_children()
            if child.spec.parent is not None and child.parent is self
        }
        return tuple(name for name in self.spec.child_expand if name in fields)

    def _emitter(self, version: int | None) -> Emitter:
        """The emitter of this stream's records (the SDK's private ``_tap`` is the only way
        to the tap's message writer)."""
        return Emitter(
            self.name,
            self.schema,
            writer=self._tap.message_writer,
            write_message=self._tap.write_message,
            stream_maps=self.stream_maps,
            mask=self.mask,
            key_properties=list(self.primary_keys or []),
            replication_key=self.replication_key,
            logger=self.logger,
            version=version,
            account=None if self.account is None else self.account.id,
        )

    def state_after(self, now: float) -> bool:
        """Whether the bookmark or events cursor is later than ``now``."""
        return self._progress().state_after(now)

    def clamp_state(self, now: float, clock: str) -> None:
        """Move a bookmark or events cursor later than ``now`` back (``Progress.clamp``)."""
        self._progress().clamp(now, clock)

    def _start_reading(self, *, with_events: bool = True) -> _Reading:
        """Plan this run's reading of the table and start fetching its pages (and events)."""
        run = self._run()
        nested = NestedLists.of(run, self.spec)
        listing = Listing(run, self.spec, nested, self.logger, expand=self._child_expand())
        if self.spec.replication_key is None:
            return _Reading(self._progress().whole_plan(), listing.whole(), [])
        plan = self._progress().plan()
        capture = Capture(run, self.spec, nested, self.logger)
        since = plan.events_since
        events, child_events = None, []
        if with_events and since is not None and since < plan.end:
            events = run.events.want(self.name, self.spec.event_types, since)
            for child in self._selected_children():
                if child.spec.event_types:
                    child_capture = Capture(run, child.spec, None, self.logger)
                    wanted = run.events.want(child.name, child.spec.event_types, since)
                    child_events.append((child, child_capture, wanted))
        if self.spec.read is ReadMode.NEWEST_FIRST:
            pages: Iterable[Page] = listing.newest_first(plan.start, plan.end)
        elif with_events and _reads_events_pass(self.spec, plan):
            pages = run.events.want(self.name, ALL_EVENTS, plan.start)
            pages.finished = Window(plan.start, plan.end)
        else:
            pages = listing.created_range(plan.start, plan.end)
        return _Reading(plan, pages, events, capture, child_events)

    # ---- prefetch ------------------------------------------------------------------

    def prefetch(self) -> None:
        """Start fetching now, ahead of this stream's turn to be written."""
        if (
            self._prefetched is None
            and self.spec.replication_key is not None
            and self._written_tables()
        ):
            self._prefetched = self._start_reading()

    def cancel_prefetch(self) -> None:
        """Stop any fetching this stream still does (its turn never came, or failed)."""
        if self._prefetched is not None:
            self._prefetched.close()
            self._prefetched = None

    # ---- the sync loop -------------------------------------------------------------

    def _sync_records(
        self,
        context: types.Context | None = None,
        *,
        write_messages: bool = True,
    ) -> Iterable[dict]:
        """Fetch and emit every record, managing the bookmark.

        Overrides the SDK's private loop (its per-record conform/validate and max-value
        bookmark): the records go out as raw bytes and the bookmark follows the windows.

        The bookmark moves to the end of the completed windows as they complete. A full
        read that retires rows (``plan.version``) moves it past the end of its range only
        after its ACTIVATE_VERSION is out, and a catch-up not before it is complete:
        state that says the table is current must not precede the deletes.

        A table the account cannot read (``availability.py``) is skipped with one
        warning, its state as it was before the run.
        """
        if not write_messages:
            return list(self.get_records(context))
        if self.account is None:  # the SDK syncing a stream itself (its dry run)
            account, run = self._first_account()
            return self.for_account(account, run)._sync_records(context)
        state_before = copy.deepcopy(self._table_state())
        try:
            self._sync_table()
        except StripeAPIError as error:
            reason = unavailable_reason(error, self.spec)
            if reason is None:
                raise
            self._skip(reason, state_before)
        return ()

    def _sync_table(self) -> None:
        """Read and emit the table under its plan (see ``_sync_records``)."""
        reading = self._prefetched or self._start_reading()
        self._prefetched = None
        plan = reading.plan
        progress = self._progress()
        relisting = self._relisting(plan)
        family = self._family(plan, relisting)
        frontier = Frontier(plan.start)
        events_cursor = plan.end if self.spec.event_types else None
        run = self._run()
        meter = run.report.meter(run.client.counted(self.name))
        with self.get_record_counter() as counter, self.get_sync_timer():
            try:
                if reading.events is not None and reading.capture is not None:
                    written = reading.capture.write(plan, reading.events, family)
                    counter.increment(written)
                    meter.add_records(written)
                    for child, child_capture, child_events in reading.child_events:
                        own = Family(family.emitter_of(child.name), [])
                        child_capture.write(plan, child_events, own)
                        own.flush()
                    family.flush()
                    progress.save(events_cursor=plan.end, unfinished_version=plan.version)
                for page in reading.pages:
                    written = family.emit(page)
                    counter.increment(written)
                    meter.add_records(written)
                    if page.finished is None:
                        continue
                    if (
                        frontier.complete(page.finished)
                        and (plan.bookmark is None or frontier.position > plan.bookmark)
                        and not plan.catch_up
                        and not (plan.version is not None and frontier.position >= plan.end)
                    ):
                        progress.save(
                            bookmark=frontier.position,
                            events_cursor=events_cursor,
                            unfinished_version=plan.version,
                        )
            finally:
                reading.close()
                family.close()
                family.flush()
                meter.finish()
                self.logger.info(
                    "%s%d requests, %d answered 429",
                    "" if self.account is None else f"account {self.account.id}: ",
                    *run.client.requests_of(self.name),
                )
        if plan.version is not None and plan.whole:
            self._activate_version(plan.version, relisting)
        elif plan.version is not None and plan.start < plan.end <= frontier.position:
            self._activate_version(plan.version)
            progress.save(bookmark=frontier.position, events_cursor=events_cursor)
        progress.record_written_tables()
        self._write_state_message()

    def get_records(self, context: types.Context | None) -> Iterable[dict]:
        """Every record of the run's first account, without the tap's bookmarking (for SDK
        callers such as tests); a child's rows come from its top-level ancestor's pages."""
        if self.account is None:
            account, run = self._first_account()
            top = self.parent.parent or self.parent if self.parent is not None else self
            yield from top.for_account(account, run).member(self.name).get_records(context)
            return
        account = {ACCOUNT_COLUMN: self.account.id}
        if self.parent is None:
            for page in self._start_reading(with_events=False).pages:
                for record in page.records():
                    yield {**account, **record}
            return
        top = self.parent.parent or self.parent
        for record in _child_records(self, top._start_reading(with_events=False).pages):
            yield {**account, **record}


def _reads_events_pass(spec: TableSpec, plan: ReadPlan) -> bool:
    """Whether this is the ``event`` table read since its bookmark: the run's events pass
    lists its events already."""
    return (
        spec.path == EVENTS_PATH
        and plan.bookmark is not None
        and plan.version is None
        and plan.start < plan.end
    )


def _child_records(child: StripeStream, pages: Iterable[Page]) -> Iterator[dict]:
    """``child``'s rows from its top-level ancestor's ``pages``."""
    if child.spec.kind is TableKind.EMBEDDED_CHILD:
        for page in pages:
            for parent in page.records():
                yield from embedded_rows(child.spec, parent)
        return
    listed = _listed(child, child._emitter(None))
    try:
        for page in pages:
            yield from listed.rows(page.records())
    finally:
        listed.close()


def _listed(child: StripeStream, emitter: Emitter) -> ListedChild:
    """``child``, listed per parent, as its top-level ancestor's pages write it: a child of
    a child (usage summaries) is listed for the rows of its parent's list."""
    parent = child.parent
    assert parent is not None
    parents_of = partial(embedded_rows, parent.spec) if parent.parent is not None else None
    return ListedChild(child.spec, emitter, child._run(), child.logger, parents_of)
