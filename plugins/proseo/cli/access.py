"""``proseo access``: who holds which role on which mission (the REST API's permissions).

The first mission admin has to come from somewhere: this command works on the
catalogue directly, so whoever runs it with the catalogue's credentials is trusted.
"""

from __future__ import annotations

import getpass

import click

from proseo.catalog import access as roles
from proseo.cli.context import open_catalog
from proseo.cli.output import console, print_json, table


@click.group()
def access() -> None:
    """Per-mission roles: viewer, operator, admin (mission code or * for every mission)."""


@access.command("grant")
@click.argument("user")
@click.argument("role", type=click.Choice([r.label for r in roles.Role]))
@click.option("--mission", "-m", required=True, help="Mission code, or * for every mission.")
@click.pass_context
def grant(ctx: click.Context, user: str, role: str, mission: str) -> None:
    """Give USER exactly ROLE on a mission (replaces the role they held there)."""
    with open_catalog(ctx).session() as session:
        roles.grant(session, user, mission, role, by=f"cli:{getpass.getuser()}")
    console.print(f"{user}: {role} on {mission}", markup=False)


@access.command("revoke")
@click.argument("user")
@click.option("--mission", "-m", required=True, help="Mission code, or *.")
@click.pass_context
def revoke(ctx: click.Context, user: str, mission: str) -> None:
    """Take USER's role on a mission away."""
    with open_catalog(ctx).session() as session:
        roles.revoke(session, user, mission)
    console.print(f"{user}: no role on {mission}", markup=False)


@access.command("list")
@click.option("--mission", "-m", help="Only roles that hold on this mission.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def list_roles(ctx: click.Context, mission: str | None, fmt: str) -> None:
    """Roles in the catalogue."""
    with open_catalog(ctx).session() as session:
        rows = [(r.username, r.mission, r.role, r.granted_by) for r in roles.list_roles(session, mission)]
    if fmt == "json":
        print_json([{"user": u, "mission": m, "role": r, "granted_by": g} for u, m, r, g in rows])
        return
    table(None, ["user", "mission", "role", "granted by"], rows)
