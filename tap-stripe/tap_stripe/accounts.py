"""The Stripe accounts one run reads, and the order it reads them in.

A key reads its own account (the platform's, on Connect) and, with ``Stripe-Account``,
any account connected to it. The settings choose: ``account_id`` (one connected account,
the one-account form), ``account_ids`` (a list), ``all_connected_accounts`` (every account
``/v1/accounts`` lists, paged to its end) and ``include_platform`` (the key's own account
too: by default when no account is named). Every record carries the account it was read
from (``_stripe_account``), so the key's own account's id is asked once per run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from tap_stripe.responses import StripeAPIError, StripeError
from tap_stripe.settings import InputError, account_list

ACCOUNT_COLUMN = "_stripe_account"
# The requests that find the run's accounts are counted under this name.
ACCOUNTS_STREAM = "(accounts)"
OWN_ACCOUNT_PATH = "/v1/account"
CONNECTED_ACCOUNTS_PATH = "/v1/accounts"
PAGE_SIZE = 100
# How Stripe's permission error names the account a key acts for.
NAMED_ACCOUNT = re.compile(r"on account '(acct_[A-Za-z0-9]+)'")


ACCOUNT_SCHEMA = {
    "type": "string",
    "description": "The Stripe account the record was read from (acct_...): the key's own "
    "or a connected account's.",
}


def with_account_column(schema: dict) -> dict:
    """``schema`` with ``_stripe_account``, the first of every table's key."""
    properties = {ACCOUNT_COLUMN: ACCOUNT_SCHEMA, **schema.get("properties", {})}
    required = [
        ACCOUNT_COLUMN,
        *(name for name in schema.get("required", []) if name != ACCOUNT_COLUMN),
    ]
    return {**schema, "properties": properties, "required": required}


class Getter(Protocol):
    """What of the client finding the accounts needs."""

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, stream: str) -> Any: ...

    def get_bytes(
        self, path: str, params: Mapping[str, Any] | None = None, *, stream: str
    ) -> bytes: ...


@dataclass(frozen=True)
class Account:
    """One account of the run.

    Attributes:
        id: Its id (``acct_...``): every record read from it carries it.
        connected: Read with ``Stripe-Account`` (else it is the key's own account).
        first: The account a one-account state (written before states were kept per
            account) belongs to: ``account_id``, else the key's own account.
        own_object: The key's own account as ``GET /v1/account`` answered when its id
            was asked: the ``account`` table's record, not asked for again.
    """

    id: str
    connected: bool
    first: bool = False
    own_object: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def header(self) -> str | None:
        """The ``Stripe-Account`` its requests carry (``None``: the key's own account)."""
        return self.id if self.connected else None


def includes_platform(config: Mapping[str, Any]) -> bool:
    """Whether the key's own account is read: as set, else when no account is named or
    every connected account is read."""
    configured = config.get("include_platform")
    if configured is not None:
        return bool(configured)
    named = config.get("account_id") or account_list(config.get("account_ids"))
    return bool(config.get("all_connected_accounts")) or not named


def run_accounts(config: Mapping[str, Any], client: Getter) -> list[Account]:
    """The accounts ``config`` asks for, each once: the key's own first (when included),
    then ``account_id``, ``account_ids`` and the listed connected accounts in order."""
    own_id, own_object = None, None
    if includes_platform(config):
        own_id, own_object = own_account(client)
    named = [str(config["account_id"])] if config.get("account_id") else []
    named += account_list(config.get("account_ids"))
    if config.get("all_connected_accounts"):
        named += connected_account_ids(client)
    if own_id is None and not named:
        raise InputError(
            "config: no account to read: include_platform is false and no connected "
            "account is named (account_id, account_ids) or listed (all_connected_accounts)"
        )
    first = named[0] if config.get("account_id") or own_id is None else own_id
    accounts = []
    if own_id is not None:
        accounts.append(
            Account(own_id, connected=False, first=first == own_id, own_object=own_object)
        )
    seen = {own_id}
    for account_id in named:
        if account_id not in seen:
            seen.add(account_id)
            accounts.append(Account(account_id, connected=True, first=account_id == first))
    return accounts


def own_account(client: Getter) -> tuple[str, bytes | None]:
    """The key's own account's id, and its object when the key may read it.

    A restricted key without the Account permission is refused with a 403 whose message
    names the account ("... for this endpoint on account 'acct_...'"): its id is read
    from there, and the ``account`` table is then skipped like any table the key may not
    read.
    """
    try:
        body = client.get_bytes(OWN_ACCOUNT_PATH, stream=ACCOUNTS_STREAM)
    except StripeAPIError as error:
        if error.status != 403:
            raise
        named = NAMED_ACCOUNT.search(error.message or "")
        if named is None:
            raise StripeError(
                f"{error}; the run needs its own account's id: give the key the Account "
                "read permission, or name the accounts to read (account_ids) with "
                "include_platform: false"
            ) from error
        return named.group(1), None
    return str(orjson.loads(body)["id"]), body


def connected_account_ids(client: Getter) -> list[str]:
    """Every account ``/v1/accounts`` lists, paged to its end (oldest last, as listed)."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    while True:
        page = client.get(CONNECTED_ACCOUNTS_PATH, params, stream=ACCOUNTS_STREAM)
        ids += [str(account["id"]) for account in page["data"]]
        if not page.get("has_more") or not page["data"]:
            return ids
        params = {"limit": PAGE_SIZE, "starting_after": ids[-1]}


def unfinished_first(accounts: Sequence[Account], started: Mapping[str, bool]) -> list[Account]:
    """``accounts`` with those whose first sync is not done (``started[id]`` false) first,
    each group in its order."""
    return sorted(accounts, key=lambda account: started.get(account.id, False))
