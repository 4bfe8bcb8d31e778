"""The simulator's live state: accounts' data, the simulated clock and runtime knobs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from stripe_sim.config import CONNECTED_ACCOUNT, MAIN_ACCOUNT, SimConfig
from stripe_sim.dataset import AccountData, Generator


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
    """Both accounts' data plus the generators that keep creating objects for mutations."""

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
        self.generators = {
            MAIN_ACCOUNT: Generator(config, config.seed, 1.0, MAIN_ACCOUNT),
            CONNECTED_ACCOUNT: Generator(
                config, config.seed + 1, config.connected_scale, CONNECTED_ACCOUNT
            ),
        }
        self.accounts: dict[str, AccountData] = {
            account_id: generator.build() for account_id, generator in self.generators.items()
        }

    def clock(self) -> int:
        """Simulated unix time: the configured start plus real time elapsed since then."""
        return self._start + int(time.monotonic() - self._t0)

    def account(self, account_id: str | None) -> AccountData | None:
        return self.accounts.get(account_id or MAIN_ACCOUNT)
