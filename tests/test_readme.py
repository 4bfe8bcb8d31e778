"""The README's table of tables is the registry's, as scripts/table_docs.py renders it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_lists_the_registry_tables_as_rendered():
    spec = importlib.util.spec_from_file_location("table_docs", ROOT / "scripts" / "table_docs.py")
    assert spec is not None and spec.loader is not None
    docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(docs.BEGIN), readme.index(docs.END) + len(docs.END)
    assert readme[start:end] + "\n" == docs.render(), "run: python scripts/table_docs.py"
