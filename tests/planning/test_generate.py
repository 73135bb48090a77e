"""Systematic production in the catalogue: triggers make, plan and release orders by themselves.

Real deliveries are ingested into a real catalogue (SQLite and PostgreSQL); the
generator is asked as the trigger DAGs ask it. Job steps are completed by
registering their planned outputs as a successful run would.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import Job, JobStep, OrderState, ProcessingOrder, StepState, TriggerState
from proseo.catalog.model_product import Product
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.planning import generate, lifecycle, orders
from proseo.planning.readiness import refresh_many
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR
from tests_registration import register_planned

ORBIT = 37100
CHAIN = ["L1B_______", "L2__CLOUD_", "L2__NO2___", "L2__O3____", "L2__CH4___"]


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


def _orbits(catalog: Catalog, mission: str = "S5P"):
    with catalog.session() as s:
        return {o.number: o for o in loaded_from_catalog(s, mission).orbits[mission]}


def _ingest(catalog: Catalog, mission: str, start, stop, tmp: Path, classes=None) -> list[int]:
    with catalog.session() as s:
        loaded = loaded_from_catalog(s, mission)
    files = write_inputs(loaded, start, stop, tmp / f"in-{uuid.uuid4().hex[:6]}", classes=classes, size=64)
    report = Ingestor(catalog, loaded).run(files)
    assert report.ok
    with catalog.session() as s:
        return list(s.scalars(select(Product.id).where(Product.job_step_id.is_(None)).order_by(Product.id)))


def _orders(catalog: Catalog) -> dict[str, ProcessingOrder]:
    with catalog.session() as s:
        rows = s.scalars(select(ProcessingOrder).order_by(ProcessingOrder.id)).all()
        for r in rows:
            s.expunge(r)
    return {r.identifier: r for r in rows}


def _steps(catalog: Catalog, identifier: str) -> list[tuple[str, datetime, datetime, str]]:
    with catalog.session() as s:
        return sorted(
            s.execute(
                select(ProductClass.product_type, JobStep.start_time, JobStep.stop_time, JobStep.state)
                .join(JobStep, JobStep.product_class_id == ProductClass.id)
                .join(Job, Job.id == JobStep.job_id)
                .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
                .where(ProcessingOrder.identifier == identifier)
            ).all()
        )


def test_an_orbits_first_l0_orders_its_chain_once(s5p: Catalog, tmp_path: Path) -> None:
    orbit = _orbits(s5p)[ORBIT]
    ids = _ingest(s5p, "S5P", orbit.start, orbit.stop, tmp_path, classes={"L0__ODB_1_"})
    fired = generate.fire_on_products(s5p, "S5P", ids)
    assert fired.created == [f"orbit_nrti_o{ORBIT}"] and fired.failed == []
    assert fired.released == [f"orbit_nrti_o{ORBIT}"]
    order = _orders(s5p)[f"orbit_nrti_o{ORBIT}"]
    assert order.state == OrderState.RELEASED.value and order.trigger == "orbit_nrti"
    assert order.processing_mode == "NRTI" and order.priority == 80 and order.timeliness == "NRTI"
    assert order.production_type == "SYSTEMATIC" and order.generation_key and len(order.generation_key) == 64
    assert order.deadline == orbit.stop + timedelta(hours=3)
    assert order.orbit_from == order.orbit_to == ORBIT
    assert sorted({t for t, *_ in _steps(s5p, order.identifier)}) == CHAIN[:1] + sorted(CHAIN[1:])

    # The orbit's other L0 files, the same event again, and the catch-up scan: no second order.
    more = _ingest(s5p, "S5P", orbit.start, orbit.stop, tmp_path, classes={"L0__ODB_4_", "L0__ODB_6_"})
    again = generate.fire_on_products(s5p, "S5P", more)
    missed = generate.fire_missed(s5p, "S5P")
    assert again.created == [] and missed.created == []
    assert next(f for f in again.fired if f.trigger == "orbit_nrti").existing == 1
    assert list(_orders(s5p)) == [f"orbit_nrti_o{ORBIT}"]
    with s5p.session() as s:
        state = s.scalars(select(TriggerState).where(TriggerState.trigger == "orbit_nrti")).one()
        assert state.fired == 1 and state.orders_created == 1 and state.last_fired_at is not None


def test_a_triggered_order_plans_what_the_same_order_by_hand_plans(s5p: Catalog, tmp_path: Path) -> None:
    orbit = _orbits(s5p)[ORBIT]
    ids = _ingest(s5p, "S5P", orbit.start, orbit.stop, tmp_path, classes={"L0__ODB_1_"})
    generate.fire_on_products(s5p, "S5P", ids)
    spec = OrderSpec(
        identifier="by-hand",
        requested_classes=CHAIN,
        processing_mode="NRTI",
        orbit_from=ORBIT,
        orbit_to=ORBIT,
        output_parameters={"*": {"collection": 3}},
    )
    with s5p.session() as s:
        orders.create_order(s, "S5P", spec)
    lifecycle.approve_order(s5p, "S5P", "by-hand")
    lifecycle.plan_order(s5p, "S5P", "by-hand")
    by_trigger = [(t, a, b) for t, a, b, _ in _steps(s5p, f"orbit_nrti_o{ORBIT}")]
    by_hand = [(t, a, b) for t, a, b, _ in _steps(s5p, "by-hand")]
    assert by_trigger == by_hand and len(by_hand) == 5


def test_racing_generators_make_one_order(s5p: Catalog, tmp_path: Path) -> None:
    if s5p.url.startswith("sqlite"):
        pytest.skip("SQLite takes one writer at a time; the race is PostgreSQL's (its unique index decides)")
    orbit = _orbits(s5p)[ORBIT]
    ids = _ingest(s5p, "S5P", orbit.start, orbit.stop, tmp_path, classes={"L0__ODB_1_"})
    results: list[generate.Pass] = []
    errors: list[BaseException] = []

    def fire() -> None:
        try:
            results.append(generate.fire_on_products(Catalog(s5p.url), "S5P", ids))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(len(r.created) for r in results) == 1
    assert [o for o in _orders(s5p)] == [f"orbit_nrti_o{ORBIT}"]
    assert _orders(s5p)[f"orbit_nrti_o{ORBIT}"].state == OrderState.RELEASED.value


def _complete_order(catalog: Catalog, identifier: str) -> list[int]:
    """Refresh the inputs and register every step, level by level, as successful runs would."""
    made: list[int] = []
    for _ in range(4):
        with catalog.session() as s:
            steps = s.execute(
                select(JobStep.id, JobStep.state)
                .join(Job, Job.id == JobStep.job_id)
                .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
                .where(ProcessingOrder.identifier == identifier)
                .order_by(JobStep.id)
            ).all()
        open_ = [sid for sid, state in steps if state != StepState.COMPLETED.value]
        if not open_:
            break
        with catalog.session() as s:
            ready = {sid for sid, r in refresh_many(s, open_).items() if r.ready}
        for sid in open_:
            if sid in ready:
                made += register_planned(catalog, sid)
    return made


def test_the_days_l3_is_ordered_once_its_no2_orbits_are_in(s5p: Catalog, tmp_path: Path) -> None:
    day = datetime(2025, 3, 1, tzinfo=UTC)
    orbits = [o for o in _orbits(s5p).values() if o.stop > day and o.start < day + timedelta(days=1)]
    aux = {"AUX_MET_TP", "AUX_CTMFCT", "AUX_NISE__", "AUX_L1_CKD"}
    _ingest(s5p, "S5P", day - timedelta(hours=12), day + timedelta(days=1, hours=12), tmp_path, classes=aux)
    l0 = {"L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_"}
    ids = _ingest(s5p, "S5P", day, day + timedelta(days=1), tmp_path, classes=l0)
    fired = generate.fire_on_products(s5p, "S5P", ids)
    assert sorted(fired.created) == sorted(f"orbit_nrti_o{o.number}" for o in orbits)
    assert fired.failed == []
    l3 = next(f for f in fired.fired if f.trigger == "l3_day")
    assert l3.created == []

    produced: list[int] = []
    for n, o in enumerate(orbits):
        produced += _complete_order(s5p, f"orbit_nrti_o{o.number}")
        fired = generate.fire_on_products(s5p, "S5P", produced)
        l3 = next(f for f in fired.fired if f.trigger == "l3_day")
        if n < len(orbits) - 2:  # MINCOVER(90) of the day: not with two orbits missing
            assert l3.created == [] and any("MINCOVER(90)" in w for w in l3.waiting), l3
    made = [i for i in _orders(s5p) if i.startswith("l3_day_")]
    assert made == ["l3_day_20250301T000000_20250302T000000"]
    order = _orders(s5p)[made[0]]
    assert order.state == OrderState.RELEASED.value
    assert order.deadline == day + timedelta(days=1, hours=12)
    assert order.input_only_classes == ["L2__NO2___"]  # what it waited for, it never makes
    # It reads the orbits' L2, it does not plan them again.
    assert [t for t, *_ in _steps(s5p, made[0])] == ["L3__NO2___"]
    # The calendar safety net finds the same order and makes none.
    late = generate.fire_due(s5p, "S5P", now=utcnow() + timedelta(days=2))
    assert all(i.startswith("l3_day_catchup_") for i in late.created)
    assert "l3_day_catchup_20250301T000000_20250302T000000" not in late.created


def test_a_calendar_trigger_fires_once_per_period_across_restarts(s5p: Catalog) -> None:
    with s5p.session() as s:
        start = s.scalars(select(TriggerState.cursor)).first()
    assert start is None  # nothing fired yet: the cursor starts at the revision's load time
    loaded_at = utcnow()
    first = (loaded_at + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    if first - loaded_at > timedelta(days=1):
        first -= timedelta(days=1)

    def catchup(catalog: Catalog, now: datetime) -> list[str]:
        return [
            i for i in generate.fire_due(catalog, "S5P", now=now).created if i.startswith("l3_day_catchup")
        ]

    assert catchup(s5p, first - timedelta(seconds=1)) == []
    day_before = (first - timedelta(days=1)).strftime("%Y%m%dT000000")
    assert catchup(s5p, first) == [f"l3_day_catchup_{day_before}_{first:%Y%m%dT000000}"]
    assert catchup(s5p, first + timedelta(minutes=5)) == []
    restarted = Catalog(s5p.url)  # a new process: only the catalogue remembers
    assert catchup(restarted, first + timedelta(hours=23)) == []
    assert catchup(restarted, first + timedelta(days=1)) == [
        f"l3_day_catchup_{first:%Y%m%dT000000}_{first + timedelta(days=1):%Y%m%dT000000}"
    ]
    # Down for three days: the missed firings are caught up, each once.
    assert len(catchup(restarted, first + timedelta(days=4))) == 3
    assert catchup(restarted, first + timedelta(days=4)) == []


@pytest.fixture
def sky(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    return catalog


def test_a_night_is_ordered_once_its_exposures_stopped_arriving(sky: Catalog, tmp_path: Path) -> None:
    night = datetime(2025, 3, 4, tzinfo=UTC)
    _ingest(sky, "SKY", night, night + timedelta(hours=14), tmp_path, classes={"RAW_EXP"})
    arrived = utcnow()
    # Data triggers with `settle` are not fired by events, only by the scan.
    assert generate.fire_on_products(sky, "SKY", [1, 2, 3]).created == []
    waiting = generate.fire_missed(sky, "SKY", now=arrived + timedelta(minutes=30))
    assert waiting.created == [] and any("settling" in w for f in waiting.fired for w in f.waiting)
    done = generate.fire_missed(sky, "SKY", now=arrived + timedelta(hours=2, minutes=1))
    assert done.created == ["night_20250304T000000_20250305T000000"], done
    order = _orders(sky)["night_20250304T000000_20250305T000000"]
    assert order.processing_mode == "NIGHTLY" and order.timeliness == "NIGHTLY"
    assert arrived - timedelta(minutes=1) < order.deadline - timedelta(hours=12) <= arrived
    assert generate.fire_missed(sky, "SKY", now=arrived + timedelta(hours=3)).created == []
