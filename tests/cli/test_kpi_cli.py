"""``proseo kpi timeliness`` over a catalogue with produced products of known delays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from proseo.catalog.db import Catalog
from proseo.catalog.kpi import human_duration
from proseo.cli.main import cli
from tests_kpi import DELAYS, KpiWorld, kpi_world


@pytest.fixture
def world(catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path) -> KpiWorld:
    return kpi_world(catalog, tmp_path)


def run(world: KpiWorld, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", world.catalog.url, "kpi", "timeliness", *args])


def test_json_lists_every_product_and_the_aggregates(world: KpiWorld) -> None:
    result = run(world, "-m", "SKY", "--by", "month", "--products", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["total"] == 4 and doc["categories"] == {"NRT": 7200.0, "STANDARD": 86400.0}
    delays = {p["id"]: (p["sensing_to_publication_s"], p["raw_to_publication_s"]) for p in doc["products"]}
    assert delays == {pid: DELAYS[key] for key, pid in world.products.items()}
    assert [(a["product_type"], a["bucket"], a["count"], a["on_time_ratio"]) for a in doc["aggregates"]] == [
        ("CALEXP_G", "2025-03-01T00:00:00Z", 2, 1.0),
        ("CALEXP_R", "2025-03-01T00:00:00Z", 2, 0.5),
    ]
    assert doc["aggregates"][0]["sensing_to_publication_s"]["p50"] == 4500.0
    # Paged through one product at a time by --limit/--offset, the same products.
    one = json.loads(
        run(world, "-m", "SKY", "--products", "--limit", "1", "--offset", "3", "--format", "json").output
    )
    assert [p["id"] for p in one["products"]] == [doc["products"][3]["id"]]


def test_table_shows_delays_for_people(world: KpiWorld) -> None:
    result = run(world, "-m", "SKY", "--class", "CALEXP_R", "--products", "--since", "2025-03-02T00:00:00Z")
    assert result.exit_code == 0, result.output
    assert "SKY timeliness (after sensing_stop): NRT 2h00m00s, STANDARD 1d00h00m" in result.output
    assert "SKY timeliness per day: 2 products" in result.output
    assert "1/1 100.0%" in result.output and "0/1 0.0%" in result.output
    assert "2h30m00s" in result.output and "LATE" in result.output and "CALEXP_G" not in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("-m", "NOPE"), 3, "error: mission 'NOPE' is not in the catalogue"),
        (("-m", "SKY", "--class", "L2X"), 3, "error: mission SKY: no product class 'L2X'"),
        (("-m", "SKY", "--since", "yesterday"), 1, "error: --since: invalid time 'yesterday'"),
        (("-m", "SKY", "--since", "2025-03-02", "--until", "2025-03-01"), 1, "must be before until"),
        (("-m", "SKY", "--by", "week"), 2, "Invalid value for '--by'"),
    ],
)
def test_bad_input_is_one_clear_line(world: KpiWorld, args: tuple[str, ...], code: int, message: str) -> None:
    result = run(world, *args)
    assert result.exit_code == code and message in result.output, result.output
    assert "Traceback" not in result.output


def test_durations_read_like_durations() -> None:
    assert [human_duration(v) for v in (None, 0.4, 59, 61, 3600, 5400.6, 90000, -30)] == [
        "",
        "0s",
        "59s",
        "1m01s",
        "1h00m00s",
        "1h30m01s",
        "1d01h00m",
        "-30s",
    ]
