"""DuckDB's extensions, loaded from their PyPI packages: nothing is downloaded at run time.

Each `duckdb-extension-<name>` wheel holds one file,
`duckdb_extension_<name>/extensions/v<DuckDB version>/<name>.duckdb_extension`, built for
that DuckDB version (the reason `duckdb` is pinned to the packages' version). The file is
LOADed by its path; DuckDB's own installing and autoloading are off for every connection
(`CONFIG`), so no extension comes from the network or from `~/.duckdb/extensions`.

The postgres extension comes from `duckdb-extension-postgres-scanner`: DuckDB looks for an
entry point named after the file, and the file of `duckdb-extension-postgres`
(`postgres.duckdb_extension`, the same binary) lacks `postgres_duckdb_cpp_init`.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import duckdb

logger = logging.getLogger("target-duckdb")

# Connection settings: extensions are loaded only by `load`.
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

# Extension → (its package's module, the pip requirement that installs it).
PACKAGES = {
    "ducklake": ("duckdb_extension_ducklake", "target-duckdb"),
    "postgres_scanner": ("duckdb_extension_postgres_scanner", "target-duckdb"),
    "motherduck": ("duckdb_extension_motherduck", "target-duckdb[motherduck]"),
}


class MissingExtension(Exception):
    """An extension's package is not installed (or not built for this DuckDB)."""


def path(name: str) -> Path:
    """The extension file inside its package, for the DuckDB version running."""
    module, requirement = PACKAGES[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtension(
            f"DuckDB's {name} extension is not installed: pip install '{requirement}'"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    file = folder / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not file.is_file():
        built = ", ".join(sorted(p.name for p in folder.glob("v*"))) or "no version"
        raise MissingExtension(
            f"{module} holds DuckDB's {name} extension for {built}, not for the installed "
            f"duckdb {duckdb.__version__}: install the versions target-duckdb pins"
        )
    return file


def load(connection: duckdb.DuckDBPyConnection, name: str) -> None:
    """LOAD extension `name` from its package's file (DuckDB does not record which file:
    the debug log does)."""
    file = path(name)
    connection.execute("LOAD '" + str(file).replace("'", "''") + "'")
    logger.debug("Loaded DuckDB's %s extension from %s", name, file)
