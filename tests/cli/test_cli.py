"""The ``proseo`` command line, end to end on a real catalogue (both backends)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from proseo.cli.main import cli
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission

from tests_paths import MISSION_DIR, REPO

BROKEN = REPO / "tests" / "missions" / "broken"


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False)


def test_validate_samples_and_broken_files_without_a_catalogue() -> None:
    ok = CliRunner().invoke(cli, ["mission", "validate", *map(str, sorted(MISSION_DIR.glob("*.yaml")))])
    assert ok.exit_code == 0, ok.output
    assert "mission S5P" in ok.output and "mission SKY" in ok.output
    bad = CliRunner().invoke(cli, ["mission", "validate", str(BROKEN / "03_rule_unknown_class.yaml")])
    assert bad.exit_code == 2
    assert "03_rule_unknown_class.yaml:17: product_classes.L1.selection_rules[0].rule:" in bad.stderr
    assert "did you mean 'RAW'?" in bad.stderr


@pytest.mark.parametrize(
    ("name", "located"),
    [
        ("32_unknown_yaml_tag.yaml", ":6: mission.name: cannot read the value (tag tag:yaml.org,2002:python"),
        ("37_duration_beyond_the_calendar.yaml", ":15: spacecraft[0].orbits.generate.period: duration"),
        ("36_orbit_period_too_short.yaml", ":15: spacecraft[0].orbits.generate.period: a period of 0.001s"),
    ],
)
def test_validate_prints_one_located_error_never_a_traceback(name: str, located: str) -> None:
    result = CliRunner().invoke(cli, ["mission", "validate", str(BROKEN / name)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "(1 problem)" in result.stderr and f"{name}{located}" in result.stderr


def test_commands_refuse_an_unmigrated_catalogue(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = run(url, "mission", "list")
    assert result.exit_code == 1 and "run 'proseo db upgrade'" in result.stderr
    assert run(url, "db", "upgrade").exit_code == 0
    assert "already at schema" in run(url, "db", "upgrade").output
    assert run(url, "mission", "list").exit_code == 0


def test_load_is_idempotent_and_all_or_nothing(catalog_url: str, data_dirs) -> None:
    samples = [str(p) for p in sorted(MISSION_DIR.glob("*.yaml"))]
    # One good and one broken file: nothing at all is written.
    failed = run(
        catalog_url, "mission", "load", samples[0], str(BROKEN / "05_processor_without_version.yaml")
    )
    assert failed.exit_code == 2 and "has no version" in failed.stderr
    assert json.loads(run(catalog_url, "mission", "list", "--json").output) == []
    first = run(catalog_url, "mission", "load", *samples)
    assert first.exit_code == 0, first.output
    assert "S5P: created revision 1" in first.output and "SKY: created revision 1" in first.output
    again = run(catalog_url, "mission", "load", *samples)
    assert "S5P: unchanged (revision 1)" in again.output
    listed = {m["code"]: m for m in json.loads(run(catalog_url, "mission", "list", "--json").output)}
    assert listed["S5P"]["revision"] == 1 and listed["SKY"]["products"] == 0


def test_show_mission(catalog_url: str, data_dirs) -> None:
    run(catalog_url, "mission", "load", str(MISSION_DIR / "s5p.yaml"))
    text = run(catalog_url, "mission", "show", "S5P")
    assert text.exit_code == 0
    assert "L2__NO2___" in text.output and "L01B_02.10.00_2025.01" in text.output
    shown = json.loads(run(catalog_url, "mission", "show", "S5P", "--format", "json").output)
    assert shown["revision"] == 1 and shown["config"]["mission"]["code"] == "S5P"
    missing = run(catalog_url, "mission", "show", "NOPE")
    assert missing.exit_code == 3 and "'NOPE' is not in the catalogue" in missing.stderr


def test_ingest_and_query(catalog_url: str, data_dirs, tmp_path: Path) -> None:
    run(catalog_url, "mission", "load", str(MISSION_DIR / "sky.yaml"))
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    write_inputs(load_mission(MISSION_DIR / "sky.yaml"), t0, t0 + timedelta(days=1), tmp_path / "in")
    first = run(catalog_url, "product", "ingest", "--mission", "SKY", str(tmp_path / "in"))
    assert first.exit_code == 0, first.output + first.stderr
    assert "SKY: 37 new, 0 unchanged, 0 conflicts, 0 errors" in first.output
    again = run(catalog_url, "product", "ingest", "-m", "SKY", str(tmp_path / "in"), "--json")
    assert {o["status"] for o in json.loads(again.output)} == {"unchanged"}

    found = json.loads(
        run(
            catalog_url,
            "product",
            "query",
            "-m",
            "SKY",
            "--class",
            "RAW_EXP",
            "--param",
            "filter=r",
            "--start",
            "2025-03-01T10:00:00Z",
            "--stop",
            "2025-03-01T12:00:00Z",
            "--format",
            "json",
        ).output
    )
    assert found["total"] == 3  # exposures at 10:10, 10:50, 11:30 in r
    assert all(p["parameters"]["filter"] == "r" and len(p["files"]) == 1 for p in found["products"])
    table = run(catalog_url, "product", "query", "-m", "SKY", "--class", "CAL_FLAT")
    assert table.exit_code == 0 and "CAL_FLAT" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "yesterday"], "--start: invalid time 'yesterday'"),
        (["--param", "filter"], "expected KEY=VALUE"),
        (["--class", "NOPE"], "no product class 'NOPE'"),
    ],
)
def test_query_errors_are_clear(catalog_url: str, data_dirs, args: list[str], message: str) -> None:
    run(catalog_url, "mission", "load", str(MISSION_DIR / "sky.yaml"))
    result = run(catalog_url, "product", "query", "-m", "SKY", *args)
    assert result.exit_code != 0 and message in result.stderr


def test_ingest_conflict_exit_code(catalog_url: str, data_dirs, tmp_path: Path) -> None:
    run(catalog_url, "mission", "load", str(MISSION_DIR / "sky.yaml"))
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    (path,) = write_inputs(
        load_mission(MISSION_DIR / "sky.yaml"),
        t0,
        t0 + timedelta(days=1),
        tmp_path / "in",
        classes={"REF_CAT"},
    )
    assert run(catalog_url, "product", "ingest", "-m", "SKY", str(path)).exit_code == 0
    path.write_bytes(b"a different reference catalogue")
    result = run(catalog_url, "product", "ingest", "-m", "SKY", str(path))
    assert result.exit_code == 4 and "conflict" in result.stderr
