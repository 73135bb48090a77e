"""``proseo interfaces``: the PRIP query suite (``check``) and a CADIP pull (``cadip-pull``).

``check`` runs :mod:`proseo.interfaces.conformance` against any PRIP root (ours at
``.../proseo/prip/odata/v1`` or another delivery point's); the exit code is 1 when a
check failed, so it can gate a deployment. ``cadip-pull`` runs one
:func:`proseo.interfaces.cadip.pull_sessions` (what a scheduled pull does), showing each
session as it is examined. Both need the ``client`` extra (httpx).
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import click
from rich.markup import escape

from proseo.cli.context import open_catalog
from proseo.cli.output import console, err_console, print_json, table
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


@interfaces_group.command("cadip-pull")
@click.argument("url")
@click.option("--mission", "-m", required=True, help="Mission code.")
@click.option(
    "--name", default="cadip", show_default=True, help="The source's name (its cursor and sessions)."
)
@click.option("--satellite", help="Only sessions of this Satellite (e.g. S5P).")
@click.option(
    "--class", "product_type", help="L0 class to ingest as (default: the mission's only raw L0 class)."
)
@click.option("--token", envvar="PROSEO_CADIP_TOKEN", help="Bearer token (or PROSEO_CADIP_TOKEN).")
@click.option("--user", help="User for the CADIP's OAuth2 token route (password grant).")
@click.option("--password", envvar="PROSEO_CADIP_PASSWORD", help="Its password (or PROSEO_CADIP_PASSWORD).")
@click.option("--progress/--no-progress", default=None, help="Show each session (default: on a terminal).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def cadip_pull(
    ctx: click.Context,
    url: str,
    mission: str,
    name: str,
    satellite: str | None,
    product_type: str | None,
    token: str | None,
    user: str | None,
    password: str | None,
    progress: bool | None,
    fmt: str,
) -> None:
    """Take the whole sessions of the CADIP at URL (its OData root) as L0 products.

    Sessions not whole yet are listed as pending with the reason; the next pull looks
    at them again. Exit 1 if a session failed (download or ingestion; it stays pending).
    """
    try:
        from proseo.interfaces.cadip import CadipError, CadipReport, CadipSource, pull_sessions
    except ModuleNotFoundError as exc:
        raise MissingExtra("proseo interfaces cadip-pull", "httpx", "client") from exc
    catalog = open_catalog(ctx)
    source = CadipSource(
        name, url, satellite, username=user, password=password, token=token, product_type=product_type
    )
    show = sys.stderr.isatty() if progress is None else progress
    failure: CadipError | None = None
    with err_console.status(f"cadip {name}: listing sessions") if show else _quiet() as status:
        seen = 0

        def step(session: str) -> None:
            nonlocal seen
            seen += 1
            if status is not None:
                status.update(f"cadip {name}: {seen} sessions examined, last {escape(session)}")

        try:
            report: CadipReport = pull_sessions(catalog, mission, source, progress=step)
        except CadipError as exc:
            if exc.report is None:
                raise
            failure, report = exc, exc.report
    if fmt == "json":
        print_json(
            {
                "source": name,
                "taken": report.taken,
                "products": report.products,
                "pending": report.pending,
                "known": report.known,
                "failures": [str(f) for f in report.failures],
            }
        )
    else:
        rows = [(sid, "[green]taken[/]", "") for sid in report.taken]
        rows += [(sid, "[yellow]pending[/]", escape(why)) for sid, why in report.pending.items()]
        table(f"CADIP pull: {url}", ("session", "state", "reason"), rows)
        console.print(
            f"{len(report.taken)} sessions taken ({len(report.products)} products), "
            f"{len(report.pending)} pending, {len(report.known)} taken before"
        )
    if failure is not None:
        for f in report.failures:
            err_console.print(f"[red]error:[/red] {escape(str(f))}", soft_wrap=True)
        sys.exit(1)


class _quiet:
    """No status line (not a terminal, or --no-progress)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


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
