"""The simulator's live state: accounts' data, the simulated clock and runtime knobs."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from stripe_sim.config import MAIN_ACCOUNT, SimConfig
from stripe_sim.dataset import AccountData, Generator
from stripe_sim.store import Row, Table


@dataclass
class Knobs:
    """Behaviour that can change while the server runs (``POST /_sim/knobs``)."""

    latency_ms: float
    rate_limit: float
    fault_rate: float
    other_api_version_rate: float
    # Table -> how Stripe refuses it (``errors.UNAVAILABLE_ANSWERS``): tables turned off.
    unavailable: dict[str, str] = field(default_factory=dict)


class SimState:
    """The accounts' data plus the generators that keep creating objects for mutations.

    The platform (``MAIN_ACCOUNT``) and ``config.connected_accounts`` connected accounts
    have data of their own; every other account the platform's ``/v1/accounts`` lists is
    answered as an account with nothing in it (:meth:`account`).
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.knobs = Knobs(
            config.latency_ms,
            config.rate_limit,
            config.fault_rate,
            config.other_api_version_rate,
            dict(config.unavailable),
        )
        self._start = config.start_time()
        self._t0 = time.monotonic()
        self.lock = threading.Lock()
        connected = config.connected_account_ids()
        self.generators = {
            MAIN_ACCOUNT: Generator(config, config.seed, 1.0, MAIN_ACCOUNT, connected),
            **{
                account_id: Generator(
                    config, config.seed + 1 + i, config.connected_scale, account_id
                )
                for i, account_id in enumerate(connected)
            },
        }
        self.accounts: dict[str, AccountData] = {
            account_id: generator.build() for account_id, generator in self.generators.items()
        }
        self.listed_accounts_changed(self.platform_accounts().rows)
        # Shared by every empty account: its containers are never written, since only
        # accounts with a generator take mutations.
        tables = {name: Table.of(()) for name in self.accounts[MAIN_ACCOUNT].tables}
        self._empty = AccountData("", b"", tables)

    def clock(self) -> int:
        """Simulated unix time: the configured start plus real time elapsed since then."""
        return self._start + int(time.monotonic() - self._t0)

    def account(self, account_id: str | None) -> AccountData | None:
        """The data of the account a request acts for (no ``Stripe-Account``: the
        platform's); a connected account the platform lists but that has no data of its
        own is an empty one, made when asked for; None for any other id."""
        account_id = account_id or MAIN_ACCOUNT
        data = self.accounts.get(account_id)
        if data is not None:
            return data
        row = self.platform_accounts().get(account_id)
        if row is None:
            return None
        return dataclasses.replace(self._empty, account_id=account_id, account=row.body)

    def platform_accounts(self) -> Table:
        """The platform's ``connectedaccount`` table: what ``/v1/accounts`` lists."""
        return self.accounts[MAIN_ACCOUNT].tables["connectedaccount"]

    def listed_accounts_changed(self, rows: Iterable[Row]) -> None:
        """Make the connected accounts with data answer ``GET /v1/account`` with their
        rows in the platform's list, as made or as a mutation changed them."""
        for row in rows:
            data = self.accounts.get(row.id)
            if data is not None:
                data.account = row.body
