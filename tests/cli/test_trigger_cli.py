"""``proseo trigger list|fire``: a mission's triggers and their state, and a pass by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import loaded_from_catalog
from proseo.cli.main import cli
from proseo.devtools.generate import write_inputs

from tests_paths import MISSION_DIR

ORBIT = 37100


def run(catalog: Catalog, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog.url, *args])


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    result = run(catalog, "mission", "load", str(MISSION_DIR / "s5p.yaml"))
    assert result.exit_code == 0, result.output
    return catalog


def test_fire_by_hand_orders_what_arrived_and_list_shows_it(s5p: Catalog, tmp_path: Path) -> None:
    listed = json.loads(run(s5p, "trigger", "list", "-m", "S5P", "--format", "json").output)
    assert sorted(r["trigger"] for r in listed) == ["l3_day", "l3_day_catchup", "orbit_nrti", "orbit_offl"]
    assert all(r["fired"] == 0 and r["last_fired_at"] is None for r in listed)
    with s5p.session() as s:
        loaded = loaded_from_catalog(s, "S5P")
    orbit = next(o for o in loaded.orbits["S5P"] if o.number == ORBIT)
    inbox = tmp_path / "inbox"
    write_inputs(loaded, orbit.start, orbit.stop, inbox, classes={"L0__ODB_1_"})
    ingested = run(s5p, "product", "ingest", "--mission", "S5P", str(inbox))
    assert ingested.exit_code == 0, ingested.output

    fired = run(s5p, "trigger", "fire", "-m", "S5P")
    assert fired.exit_code == 0, fired.output
    assert f"+ orbit_nrti_o{ORBIT}" in fired.output and "orbit_nrti: 1 order(s) created" in fired.output
    again = json.loads(run(s5p, "trigger", "fire", "-m", "S5P", "--format", "json").output)
    assert again["created"] == [] and again["failed"] == []

    table = run(s5p, "trigger", "list", "-m", "S5P")
    assert table.exit_code == 0 and "orbit_nrti" in table.output and "(disabled)" in table.output
    rows = {
        r["trigger"]: r
        for r in json.loads(run(s5p, "trigger", "list", "-m", "S5P", "--format", "json").output)
    }
    assert rows["orbit_nrti"]["orders_created"] == 1 and rows["orbit_nrti"]["orders_active"] == 1
    assert rows["orbit_nrti"]["last_fired_at"] is not None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("trigger", "list", "-m", "NOPE"), 3, "mission 'NOPE' is not in the catalogue"),
        (("trigger", "fire", "-m", "NOPE"), 3, "mission 'NOPE' is not in the catalogue"),
        (("trigger", "fire", "-m", "S5P", "--now", "soon"), 1, "--now: invalid time 'soon'"),
    ],
)
def test_bad_input_is_one_line_naming_it(
    s5p: Catalog, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(s5p, *args)
    assert result.exit_code == code, result.output
    assert message in result.output
