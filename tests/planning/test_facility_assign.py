"""The facility choice at release, on the catalogue (SQLite and PostgreSQL): data locality,
deadline and cost each deciding, the reason stored on the step and followed by the job
spec and the DAG blueprint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from proseo.api.schemas import job_steps
from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import Facility
from proseo.catalog.model_order import Job, JobStep
from proseo.cli.main import cli
from proseo.devtools.generate import write_inputs
from proseo.errors import OrderError
from proseo.execution.jobspec import build_job_spec
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.blueprint import read_blueprint
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR, without_triggers

T0 = datetime(2025, 3, 1, tzinfo=UTC)
SITE_B = """
  site_b:
    description: A second site with its own disks
    backend: local
    storage_url: file://${PROSEO_DATA:-/tmp/proseo/data}/SKY_B
    scratch_path: ${PROSEO_SCRATCH:-/tmp/proseo/scratch}/SKY_B
    max_concurrent_job_steps: 2
    cost_per_core_hour: 0.5
"""


@pytest.fixture
def sky(catalog: Catalog, data_dirs, tmp_path: Path) -> Catalog:
    """SKY with a second local facility (dearer) beside the default one (0.1 per core-hour)."""
    text = without_triggers((MISSION_DIR / "sky.yaml").read_text())
    text = text.replace(
        "    max_concurrent_job_steps: 2\n    default: true\n",
        "    max_concurrent_job_steps: 2\n"
        "    default: true\n    cost_per_core_hour: 0.1\n" + SITE_B.lstrip("\n"),
        1,
    )
    path = tmp_path / "sky.yaml"
    path.write_text(text)
    with catalog.session() as s:
        sync_mission(s, load_mission(path))
    return catalog


def _ingest(
    catalog: Catalog, tmp_path: Path, facility: str, start: datetime, days: int, size: int = 4096
) -> int:
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "SKY")
    files = write_inputs(
        mission, start, start + timedelta(days=days), tmp_path / f"in_{facility}_{start:%d}", size=size
    )
    assert Ingestor(catalog, mission, facility=facility).run(files).ok
    return sum(f.stat().st_size for f in files)


def _release(catalog: Catalog, identifier: str, start: datetime, days: int = 1, **fields) -> None:
    generated = fields.pop("generated", None)
    with catalog.session() as s:
        spec = OrderSpec(
            identifier=identifier,
            requested_classes=["CALEXP_G"],
            start=start,
            stop=start + timedelta(days=days),
            **fields,
        )
        orders.create_order(s, "SKY", spec, generated=generated)
    lifecycle.approve_order(catalog, "SKY", identifier)
    lifecycle.plan_order(catalog, "SKY", identifier)
    lifecycle.release_order(catalog, "SKY", identifier)


def _choices(catalog: Catalog, identifier: str) -> list[tuple[int, str | None, str | None, dict | None]]:
    with catalog.session() as s:
        order = orders.get_order(s, "SKY", identifier)
        rows = s.execute(
            select(JobStep.id, Facility.name, JobStep.facility_reason, JobStep.facility_scores)
            .join(Job, Job.id == JobStep.job_id)
            .outerjoin(Facility, Facility.id == JobStep.facility_id)
            .where(Job.order_id == order.id)
            .order_by(JobStep.id)
        ).all()
    return [tuple(r) for r in rows]


def test_data_locality_decides_and_the_step_runs_there(sky: Catalog, tmp_path: Path) -> None:
    # Inputs big enough to matter (the policy ignores differences under 1 MiB).
    _ingest(sky, tmp_path, "site_b", T0, 1, size=1 << 18)
    _release(sky, "near_data", T0, facilities=["local", "site_b"])
    [(step_id, facility, reason, scores)] = _choices(sky, "near_data")
    # Cheaper at local, but every input is stored at site_b.
    assert facility == "site_b"
    assert reason.startswith("data locality: ") and "stored at site_b (0 B to copy)" in reason
    assert "local would copy" in reason
    figs = scores["candidates"]
    assert figs["site_b"]["copy_bytes"] == 0 and figs["local"]["copy_bytes"] == scores["input_bytes"] > 0
    with sky.session() as s:
        ctx = build_job_spec(s, step_id)
        assert ctx.facility == "site_b" and ctx.pool == "proseo__sky__site_b"
        assert ctx.spec.output_storage == "site_b"
        order = orders.get_order(s, "SKY", "near_data")
        bp = read_blueprint(order.dag_blueprint, order="SKY/near_data")
        assert bp.facility == "local"  # the order's own (its first) facility
        assert bp.levels[0].elsewhere == {"site_b": [step_id]}
        assert bp.places["site_b"].pool == "proseo__sky__site_b" and bp.places["site_b"].backend == "local"
        # The request reads back as it was given.
        assert orders.spec_of(s, order).facilities == ["local", "site_b"]
        # The REST job-step view (and `proseo order steps --format json`) shows the choice.
        [view] = job_steps(s, order).items
        assert (view.facility, view.facility_reason) == ("site_b", reason)
        assert view.facility_scores == scores
    result = CliRunner().invoke(
        cli, ["--catalog", sky.url, "order", "steps", "-m", "SKY", "near_data", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["items"][0]["facility_reason"] == reason
    table = CliRunner().invoke(cli, ["--catalog", sky.url, "order", "steps", "-m", "SKY", "near_data"])
    assert table.exit_code == 0 and "site_b" in table.output and "why there" in table.output, table.output


def test_deadline_decides_for_the_less_loaded_facility_even_if_dearer(sky: Catalog, tmp_path: Path) -> None:
    # Four days of steps released at local (2 slots): two waves of CALIB (1.5 h each) ahead.
    _ingest(sky, tmp_path, "local", T0 + timedelta(days=10), 4)
    _release(sky, "busy", T0 + timedelta(days=10), days=4)
    assert all(f is None for _, f, _, _ in _choices(sky, "busy"))  # one facility: nothing chosen
    now = datetime.now(UTC)
    _release(
        sky,
        "urgent",
        T0 + timedelta(days=20),
        facilities=["local", "site_b"],
        generated={"deadline": now + timedelta(hours=3)},
    )
    [(_, facility, reason, scores)] = _choices(sky, "urgent")
    assert facility == "site_b"
    assert reason.startswith("deadline: slack ") and "local in 4.5 h (queue 4 on 2 slots)" in reason
    assert "dearer than local" in reason
    assert (
        scores["candidates"]["local"]["queue"] == 4
        and scores["candidates"]["local"]["meets_deadline"] is False
    )
    # The same order without a deadline goes where it is cheaper, queue or not.
    _release(sky, "relaxed", T0 + timedelta(days=21), facilities=["local", "site_b"])
    [(_, facility, reason, _)] = _choices(sky, "relaxed")
    assert facility == "local" and reason.startswith("cost: 0.30 for 3 core-hours at local; site_b 1.50")


def test_an_order_spreads_over_facilities_as_it_fills_them(sky: Catalog, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _release(
        sky,
        "month",
        T0 + timedelta(days=40),
        days=6,
        facilities=["local", "site_b"],
        generated={"deadline": now + timedelta(hours=3)},
    )
    chosen = _choices(sky, "month")
    # Each choice joins its facility's queue (2 slots each, 1.5 h per step, 3 h of slack): two
    # steps fit at the cheaper local, the next two only at site_b; then neither meets the
    # deadline, both finish alike, and the cheaper one takes the rest.
    assert [f for _, f, _, _ in chosen] == ["local", "local", "site_b", "site_b", "local", "local"]
    assert [r.split(":")[0] for _, _, r, _ in chosen] == [
        "cost",
        "cost",
        "deadline",
        "deadline",
        "cost",
        "cost",
    ]


def test_unknown_and_doubled_facilities_are_refused(sky: Catalog) -> None:
    with pytest.raises(OrderError, match="facilities: unknown facility 'nowhere'"):
        _release(sky, "bad", T0, facilities=["local", "nowhere"])
    with pytest.raises(ValueError, match="listed more than once"):
        OrderSpec(
            identifier="x",
            requested_classes=["CALEXP_G"],
            start=T0,
            stop=T0 + timedelta(days=1),
            facilities=["local", "local"],
        )
    with pytest.raises(ValueError, match="'facility' or 'facilities', not both"):
        OrderSpec(
            identifier="x",
            requested_classes=["CALEXP_G"],
            start=T0,
            stop=T0 + timedelta(days=1),
            facility="local",
            facilities=["site_b"],
        )


def test_a_trigger_names_several_facilities_for_its_orders(tmp_path: Path) -> None:
    from proseo.errors import ConfigError
    from proseo.planning.slicing import Slice
    from proseo.planning.trigger_orders import Wanted, spec_for

    text = (MISSION_DIR / "sky.yaml").read_text()
    night = "    timeliness: NIGHTLY\n    priority: 70\n"
    good = tmp_path / "good.yaml"
    good.write_text(text.replace(night, night + "    facilities: [observatory_hpc, local]\n", 1))
    cfg = load_mission(good).config
    spec = spec_for(cfg, cfg.triggers["night"], Wanted("night", Slice(T0, T0 + timedelta(days=1))))
    assert spec.facilities == ["observatory_hpc", "local"] and spec.facility is None
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(night, night + "    facilities: [local, nowhere]\n", 1))
    with pytest.raises(ConfigError, match=r"triggers\.night\.facilities\[1\]: unknown facility 'nowhere'"):
        load_mission(bad)


def test_a_resumed_order_decides_again_only_for_steps_that_did_not_start(
    sky: Catalog, tmp_path: Path
) -> None:
    from tests_registration import register_planned

    _ingest(sky, tmp_path, "site_b", T0 + timedelta(days=62), 1)  # the third night's inputs
    now = datetime.now(UTC)
    _release(
        sky,
        "resumed",
        T0 + timedelta(days=60),
        days=6,
        facilities=["local", "site_b"],
        generated={"deadline": now + timedelta(hours=3)},
    )
    before = _choices(sky, "resumed")
    done_id, done_facility, done_reason, _ = before[2]
    assert done_facility == "site_b"
    register_planned(sky, done_id, facility="site_b")  # the step ran there and completed
    lifecycle.suspend_order(sky, "SKY", "resumed")
    lifecycle.resume_order(sky, "SKY", "resumed")
    after = {sid: (f, r) for sid, f, r, _ in _choices(sky, "resumed")}
    assert after[done_id] == (done_facility, done_reason)  # kept as it ran
    # The five others were decided again, the completed one no longer in anyone's queue.
    assert [after[sid][0] for sid, *_ in before if sid != done_id] == [
        "local",
        "local",
        "site_b",
        "site_b",
        "local",
    ]
