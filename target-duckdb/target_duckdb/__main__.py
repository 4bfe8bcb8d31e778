"""`python -m target_duckdb` runs the target CLI."""

from target_duckdb.target import TargetDuckDB

TargetDuckDB.cli()
