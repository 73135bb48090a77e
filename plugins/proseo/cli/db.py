"""``proseo db``: create and migrate the catalogue database."""

from __future__ import annotations

import click

from proseo.catalog.db import redact
from proseo.catalog.schema import current_revision, head_revision, upgrade
from proseo.cli.context import open_catalog
from proseo.cli.output import console


@click.group()
def db() -> None:
    """Catalogue database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the catalogue to the current schema (safe to repeat)."""
    catalog = open_catalog(ctx, check_schema=False)
    before, after = upgrade(catalog.engine)
    where = redact(catalog.url)
    if before == after:
        console.print(f"catalogue {where} is already at schema {after}")
    else:
        console.print(f"catalogue {where} migrated {before or 'empty'} -> {after}")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the schema revision of the catalogue and the one this code needs."""
    catalog = open_catalog(ctx, check_schema=False)
    console.print(
        f"{redact(catalog.url)}: {current_revision(catalog.engine) or 'empty'} "
        f"(this proseo needs {head_revision()})"
    )
