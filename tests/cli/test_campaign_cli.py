"""``proseo campaign``: create, dry run, start, show (progress), gaps, pause, cancel, list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from proseo.catalog.db import Catalog
from proseo.cli.main import cli
from tests_campaign import AUX, L0, ingest, run_order

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)


def run(catalog: Catalog, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog.url, *args])


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    result = run(catalog, "mission", "load", str(MISSION_DIR / "s5p.yaml"))
    assert result.exit_code == 0, result.output
    return catalog


def test_a_campaign_from_the_command_line(s5p: Catalog, tmp_path: Path) -> None:
    ingest(s5p, DAY - timedelta(days=1), DAY + timedelta(days=3), tmp_path, AUX | L0 - {"L0__ODB_4_"})
    request = tmp_path / "campaign.yaml"
    request.write_text(
        "name: cli1\nrequested_classes: [L1B_______]\nstart: 2025-03-01\nstop: 2025-03-03\n"
        "window: {max_active_orders: 1}\n"
    )
    bad = run(s5p, "campaign", "create", "-m", "S5P", "--file", str(request), "--priority", "90")
    assert bad.exit_code == 2 and "priority: 90 is not below systematic production" in bad.output

    sized = run(
        s5p, "campaign", "dryrun", "-m", "S5P", "--file", str(request), "--output-param", "collection=4"
    )
    assert sized.exit_code == 0, sized.output
    assert (
        "L1B_______" in sized.output and "L0__ODB_4_" in sized.output and "no order planned" in sized.output
    )
    doc = json.loads(
        run(s5p, "campaign", "dryrun", "-m", "S5P", "--file", str(request), "--format", "json").output
    )
    assert doc["orders"] == 2 and doc["missing"][0]["input_type"] == "L0__ODB_4_"

    created = run(
        s5p, "campaign", "create", "-m", "S5P", "--file", str(request), "--output-param", "collection=4"
    )
    assert created.exit_code == 0 and "2 order(s) to come" in created.output, created.output
    started = run(s5p, "campaign", "start", "-m", "S5P", "cli1")
    assert started.exit_code == 0 and "released: cli1_20250301" in started.output, started.output
    run_order(s5p, "cli1_20250301")  # band 4 is missing: its steps wait
    shown = run(s5p, "campaign", "show", "-m", "S5P", "cli1")
    assert shown.exit_code == 0 and "overall" in shown.output and "20250301" in shown.output, shown.output
    detail = json.loads(run(s5p, "campaign", "show", "-m", "S5P", "cli1", "--format", "json").output)
    assert detail["state"] == "RUNNING" and detail["progress"]["parts"] == 2
    assert [u["state"] for u in detail["progress"]["units"]] == ["RELEASED", "NOT_STARTED"]

    gaps = run(s5p, "campaign", "gaps", "-m", "S5P", "cli1")
    assert gaps.exit_code == 0 and "input missing" in gaps.output and "not yet started" in gaps.output
    report = json.loads(run(s5p, "campaign", "gaps", "-m", "S5P", "cli1", "--format", "json").output)
    assert report["produced"] == 0 and report["missing"] == report["expected"] > 20
    assert {"input missing", "not yet started"} == set(report["reasons"])

    assert run(s5p, "campaign", "pause", "-m", "S5P", "cli1").exit_code == 0
    wrong = run(s5p, "campaign", "pause", "-m", "S5P", "cli1")
    assert wrong.exit_code == 4 and "cannot pause a campaign in state PAUSED" in wrong.output
    cancelled = run(s5p, "campaign", "cancel", "-m", "S5P", "cli1")
    assert cancelled.exit_code == 0 and "cancelled: cli1_20250301" in cancelled.output, cancelled.output
    listed = json.loads(run(s5p, "campaign", "list", "--format", "json").output)
    assert [(r["name"], r["state"]) for r in listed] == [("cli1", "CANCELLED")]
    missing = run(s5p, "campaign", "show", "-m", "S5P", "nope")
    assert missing.exit_code == 3 and "no such campaign" in missing.output
