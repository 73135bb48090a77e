"""``proseo``: onboard missions, manage the catalogue, ingest and query products.

Every error raised on purpose (a :class:`ProseoError`) is printed as one clear
message and mapped to its exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from proseo.cli.output import err_console
from proseo.errors import ConfigError, ProseoError


class ProseoGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            err_console.print(
                f"[red]invalid mission configuration ({len(exc.issues)} problem"
                f"{'s' if len(exc.issues) != 1 else ''}):[/red]"
            )
            for issue in exc.issues:
                err_console.print(f"  {issue}", markup=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except ProseoError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            sys.exit(exc.exit_code)


@click.group(cls=ProseoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--catalog",
    "catalog_url",
    envvar="PROSEO_CATALOG_URL",
    metavar="URL",
    help="Catalogue database URL [env PROSEO_CATALOG_URL; default: SQLite under AIRFLOW_HOME].",
)
@click.pass_context
def cli(ctx: click.Context, catalog_url: str | None) -> None:
    """proseo: processing control for Earth-observation and astronomy pipelines."""
    ctx.obj = {"catalog_url": catalog_url}


def _register() -> None:
    from proseo.cli import access, campaign, db, interfaces, kpi, mission, order, product, steps, trigger  # noqa: F401  (steps joins order)
    from proseo.cli import rule as rule_cli

    cli.add_command(access.access)
    cli.add_command(campaign.campaign_group)
    cli.add_command(db.db)
    cli.add_command(interfaces.interfaces_group)
    cli.add_command(kpi.kpi_group)
    cli.add_command(mission.mission)
    cli.add_command(product.product)
    cli.add_command(order.order)
    cli.add_command(rule_cli.rule)
    cli.add_command(trigger.trigger_group)


_register()


def main() -> None:
    cli(prog_name="proseo")


if __name__ == "__main__":
    main()
