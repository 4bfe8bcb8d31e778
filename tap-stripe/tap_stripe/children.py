"""Rows of a nested list, completed past Stripe's cut.

Stripe cuts embedded lists (``invoice.lines``, ``subscription.items``) at 10 entries;
:class:`NestedLists` pages the rest from the list's own endpoint and puts the complete
list back in the parent record. :func:`list_pages` reads one parent's list, from the
embedded list's last entry or from the start: the read a children table of either kind
(from the parent's embedded list, or per parent) is made of.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import orjson

from tap_stripe.client import StripeAPIError, StripeClient, StripeError
from tap_stripe.records import NestedListCheck, RawRecord, id_of, split_page
from tap_stripe.run import Run
from tap_stripe.tables import TableSpec

PAGE_SIZE = 100
# A retrieve, or a nested list's own endpoint, answers this once the object is deleted.
GONE_STATUS = 404


def listed_rows(parent: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    """The rows of ``parent``'s nested list ``field`` (none when it is absent or null)."""
    nested = parent.get(field)
    if not isinstance(nested, dict):
        return []
    data = nested.get("data")
    return [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []


def list_page(
    client: StripeClient, path: str, params: Mapping[str, Any], *, stream: str
) -> tuple[list[msgspec.Raw], bool]:
    """One page of the list at ``path``: its rows' raw JSON and whether more follow.

    An answer that is not a list of objects fails: read as an empty page it would end
    the list early (and move a bookmark, or cut a nested list) without a word.
    """
    body = client.get_bytes(path, params, stream=stream)
    try:
        return split_page(body)
    except msgspec.DecodeError as exc:
        msg = f"stream '{stream}': Stripe sent a list that could not be read: {exc}"
        raise StripeError(msg) from exc


def list_pages(
    client: StripeClient,
    path: str,
    base: Mapping[str, Any],
    *,
    stream: str,
    after: str | None = None,
) -> Iterator[list[msgspec.Raw]]:
    """The pages of the list at ``path`` after the row ``after`` (from the start without),
    each as its rows' raw JSON."""
    cursor = after
    while True:
        params: dict[str, Any] = {**base, "limit": PAGE_SIZE}
        if cursor:
            params["starting_after"] = cursor
        raws, has_more = list_page(client, path, params, stream=stream)
        cursor = id_of(raws[-1]) if has_more and raws else None
        yield raws
        # Not held while the next page is asked for (a wait for the budget).
        del raws
        if cursor is None:
            return


def list_rows(
    client: StripeClient,
    path: str,
    base: Mapping[str, Any],
    *,
    stream: str,
    after: str | None = None,
) -> list[dict]:
    """Every row of the list at ``path`` after the row ``after`` (from the start without)."""
    pages = list_pages(client, path, base, stream=stream, after=after)
    return [orjson.loads(memoryview(raw)) for raws in pages for raw in raws]


class NestedLists:
    """Completes the nested lists of a table's records that Stripe cut short.

    The records of a page are completed concurrently: one after the other, a page of
    invoices with long line lists would cost a round trip per invoice. The pool is made
    on the first cut list and closed with :meth:`close` (made again if needed after).
    """

    def __init__(self, run: Run, spec: TableSpec) -> None:
        self.run = run
        self.spec = spec
        self._check = NestedListCheck(spec.nested_lists)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, run: Run, spec: TableSpec) -> NestedLists | None:
        """The completer of ``spec``'s nested lists, ``None`` if it has none."""
        return cls(run, spec) if spec.nested_lists else None

    def complete(self, raws: list[RawRecord]) -> None:
        """Replace the records of ``raws`` whose nested lists were cut by complete ones."""
        cut = [index for index, raw in enumerate(raws) if self._check.cut_short(raw)]
        if not cut:
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.run.concurrency,
                    thread_name_prefix=f"tap-stripe-{self.spec.name}-nested",
                )
        pool = self._pool
        with self.run.baton.released():
            completed = list(pool.map(self._completed_record, [raws[i] for i in cut]))
        for index, raw in zip(cut, completed, strict=True):
            raws[index] = raw

    def close(self) -> None:
        """Wait for the completions under way and let the pool go."""
        with self.run.baton.released(), self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _completed_record(self, raw: RawRecord) -> bytes:
        record = orjson.loads(memoryview(raw))
        for field, template in self.spec.nested_lists.items():
            self._complete(record, field, template)
        return orjson.dumps(record)

    def _complete(self, record: dict, field: str, template: str) -> None:
        nested = record.get(field)
        if not (isinstance(nested, dict) and nested.get("has_more")):
            return
        data = nested.get("data") or []
        path, _, query = template.format(id=record["id"]).partition("?")
        after = data[-1]["id"] if data else None
        base = dict(parse_qsl(query))
        try:
            rows = list_rows(self.run.client, path, base, stream=self.spec.name, after=after)
        except StripeAPIError as exc:
            if exc.status != GONE_STATUS:
                raise
            # Deleted since it was listed: its delete event brings its tombstone.
            return
        data.extend(rows)
        nested["data"] = data
        nested["has_more"] = False
