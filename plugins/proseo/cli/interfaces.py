"""``proseo interfaces check URL``: the built-in PRIP query suite, pass/fail per query.

Runs :mod:`proseo.interfaces.conformance` against any PRIP root (ours at
``.../proseo/prip/odata/v1`` or another delivery point's). The exit code is 1 when a
check failed, so it can gate a deployment. Needs the ``client`` extra (httpx).
"""

from __future__ import annotations

from dataclasses import asdict

import click

from proseo.cli.output import console, print_json, table
from proseo.errors import MissingExtra


@click.group("interfaces")
def interfaces_group() -> None:
    """ESA interfaces (PRIP, AUXIP, ...) of this or another ground segment."""


@interfaces_group.command("check")
@click.argument("url")
@click.option("--token", envvar="PROSEO_PRIP_TOKEN", help="Bearer token (or PROSEO_PRIP_TOKEN).")
@click.option("--user", help="User for the PRIP's OAuth2 token route (password grant).")
@click.option("--password", envvar="PROSEO_PRIP_PASSWORD", help="Its password (or PROSEO_PRIP_PASSWORD).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def check(url: str, token: str | None, user: str | None, password: str | None, fmt: str) -> None:
    """Run the query suite against the PRIP at URL (its OData root)."""
    try:  # httpx is the client extra's: the core installation has no HTTP client
        from proseo.interfaces.conformance import Prip, run_checks
    except ModuleNotFoundError as exc:
        raise MissingExtra("proseo interfaces check", "httpx", "client") from exc
    results = run_checks(Prip(url, token=token, user=user, password=password))
    failed = [r for r in results if r.outcome == "fail"]
    if fmt == "json":
        print_json({"url": url, "results": [asdict(r) for r in results], "failed": len(failed)})
    else:
        marks = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skip": "[yellow]skip[/]"}
        table(
            f"PRIP checks: {url}",
            ("check", "result", "detail"),
            [(r.name, marks[r.outcome], r.detail) for r in results],
        )
        passed = sum(1 for r in results if r.outcome == "pass")
        console.print(f"{passed} passed, {len(failed)} failed, {len(results) - passed - len(failed)} skipped")
    if failed:
        raise SystemExit(1)


@interfaces_group.group("subscriptions")
def subscriptions_group() -> None:
    """PRIP subscriptions in the catalogue (every owner's; the PRIP shows each user their own)."""


@subscriptions_group.command("list")
@click.option("--mission", "-m", help="Only this mission's subscriptions.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def subscriptions_list(ctx: click.Context, mission: str | None, fmt: str) -> None:
    """Every subscription: owner, filter, type, status and its notifications by state."""
    from proseo.cli.context import open_catalog
    from proseo.interfaces.subscriptions import list_subscriptions

    with open_catalog(ctx).session() as session:
        rows = list_subscriptions(session, None, mission)
    if fmt == "json":
        print_json(rows)
        return
    table(
        "PRIP subscriptions",
        (
            "id",
            "mission",
            "owner",
            "type",
            "status",
            "filter",
            "pending",
            "delivered",
            "failed",
            "last notified",
        ),
        [
            (
                r["Id"],
                r["Mission"],
                r["Owner"],
                r["SubscriptionType"],
                r["Status"],
                r["FilterParam"],
                str(r["PendingNotifications"]),
                str(r["DeliveredNotifications"]),
                str(r["FailedNotifications"]),
                r["LastNotificationDate"] or "-",
            )
            for r in rows
        ],
    )
