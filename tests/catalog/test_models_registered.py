"""A catalogue opened in a fresh process knows every table its rows refer to.

A step task imports only the model modules it uses (orders, products); a foreign key to
a table of a module it did not import (processing_order.campaign_id -> campaign) made
every flush fail with NoReferencedTableError. Opening a Catalog registers all tables.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from proseo.catalog.db import Base, Catalog
from proseo.catalog import model_order  # noqa: F401  (what a step task imports first)
Catalog("sqlite://")
bad = []
for table in Base.metadata.tables.values():
    for fk in table.foreign_keys:
        try:
            fk.column
        except Exception as exc:
            bad.append(f"{fk.parent}: {exc}")
print("unresolved:", bad)
"""


def test_every_foreign_key_resolves_once_a_catalog_is_opened() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "unresolved: []", out.stdout + out.stderr
