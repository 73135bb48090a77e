"""Opening the catalogue for a CLI command (checked to be at the current schema)."""

from __future__ import annotations

import click

from proseo.catalog.db import Catalog
from proseo.catalog.schema import require_current


def open_catalog(ctx: click.Context, *, check_schema: bool = True) -> Catalog:
    catalog = Catalog(ctx.find_root().obj.get("catalog_url"))
    if check_schema:
        require_current(catalog.engine)
    return catalog
