"""``proseo order``: create, plan, steer and draw orders from the command line (both backends)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from proseo.cli.main import cli

from tests_paths import MISSION_DIR


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False)


@pytest.fixture
def url(catalog_url: str, data_dirs) -> str:
    assert run(catalog_url, "mission", "load", *map(str, sorted(MISSION_DIR.glob("*.yaml")))).exit_code == 0
    return catalog_url


def test_create_release_show_list_and_graph(url: str, tmp_path: Path) -> None:
    created = run(
        url,
        "order",
        "create",
        "-m",
        "SKY",
        "--id",
        "n1",
        "--class",
        "SRC_CAT",
        "--start",
        "2025-03-02T00:00:00Z",
        "--stop",
        "2025-03-03T00:00:00Z",
        "--release",
    )
    assert created.exit_code == 0, created.output + created.stderr
    assert "planned SKY/n1: 5 job steps" in created.output and "released SKY/n1" in created.output
    shown = json.loads(run(url, "order", "show", "-m", "SKY", "n1", "--format", "json").output)
    assert shown["state"] == "RELEASED" and shown["plan"]["job_steps"] == 5
    assert shown["request"]["requested_classes"] == ["SRC_CAT"]
    assert [h["operation"] for h in shown["history"]] == [
        "create",
        "approve",
        "plan",
        "planned",
        "release",
        "released",
    ]
    assert shown["allowed_operations"] == ["suspend", "cancel"]
    listed = json.loads(run(url, "order", "list", "--format", "json").output)
    assert [(r["mission"], r["identifier"], r["job_steps"]) for r in listed] == [("SKY", "n1", 5)]

    text = run(url, "order", "graph", "-m", "SKY", "n1")
    assert text.exit_code == 0 and "SRC_CAT" in text.output and "CALEXP_G" in text.output
    assert "input-RAW_EXP" in text.output and "WAITING_INPUT" in text.output
    dot = run(url, "order", "graph", "-m", "SKY", "n1", "--format", "dot").output
    assert dot.lstrip().startswith("digraph") and dot.count("->") >= 4
    svg_file = tmp_path / "n1.svg"
    drawn = run(url, "order", "graph", "-m", "SKY", "n1", "--format", "svg", "-o", str(svg_file))
    assert drawn.exit_code == 0 and "nodes" in drawn.stderr
    root = ET.parse(svg_file).getroot()
    assert root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}g")) >= 5


def test_create_from_a_file_with_options_overriding(url: str, tmp_path: Path) -> None:
    request = tmp_path / "order.yaml"
    request.write_text(
        "identifier: l2-week\nrequested_classes: [L2__NO2___]\norbit_from: 37100\norbit_to: 37102\n"
        "processing_mode: OFFL\noutput_parameters: {'*': {collection: 2}}\npriority: 70\n"
    )
    result = run(url, "order", "create", "-m", "S5P", "--file", str(request), "--priority", "90")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(run(url, "order", "show", "-m", "S5P", "l2-week", "--format", "json").output)
    assert shown["request"]["priority"] == 90 and shown["request"]["processing_mode"] == "OFFL"
    planned = run(url, "order", "plan", "-m", "S5P", "l2-week")
    assert planned.exit_code == 0 and "9 job steps" in planned.output


def test_errors_name_the_field_the_state_or_the_bound(url: str, tmp_path: Path) -> None:
    bad = run(
        url,
        "order",
        "create",
        "-m",
        "S5P",
        "--id",
        "x",
        "--class",
        "L2__NO2___",
        "--start",
        "2025-03-02T00:00:00Z",
    )
    assert bad.exit_code == 2 and "give both start and stop" in bad.stderr
    unknown = run(
        url, "order", "create", "-m", "S5P", "--id", "x", "--class", "L2__NOPE__", "--orbits", "37000..37001"
    )
    assert (
        unknown.exit_code == 2 and "requested_classes: unknown product class 'L2__NOPE__'" in unknown.stderr
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("identifier: [not, text]\n")
    file_error = run(url, "order", "create", "-m", "S5P", "--file", str(broken))
    assert (
        file_error.exit_code == 2 and "broken.yaml" in file_error.stderr and "identifier" in file_error.stderr
    )

    assert (
        run(
            url,
            "order",
            "create",
            "-m",
            "S5P",
            "--id",
            "big",
            "--class",
            "L3__NO2___",
            "--start",
            "2025-03-01T00:00:00Z",
            "--stop",
            "2025-03-08T00:00:00Z",
            "--output-param",
            "*.collection=1",
        ).exit_code
        == 0
    )
    too_big = run(url, "order", "plan", "-m", "S5P", "big", "--max-steps", "50")
    assert too_big.exit_code == 1 and "split the period into at least" in too_big.stderr
    assert (
        json.loads(run(url, "order", "show", "-m", "S5P", "big", "--format", "json").output)["state"]
        == "PLANNING_FAILED"
    )
    illegal = run(url, "order", "close", "-m", "S5P", "big")
    assert illegal.exit_code == 4 and "cannot close an order in state PLANNING_FAILED" in illegal.stderr
    missing = run(url, "order", "show", "-m", "S5P", "nope")
    assert missing.exit_code == 3 and "S5P/nope: no such order" in missing.stderr
