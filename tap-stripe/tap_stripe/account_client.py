"""The run's client acting for one account (``Stripe-Account``)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol


class SharedClient(Protocol):
    """What of the run's one client (``client.StripeClient``) an account's view calls."""

    def get_bytes(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        stream: str,
        account: str | None = None,
        stop: threading.Event | None = None,
    ) -> bytes: ...

    def requests_of(self, stream: str) -> tuple[int, int]: ...


class AccountClient:
    """The run's client acting for one account: what a table's reading is handed.

    Its requests carry the account's ``Stripe-Account`` (none for the key's own account)
    and, in a run of many accounts, are counted as ``label/stream`` so the report tells
    the accounts apart. :meth:`cancel` stops this account's requests only (a failing
    account does not stop the others). Everything else is the shared client's.
    """

    def __init__(
        self,
        client: SharedClient,
        account: str | None,
        label: str | None,
        answered: Mapping[str, bytes],
    ) -> None:
        self.shared = client
        self.account = account
        self.label = label
        self._stop = threading.Event()
        self._answered = dict(answered)
        self._answered_lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.shared, name)

    def cancel(self) -> None:
        """Make this account's requests from now on fail at once (``Cancelled``)."""
        self._stop.set()

    def counted(self, stream: str) -> str:
        """The name ``stream``'s requests of this account are counted under."""
        return stream if self.label is None else f"{self.label}/{stream}"

    def get_bytes(
        self, path: str, params: Mapping[str, Any] | None = None, *, stream: str
    ) -> bytes:
        """GET ``path`` for this account (``StripeClient.get_bytes``); a body already
        fetched for the path is answered once without a request."""
        if not params:
            with self._answered_lock:
                body = self._answered.pop(path, None)
            if body is not None:
                return body
        return self.shared.get_bytes(
            path, params, stream=self.counted(stream), account=self.account, stop=self._stop
        )

    def requests_of(self, stream: str) -> tuple[int, int]:
        """Requests made for ``stream`` of this account, and how many were answered 429."""
        return self.shared.requests_of(self.counted(stream))
