"""The DuckLake fixtures: a PostgreSQL server per session, a lake per test."""

from tests.postgres_server import lake, postgres

__all__ = ["lake", "postgres"]
