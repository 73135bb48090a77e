"""Gap analysis and the dry run of campaigns on a real catalogue (SQLite and PostgreSQL).

Day 1 goes through, day 2's L0 band 1 is withheld (its steps wait, then the run gives up),
day 3's processor crashes. The dry run says so before the start; the gap report after the
run gives each gap its reason; a retry of just the gaps, once the L0 is in, fills them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_campaign import CampaignState
from proseo.missions import load_mission
from proseo.planning import campaign as camp
from proseo.planning.campaign_dryrun import dry_run
from proseo.planning.campaign_gaps import INPUT_MISSING, NOT_STARTED, STEP_FAILED, gap_report
from proseo.planning.campaign_spec import parse_campaign
from tests_campaign import AUX, L0, finish, ingest, order_rows, run_order

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)
D = timedelta(days=1)


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


SPEC = {
    "name": "gaps",
    "requested_classes": ["L1B_______"],
    "start": DAY.isoformat(),
    "stop": (DAY + 3 * D).isoformat(),
    "window": {"max_active_orders": 3},
    "output_parameters": {"*": {"collection": 4}},
}


def test_dry_run_gap_report_and_retry_of_the_gaps(s5p: Catalog, tmp_path: Path) -> None:
    ingest(s5p, DAY - D, DAY + 4 * D, tmp_path, AUX)
    ingest(s5p, DAY - D, DAY + D, tmp_path, L0)
    ingest(s5p, DAY + 2 * D, DAY + 4 * D, tmp_path, L0)
    ingest(s5p, DAY + D, DAY + 2 * D, tmp_path, L0 - {"L0__ODB_1_"})  # day 2: band 1 withheld
    spec = parse_campaign(SPEC)
    with s5p.session() as s:
        sized = dry_run(s, "S5P", spec)
    assert sized.units == 3 and sized.orders == 3
    l1b = next(c for c in sized.classes if c.product_type == "L1B_______")
    assert l1b.requested and l1b.slices == l1b.steps > 40 and l1b.existing == 0
    assert l1b.duration_source.startswith("assumed") and l1b.seconds_per_step == 3600  # max_run_time 2h / 2
    missing = {(m.product_type, m.input_type): m for m in sized.missing}
    assert list(missing) == [("L1B_______", "L0__ODB_1_")]
    # Day 2's orbits, but those crossing midnight (delivered with day 1 and day 3).
    assert 12 <= missing[("L1B_______", "L0__ODB_1_")].slices <= 14
    assert sized.serial_seconds == l1b.steps * 3600 and sized.wall_seconds == sized.serial_seconds / 2
    with s5p.session() as s:
        camp.create_campaign(s, "S5P", spec)
        cid = camp.get_campaign(s, "S5P", "gaps").id
        before = gap_report(s, "S5P", "gaps")
    assert before.produced == 0 and {g.reason for g in before.gaps} == {NOT_STARTED}

    started = camp.start_campaign(s5p, "S5P", "gaps")
    assert started.released == ["gaps_20250301", "gaps_20250302", "gaps_20250303"], started
    run_order(s5p, "gaps_20250301")
    run_order(s5p, "gaps_20250302")  # band 1 never comes: its steps wait ...
    finish(s5p, "gaps_20250302", "input timeout")  # ... until the run gives up
    run_order(s5p, "gaps_20250303", fail={"L1B_______"})
    assert camp.campaign_pass(s5p, "S5P", "gaps").state == CampaignState.COMPLETED.value
    with s5p.session() as s:
        report = gap_report(s, "S5P", "gaps")
    by_unit = {c.unit: c for c in report.cells}
    assert by_unit["20250301"].missing == 0 and by_unit["20250301"].produced > 10
    day2 = [g for g in report.gaps if g.part == "20250302"]
    day3 = [g for g in report.gaps if g.part == "20250303"]
    assert day2 and all(g.reason == INPUT_MISSING and "L0__ODB_1_" in g.detail for g in day2), day2[:2]
    assert day3 and all(g.reason == STEP_FAILED and "code 139" in g.detail for g in day3), day3[:2]
    assert report.expected == report.produced + len(report.gaps)

    # Band 1 of day 2 arrives; the crash is fixed. Only the failed units are ordered again.
    ingest(s5p, DAY + D, DAY + 2 * D, tmp_path, {"L0__ODB_1_"})
    retried = camp.retry_gaps(s5p, "S5P", "gaps")
    assert retried.created == ["gaps_20250302_r1", "gaps_20250303_r1"], retried
    run_order(s5p, "gaps_20250302_r1")
    run_order(s5p, "gaps_20250303_r1")
    assert camp.campaign_pass(s5p, "S5P", "gaps").state == CampaignState.COMPLETED.value
    with s5p.session() as s:
        after = gap_report(s, "S5P", "gaps")
    # A product in the catalogue wins over the stale failures of the first attempts.
    assert after.gaps == [] and after.produced == after.expected == report.expected
    states = {o.identifier: o.state for o in order_rows(s5p, cid)}
    assert states["gaps_20250302"] == "FAILED" and states["gaps_20250302_r1"] == "COMPLETED"


def test_a_days_l3_gap_names_the_l0_its_orbit_order_missed(s5p: Catalog, tmp_path: Path) -> None:
    """The L3 waits for L2 another order of the unit plans: its gap follows that binding to the L0."""
    ingest(s5p, DAY - D, DAY + 2 * D, tmp_path, AUX)
    ingest(s5p, DAY - D, DAY + 2 * D, tmp_path, L0 - {"L0__ODB_1_"})
    ingest(s5p, DAY - D, DAY, tmp_path, {"L0__ODB_1_"})  # band 1 withheld from the day's own orbits
    spec = parse_campaign(
        {**SPEC, "requested_classes": ["L2__NO2___", "L3__NO2___"], "stop": (DAY + D).isoformat()}
    )
    with s5p.session() as s:
        camp.create_campaign(s, "S5P", spec)
    started = camp.start_campaign(s5p, "S5P", "gaps")
    assert started.released == ["gaps_20250301_orbits", "gaps_20250301_period"], started
    for order in started.released:
        run_order(s5p, order)  # nothing can run: band 1 never comes ...
        finish(s5p, order, "input timeout")  # ... until the runs give up
    with s5p.session() as s:
        report = gap_report(s, "S5P", "gaps")
    (l3,) = [g for g in report.gaps if g.product_type == "L3__NO2___"]
    assert l3.reason == INPUT_MISSING and "L0__ODB_1_" in l3.detail, l3
    assert {g.reason for g in report.gaps} == {INPUT_MISSING} and report.produced == 0
