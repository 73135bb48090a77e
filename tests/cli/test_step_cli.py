"""``proseo order steps|step``: why a step failed, what it was given, its job spec (both backends)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import loaded_from_catalog
from proseo.cli.main import cli
from proseo.devtools.generate import write_inputs
from proseo.execution import steptask
from proseo.wrapper.spec import JobSpec

from tests_paths import MISSION_DIR
from tests_registration import run_step

NIGHT = datetime(2025, 3, 1, tzinfo=UTC)


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False)


@pytest.fixture
def night(catalog: Catalog, data_dirs, tmp_path: Path) -> dict[str, int]:
    """SKY with a night of exposures; order n1 (the g stack) released, its calibration run."""
    url = catalog.url
    assert run(url, "mission", "load", str(MISSION_DIR / "sky.yaml")).exit_code == 0
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "SKY")
    files = write_inputs(mission, NIGHT, NIGHT + timedelta(days=1), tmp_path / "in", size=256)
    assert run(url, "product", "ingest", "--mission", "SKY", *map(str, files)).exit_code == 0
    created = run(
        url, "order", "create", "-m", "SKY", "--id", "n1", "--class", "STACK_G",
        "--start", NIGHT.isoformat(), "--stop", (NIGHT + timedelta(days=1)).isoformat(), "--release",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    listed = json.loads(run(url, "order", "steps", "-m", "SKY", "n1", "--format", "json").output)
    steps = {s["product_type"]: s["id"] for s in listed["items"]}
    run_step(catalog, steps["CALEXP_G"])
    return steps


def test_a_failed_step_says_why_from_the_command_line(catalog: Catalog, night: dict[str, int]) -> None:
    with catalog.session() as s:
        steptask.fail_step(s, night["STACK_G"], "processing: exit code 140 (out of memory)", exit_code=140)
    failed = json.loads(
        run(catalog.url, "order", "steps", "-m", "SKY", "n1", "--state", "FAILED", "--format", "json").output
    )
    assert [(s["id"], s["exit_code"], s["failure_reason"]) for s in failed["items"]] == [
        (night["STACK_G"], 140, "processing: exit code 140 (out of memory)")
    ]
    shown = run(catalog.url, "order", "show", "-m", "SKY", "n1")
    assert shown.exit_code == 0 and "failed job steps" in shown.output
    assert "exit code 140 (out of memory)" in shown.output
    table = run(catalog.url, "order", "steps", "-m", "SKY", "n1").output
    assert "COMPLETED" in table and "FAILED" in table and "140" in table


def test_a_step_shows_its_inputs_and_prints_its_job_spec(catalog: Catalog, night: dict[str, int]) -> None:
    stack = night["STACK_G"]
    detail = json.loads(
        run(catalog.url, "order", "step", "-m", "SKY", "n1", str(stack), "--format", "json").output
    )
    made = [c for i in detail["inputs"] for c in i["chosen"] if c["via_job_step"] == night["CALEXP_G"]]
    assert len(made) == 1 and made[0]["name"].startswith("SKY_NIGHTLY_CALEXP_G_")
    text = run(catalog.url, "order", "step", "-m", "SKY", "n1", str(stack)).output
    assert f"from job step {night['CALEXP_G']}" in text and "planned outputs" in text
    printed = run(catalog.url, "order", "step", "-m", "SKY", "n1", str(stack), "--spec")
    spec = JobSpec.model_validate_json(printed.output)  # what proseo-wrapper run takes
    assert {f.product_id for f in spec.inputs} == {made[0]["product_id"]}
    assert [o.product_type for o in spec.outputs] == ["STACK_G"]
    missing = run(catalog.url, "order", "step", "-m", "SKY", "n1", "999999")
    assert missing.exit_code == 3 and "has no job step 999999" in missing.stderr
