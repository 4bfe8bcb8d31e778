"""The run's events pass of one table: its events in; upserts, re-fetches and tombstones out.

``changes.py`` folds the events and holds the rules of what a change and a delete look
like; this module fetches the events, re-fetches what they cannot be trusted for, and
writes the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson

from tap_stripe import shutdown
from tap_stripe.changes import (
    ChangedFields,
    ChangeSet,
    RemovedRows,
    is_deleted_stub,
    iso_time,
    tombstone,
)
from tap_stripe.children import GONE_STATUS, PAGE_SIZE, NestedLists
from tap_stripe.client import StripeAPIError, StripeError
from tap_stripe.family import Family
from tap_stripe.fetcher import Page
from tap_stripe.progress import ReadPlan
from tap_stripe.records import RawRecord
from tap_stripe.run import Run
from tap_stripe.tables import TableSpec

# Objects re-fetched by id per round: enough to keep every request slot busy.
REFETCH_CHUNK = 500


def _head(raw: RawRecord) -> dict[str, object]:
    """The top-level fields of an object a retrieve path is made of."""
    record = orjson.loads(memoryview(raw))
    return record if isinstance(record, dict) else {}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Capture:
    """Change capture of one table, for one run."""

    def __init__(
        self, run: Run, spec: TableSpec, nested: NestedLists | None, logger: logging.Logger
    ) -> None:
        self.run = run
        self.spec = spec
        self.nested = nested
        self.logger = logger

    def write(self, plan: ReadPlan, events: Iterable[Page], family: Family) -> int:
        """Write what changed since the events cursor; return how many objects.

        Runs before the ``created`` pages are written: those were listed after the run
        started, so where both hold an object the listed (newer) state is written last.
        Objects go out a page at a time, so memory holds one page, not every change. The
        rows of ``family``'s child tables go out with their parents, tombstones for those
        the parents no longer list.
        """
        assert plan.events_since is not None
        name = self.spec.name
        api_version = self.run.client.api_version
        with ChangeSet(
            self.spec,
            api_version,
            self.run.floor,
            family.list_fields,
            watch_fields=bool(family.listed_children),
        ) as changes:
            try:
                for page in events:
                    changes.add(page.raws)
            except StripeAPIError as exc:
                if exc.status != 403:
                    raise
                msg = (
                    f"{exc}; updates and deletes of '{name}' are read from /v1/events: "
                    "give the key read access to Events"
                )
                raise StripeError(msg) from exc
            found = changes.changes()
            before, changed_fields = found.listed_before, found.changed
            gone = dict(found.tombstones)
            changed = 0
            for ids in _chunks(found.upserts, PAGE_SIZE):
                current = [changes.payload(i) for i in ids]
                changed += self._emit_current(family, current, before, changed_fields)
            for ids in _chunks(found.refetch, REFETCH_CHUNK):
                current = []
                paths = [self.spec.retrieve_path(_head(changes.payload(i))) for i in ids]
                for object_id, body in zip(ids, self._refetch(paths), strict=True):
                    if body is None:
                        gone[object_id] = int(time.time())
                    else:
                        current.append(body)
                changed += self._emit_current(family, current, before, changed_fields)
            for ids in _chunks(list(gone), PAGE_SIZE):
                tombstones = [tombstone(changes.payload(i), gone[i]) for i in ids]
                family.emit_tombstones(Page(tombstones, None), before)
        self.logger.info(
            "Change capture: %d events since %s; %d objects changed (%d re-fetched), %d deleted",
            found.events,
            iso_time(plan.events_since),
            changed,
            len(found.refetch),
            len(gone),
        )
        return changed + len(gone)

    def _emit_current(
        self,
        family: Family,
        raws: list[RawRecord],
        listed_before: RemovedRows,
        changed: ChangedFields,
    ) -> int:
        """Write changed objects, their nested lists completed, and their children."""
        if self.nested is not None:
            self.nested.complete(raws)
        return family.emit(Page(raws, None), listed_before, changed)

    def _refetch(self, paths: list[str]) -> list[bytes | None]:
        """Retrieve objects by their paths, concurrently; ``None`` for each that is gone."""
        pool = ThreadPoolExecutor(
            max_workers=self.run.concurrency,
            thread_name_prefix=f"tap-stripe-{self.spec.name}-refetch",
        )
        try:
            with self.run.client.baton.released():
                return list(pool.map(self._refetch_one, paths))
        finally:
            # On a failure, the ids not started yet are dropped rather than fetched; on a
            # stop (shutdown.py), the requests under way are not waited for either.
            pool.shutdown(wait=not shutdown.stopping(), cancel_futures=True)

    def _refetch_one(self, path: str) -> bytes | None:
        params = {"expand[]": list(self.spec.expand)} if self.spec.expand else None
        try:
            body = self.run.client.get_bytes(path, params, stream=self.spec.name)
        except StripeAPIError as exc:
            if exc.status != GONE_STATUS:
                raise
            return None
        return None if is_deleted_stub(body) else body
