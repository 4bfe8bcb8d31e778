"""Fixtures: simulators in a thread of the test process, small and with a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stripe_sim.runner import SimHandle, run_simulator

NOW = 1_790_000_000
SMALL = {
    "charge": 450,
    "customer": 60,
    "subscription": 80,
    "invoice": 150,
    "product": 8,
    "price": 20,
    "coupon": 6,
}


def small_sim(**knobs: Any) -> Any:
    return run_simulator(**{"counts": SMALL, "now": NOW, "days": 120, **knobs})


@pytest.fixture(scope="session")
def sim() -> Iterator[SimHandle]:
    """A read-only simulator shared by the tests that do not mutate or change knobs."""
    with small_sim() as handle:
        yield handle


@pytest.fixture
def fresh_sim() -> Iterator[SimHandle]:
    """A simulator of its own, for tests that mutate data or change knobs."""
    with small_sim() as handle:
        yield handle


def walk(sim: SimHandle, path: str, params: dict[str, Any] | None = None, **kw: Any) -> list:
    """Every object of a list endpoint, following ``starting_after`` until ``has_more`` ends."""
    params = dict(params or {})
    objects: list[dict[str, Any]] = []
    while True:
        result = sim.request(path, params, **kw)
        assert result.status == 200, result.body
        page = result.json()
        objects.extend(page["data"])
        if not page["has_more"]:
            return objects
        params["starting_after"] = page["data"][-1]["id"]
