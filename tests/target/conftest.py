"""The DuckLake fixtures (a PostgreSQL server per session, a lake per test), and each test's
logging handlers removed after it."""

import logging
from collections.abc import Iterator

import pytest

from tests.postgres_server import lake, postgres

__all__ = ["lake", "postgres"]


@pytest.fixture(autouse=True)
def _logging_handlers_of_this_test_only() -> Iterator[None]:
    """Each in-process CLI run adds a root handler on that run's stderr (singer-sdk's console
    logging): removed after the test, so that no later test logs to a stream closed since."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
