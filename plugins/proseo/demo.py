"""``make demo``: a guided run of what proseo does today, on the embedded default.

It works in ``.demo/`` under the checkout (SQLite catalogue, file:// storage):
creates the catalogue, onboards both sample missions, generates a few days of
deliveries (S5P L0 and AUX, SKY raw exposures and calibrations), ingests them
through the CLI with progress bars, shows that a second ingest is a no-op, and
queries the catalogue, then creates one order per mission, plans it backwards
through the selection rules, shows its job-step graph (text, and SVG in .demo/) and
releases it. Running the orders on Airflow joins the demo with the orchestration.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from proseo.cli.output import console
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission

REPO = Path(__file__).resolve().parents[2]
START = datetime(2025, 3, 1, tzinfo=UTC)


def _proseo(*args: str) -> None:
    """Run a ``proseo`` command the way a user would, echoing it; stop on failure."""
    from proseo.cli.main import cli

    console.print(f"\n[bold cyan]$ proseo {' '.join(args)}[/bold cyan]")
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, color=True)
    sys.stderr.write(result.stderr)  # progress bars first, then the command's summary
    sys.stdout.write(result.stdout)
    if result.exit_code != 0:
        raise SystemExit(f"demo step failed (exit {result.exit_code}): proseo {' '.join(args)}")


def main() -> None:
    home = Path(os.environ.get("PROSEO_DEMO_HOME", REPO / ".demo"))
    if home.exists():
        shutil.rmtree(home)
    (home / "inbox").mkdir(parents=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "PROSEO_CATALOG_URL": f"sqlite:///{home / 'catalog.db'}",
            "PROSEO_DATA": str(home / "data"),
            "PROSEO_SCRATCH": str(home / "scratch"),
        }
    )
    t0 = time.perf_counter()
    console.rule("[bold]proseo demo: onboarding and ingestion")
    configs = [str(p) for p in sorted((REPO / "mission_configs").glob("*.yaml"))]
    _proseo("db", "upgrade")
    _proseo("mission", "validate", *configs)
    _proseo("mission", "load", *configs)
    _proseo("mission", "list")

    for code, days in (("S5P", 2), ("SKY", 3)):
        mission = load_mission(REPO / "mission_configs" / f"{code.lower()}.yaml")
        inbox = home / "inbox" / code
        files = write_inputs(mission, START, START + timedelta(days=days), inbox)
        console.print(f"\ngenerated {len(files)} {code} deliveries for {days} days in {inbox}")
        _proseo("product", "ingest", "--mission", code, "--progress", str(inbox))
    _proseo("product", "ingest", "--mission", "SKY", "--no-progress", str(home / "inbox" / "SKY"))
    _proseo("product", "query", "--mission", "S5P", "--class", "L0__ODB_1_", "--limit", "5")
    _proseo(
        "product",
        "query",
        "--mission",
        "SKY",
        "--class",
        "RAW_EXP",
        "--param",
        "filter=g",
        "--start",
        "2025-03-02T08:00:00Z",
        "--stop",
        "2025-03-02T10:00:00Z",
    )
    _proseo("mission", "show", "SKY")

    console.rule("[bold]orders: backward planning through the selection rules")
    _proseo(
        "rule",
        "eval",
        "--mission",
        "SKY",
        "--class",
        "CALEXP_G",
        "--start",
        "2025-03-02T00:00:00Z",
        "--stop",
        "2025-03-03T00:00:00Z",
        "--explain",
    )
    _proseo(
        "order",
        "create",
        "--mission",
        "S5P",
        "--id",
        "no2-daily",
        "--class",
        "L3__NO2___",
        "--start",
        "2025-03-01T00:00:00Z",
        "--stop",
        "2025-03-02T00:00:00Z",
        "--mode",
        "OFFL",
        "--output-param",
        "*.collection=1",
        "--plan",
    )
    _proseo(
        "order",
        "create",
        "--mission",
        "SKY",
        "--id",
        "nights",
        "--class",
        "SRC_CAT",
        "--start",
        "2025-03-01T00:00:00Z",
        "--stop",
        "2025-03-04T00:00:00Z",
        "--plan",
    )
    _proseo("order", "graph", "--mission", "SKY", "nights")
    for code, ident in (("S5P", "no2-daily"), ("SKY", "nights")):
        _proseo(
            "order", "graph", "--mission", code, ident, "--format", "svg", "-o", str(home / f"{ident}.svg")
        )
        _proseo("order", "release", "--mission", code, ident)
    _proseo("order", "list")
    console.rule(f"[bold green]demo finished in {time.perf_counter() - t0:.1f} s")
    console.print(f"catalogue: {home / 'catalog.db'}\nproducts:  {home / 'data'}")
    console.print(f"job-step graphs: {home / 'no2-daily.svg'}, {home / 'nights.svg'}")


if __name__ == "__main__":
    main()
