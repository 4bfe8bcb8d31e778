"""Which parents of a table read whole have their children's lists read again this run.

A connected account's persons and capabilities are listed per account: the platform's
``/v1/events`` holds none of their changes (their events are the account's own), and their
lists take no ``created`` range. Listing them for every account every run costs two
requests per account per run, which is re-reading every parent to find changed children.

Instead the parent's state entry keeps a fingerprint of each parent as it was when its
children were last listed, and a run lists the children only of parents that are new or
whose object changed since. A capability's status and requirements show in the account's
``capabilities`` and ``requirements``, and so does what a person's verification still
needs. The rest does not: a person's contact details, a person added or removed without a
change to what the account requires, its relationship. So once every
``relist_children_hours`` a run lists the children of every parent, under its new table
version, which retires every row it did not see; ``0`` lists them every run.

Between those runs the rows listed again are upserts, and nothing is retired: a row a
parent no longer lists (a person removed, an account gone) goes at the next listing of
every parent. Retiring it sooner would take an ACTIVATE_VERSION scoped to its parent,
which a Singer target that ignores the scope applies to the whole table, retiring every
other parent's rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

# State key of the parent's entry: the last listing of its children (see ``Relisting.save``).
RELISTED = "relisted"
DEFAULT_RELIST_HOURS = 24


def fingerprint(parent: Mapping[str, Any]) -> str:
    """A short digest of a parent object as Stripe listed it (key order aside)."""
    text = orjson.dumps(parent, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(text, digest_size=8).hexdigest()


@dataclass
class Relisting:
    """One run's choice of the parents whose children are listed, and what it leaves
    for the next run.

    Attributes:
        tables: The selected children listed per parent, sorted.
        whole: Every parent's children are listed this run (a new table version retires
            every row not seen); otherwise only those :meth:`wanted` chooses.
        listed_at: When the children of every parent were last listed (unix seconds).
        before: Each parent's fingerprint when its children were last listed.
    """

    tables: tuple[str, ...]
    whole: bool
    listed_at: int
    before: Mapping[str, str]
    seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def plan(
        cls, entry: Mapping[str, Any], tables: Sequence[str], now: int, every_hours: int
    ) -> Relisting:
        """This run's choice, from the parent's state ``entry``: every parent when the
        entry has no usable listing of these tables, or one ``every_hours`` old (or
        later than ``now``)."""
        tables = tuple(sorted(tables))
        last = entry.get(RELISTED)
        usable = (
            isinstance(last, dict)
            and last.get("tables") == list(tables)
            and isinstance(last.get("at"), int)
            and isinstance(last.get("parents"), dict)
        )
        # A listing time ahead of this machine's clock cannot be trusted to age.
        if not usable or not 0 <= now - last["at"] < every_hours * 3600:
            return cls(tables, True, now, {})
        parents = {str(key): str(value) for key, value in last["parents"].items()}
        return cls(tables, False, last["at"], parents)

    def wanted(self, parent: Mapping[str, Any]) -> bool:
        """Whether ``parent``'s children are listed this run (recording it as seen)."""
        parent_id = str(parent["id"])
        mark = self.seen.setdefault(parent_id, fingerprint(parent))
        return self.whole or self.before.get(parent_id) != mark

    def save(self, entry: dict[str, Any]) -> None:
        """Record, after a complete reading, each parent as listed for the next run. A
        parent whose list Stripe refused (a key that may not read it: ``family.py``) is
        recorded too: asking again each run would fail again, with a warning each time."""
        entry[RELISTED] = {
            "at": self.listed_at,
            "tables": list(self.tables),
            "parents": dict(sorted(self.seen.items())),
        }
