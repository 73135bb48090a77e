"""Backward planning of real orders of both sample missions, on SQLite and PostgreSQL.

Inputs are generated deliveries ingested for real; existing derived products are
catalogue rows as registration will write them. Each test plans through the order
service (one transaction) and checks the stored plan, not only the in-memory one.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ConfiguredProcessor, ProductClass
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryOutput,
    InputQueryProduct,
    Job,
    JobStep,
    JobStepEdge,
)
from proseo.catalog.model_product import Product
from proseo.catalog.products import product_identity
from proseo.devtools.generate import write_inputs
from proseo.errors import PlanTooLarge
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR, without_triggers

DAY = datetime(2025, 3, 1, tzinfo=UTC)
COLLECTION = {"*": {"collection": 3}}


def _onboard(catalog: Catalog, code: str) -> None:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / f"{code.lower()}.yaml"))


def _ingest(catalog: Catalog, code: str, start: datetime, stop: datetime, tmp: Path, classes=None) -> int:
    with catalog.session() as s:
        mission = loaded_from_catalog(s, code)
    files = write_inputs(mission, start, stop, tmp / f"in-{uuid.uuid4().hex[:6]}", classes=classes, size=256)
    report = Ingestor(catalog, mission).run(files)
    assert report.ok
    return len(files)


def _plan(catalog: Catalog, code: str, max_steps: int = 1000, **fields):
    spec = OrderSpec(identifier=fields.pop("identifier", "o1"), **fields)
    with catalog.session() as s:
        orders.create_order(s, code, spec)
    lifecycle.approve_order(catalog, code, spec.identifier)
    return lifecycle.plan_order(catalog, code, spec.identifier, max_steps=max_steps)


def _stored_steps(catalog: Catalog) -> list[tuple[str, str, datetime, datetime, str]]:
    with catalog.session() as s:
        rows = s.execute(
            select(
                ProductClass.product_type,
                JobStep.state,
                JobStep.start_time,
                JobStep.stop_time,
                ConfiguredProcessor.identifier,
            )
            .join(ProductClass, ProductClass.id == JobStep.product_class_id)
            .join(ConfiguredProcessor, ConfiguredProcessor.id == JobStep.configured_processor_id)
            .order_by(JobStep.id)
        ).all()
    return [tuple(r) for r in rows]


@pytest.fixture
def s5p(catalog: Catalog) -> Catalog:
    _onboard(catalog, "S5P")
    return catalog


@pytest.fixture
def sky(catalog: Catalog) -> Catalog:
    _onboard(catalog, "SKY")
    return catalog


def test_daily_l3_fans_in_the_orbits_of_its_day(s5p: Catalog, data_dirs, tmp_path: Path) -> None:
    _ingest(s5p, "S5P", DAY - timedelta(hours=3), DAY + timedelta(days=1, hours=3), tmp_path)
    plan = _plan(
        s5p,
        "S5P",
        requested_classes=["L3__NO2___"],
        start=DAY,
        stop=DAY + timedelta(days=1),
        output_parameters=COLLECTION,
        processing_mode="OFFL",
    )
    by_class = Counter(s.product_type for s in plan.steps)
    # 101-minute orbits: 15 touch the day (14.26 orbits a day, plus the one across midnight).
    assert by_class == {"L3__NO2___": 1, "L2__NO2___": 15, "L2__CLOUD_": 15, "L1B_______": 15}
    l3 = plan.steps[0]
    assert l3.requested and l3.slice.start == DAY and l3.slice.stop == DAY + timedelta(days=1)
    assert {plan.steps[u].product_type for u in l3.upstream} == {"L2__NO2___"} and len(l3.upstream) == 15
    orbits = sorted(s.slice.orbit for s in plan.steps if s.product_type == "L2__NO2___")
    assert orbits == list(range(orbits[0], orbits[0] + 15))
    assert plan.steps[[s.slice.orbit for s in plan.steps].index(orbits[0])].slice.start < DAY
    # One L1B run per orbit makes every band; L2 inputs take them as planned outputs.
    l1b = [s for s in plan.steps if s.product_type == "L1B_______"]
    assert [o.product_type for o in l1b[0].outputs] == [
        "L1B_______",
        "L1B_RA_BD3",
        "L1B_RA_BD4",
        "L1B_RA_BD6",
        "L1B_IR_UVN",
    ]
    assert all(o.file_name.startswith("S5P_OFFL_") for o in l1b[0].outputs)
    # Each orbit's L2 runs take the L1B of their own orbit (also for the irradiance,
    # which LatestValIntersect(1 d, 1 d) could take from any run of the day).
    for step in plan.steps:
        if step.product_type.startswith("L2"):
            assert {plan.steps[u].slice.orbit for u in step.upstream} == {step.slice.orbit}
    # Inputs were all ingested: nothing waits; every L1B took its three L0 bands and the CKD.
    assert all(inp.satisfied for s in plan.steps for inp in s.inputs)
    first = l1b[0]
    chosen = {i.source_types[0]: i for i in first.inputs}
    assert len(chosen["L0__ODB_1_"].chosen) == 1 and chosen["L0__ODB_1_"].chosen[0].policy == "ValIntersect"
    assert chosen["AUX_L1_CKD"].chosen[0].policy == "LatestValCover"
    # Stored: steps, edges, one job per distinct slice, queries with the chosen products.
    with s5p.session() as s:
        assert s.scalar(select(func.count()).select_from(JobStep)) == 46
        assert s.scalar(select(func.count()).select_from(JobStepEdge)) == sum(
            len(x.upstream) for x in plan.steps
        )
        assert s.scalar(select(func.count()).select_from(Job)) == 16  # 15 orbits + 1 day
        picks = s.execute(select(InputQueryProduct.policy, func.count()).group_by(InputQueryProduct.policy))
        assert dict(picks.all())["ValIntersect"] >= 15 * 3
        query = s.scalars(select(InputQuery).order_by(InputQuery.id)).first()
        assert query is not None and query.origin is not None
        assert query.origin.endswith("selection_rules[0]") and query.coverage is not None
        assert "chose" in query.explanation
        # Upstream bindings are rows: one per planned output an input took.
        bindings = s.scalar(select(func.count()).select_from(InputQueryOutput))
        assert bindings == sum(
            1 for x in plan.steps for i in x.inputs for c in i.chosen if c.step is not None
        )
    assert {st for _, st, *_ in _stored_steps(s5p)} == {"PLANNED"}


def test_missing_inputs_leave_steps_waiting(s5p: Catalog) -> None:
    plan = _plan(
        s5p,
        "S5P",
        requested_classes=["L2__O3____"],
        orbit_from=37100,
        orbit_to=37101,
        output_parameters=COLLECTION,
    )
    assert Counter(s.product_type for s in plan.steps) == {"L2__O3____": 2, "L1B_______": 2}
    waiting = {s.product_type for s in plan.steps if any(i.waits_for_input for i in s.inputs)}
    assert waiting == {"L2__O3____", "L1B_______"}  # AUX_MET_TP and L0 are input-only and absent
    optional = [i for s in plan.steps for i in s.inputs if i.source_types == ("AUX_NISE__",)]
    assert optional and all(i.satisfied and not i.mandatory for i in optional)
    states = Counter(st for _, st, *_ in _stored_steps(s5p))
    assert states == {"WAITING_INPUT": 4}


def test_merged_steps_serve_several_consumers(s5p: Catalog) -> None:
    plan = _plan(
        s5p,
        "S5P",
        requested_classes=["L2__NO2___", "L2__CH4___", "L2__CLOUD_"],
        orbit_from=37200,
        orbit_to=37202,
        output_parameters=COLLECTION,
    )
    by_class = Counter(s.product_type for s in plan.steps)
    assert by_class == {"L2__NO2___": 3, "L2__CH4___": 3, "L2__CLOUD_": 3, "L1B_______": 3}
    cloud = {s.slice.orbit: s for s in plan.steps if s.product_type == "L2__CLOUD_"}
    assert all(c.requested for c in cloud.values())
    for s in plan.steps:
        if s.product_type in ("L2__NO2___", "L2__CH4___"):
            assert cloud[s.slice.orbit].index in s.upstream


def test_existing_identical_products_are_reused(s5p: Catalog) -> None:
    first = _plan(
        s5p,
        "S5P",
        requested_classes=["L2__CLOUD_"],
        orbit_from=37300,
        orbit_to=37303,
        output_parameters=COLLECTION,
        identifier="first",
    )
    made = [s for s in first.steps if s.product_type == "L2__CLOUD_"][:2]
    l1b = [s for s in first.steps if s.product_type == "L1B_______"]
    _register_outputs(s5p, made + l1b, first)
    again = _plan(
        s5p,
        "S5P",
        requested_classes=["L2__CLOUD_"],
        orbit_from=37300,
        orbit_to=37303,
        output_parameters=COLLECTION,
        identifier="again",
    )
    assert len(again.reused) == 2
    assert {r.slice.orbit for r in again.reused} == {s.slice.orbit for s in made}
    # The remaining two L2 steps take the existing L1B products instead of planning new runs.
    assert Counter(s.product_type for s in again.steps) == {"L2__CLOUD_": 2}
    for step in again.steps:
        bd3 = next(i for i in step.inputs if i.source_types == ("L1B_RA_BD3",))
        assert bd3.satisfied and bd3.chosen[0].product_id is not None
    # Another mode is another product: nothing to reuse.
    other = _plan(
        s5p,
        "S5P",
        requested_classes=["L2__CLOUD_"],
        orbit_from=37300,
        orbit_to=37303,
        output_parameters=COLLECTION,
        identifier="rpro",
        processing_mode="RPRO",
    )
    assert other.reused == [] and Counter(s.product_type for s in other.steps)["L2__CLOUD_"] == 4


def test_an_order_whose_products_all_exist_completes_and_can_be_closed(s5p: Catalog) -> None:
    request = {
        "requested_classes": ["L2__CLOUD_"],
        "orbit_from": 37300,
        "orbit_to": 37301,
        "output_parameters": COLLECTION,
    }
    first = _plan(s5p, "S5P", identifier="first", **request)
    _register_outputs(s5p, first.steps, first)
    again = _plan(s5p, "S5P", identifier="again", **request)
    assert again.steps == [] and len(again.reused) == 2
    # Nothing to run: no DAG is built for it, and it does not wait for a run that never comes.
    released = lifecycle.release_order(s5p, "S5P", "again")
    assert released.state == "COMPLETED" and released.dag_id is None
    with s5p.session() as s:
        order = orders.get_order(s, "S5P", "again")
        assert [(e.operation, e.to_state) for e in order.events][-3:] == [
            ("release", "RELEASING"),
            ("released", "RELEASED"),
            ("complete", "COMPLETED"),
        ]
        assert "every product exists already" in (order.state_message or "")
    assert lifecycle.close_order(s5p, "S5P", "again").state == "CLOSED"


def test_a_released_order_without_job_steps_completes_when_its_run_ends(s5p: Catalog) -> None:
    """An order released with an empty DAG (as releases did before) completes when the
    run ends (the DAG-run listener's finalize) or at any roll-up, instead of staying RELEASED."""
    request = {"requested_classes": ["L2__CLOUD_"], "orbit_from": 37300, "orbit_to": 37300}
    first = _plan(s5p, "S5P", identifier="first", output_parameters=COLLECTION, **request)
    _register_outputs(s5p, first.steps, first)
    _plan(s5p, "S5P", identifier="old", output_parameters=COLLECTION, **request)
    with s5p.session() as s:
        order = orders.get_order(s, "S5P", "old")
        order.state = "RELEASED"  # released, its empty DAG built and run
        order.dag_id = "proseo__S5P__old"
        order_id = order.id
    with s5p.session() as s:
        assert lifecycle.finalize_order(s, order_id, "DAG run manual__1 ended success") == "COMPLETED"
    with s5p.session() as s:
        assert lifecycle.rollup_order(s, order_id) == "COMPLETED"
    assert lifecycle.close_order(s5p, "S5P", "old").state == "CLOSED"


def _register_outputs(catalog: Catalog, steps, plan) -> None:
    """Catalogue rows as registration writes them for the planned outputs of ``steps``."""
    with catalog.session() as s:
        classes = dict(s.execute(select(ProductClass.product_type, ProductClass.id)).all())
        processors = dict(s.execute(select(ConfiguredProcessor.identifier, ConfiguredProcessor.id)).all())
        mission_id = s.scalar(select(ProductClass.mission_id).limit(1))
        for step in steps:
            for out in step.outputs:
                s.add(
                    Product(
                        uuid=str(uuid.uuid4()),
                        identity=product_identity(
                            mission="S5P",
                            product_type=out.product_type,
                            file_class=plan.file_class,
                            mode=plan.mode,
                            start=out.start,
                            stop=out.stop,
                            generation=plan.generation_time,
                            configured_processor=step.processor.id,
                            parameters=out.parameters,
                        ),
                        mission_id=mission_id,
                        product_class_id=classes[out.product_type],
                        file_class=plan.file_class,
                        mode=plan.mode,
                        sensing_start=out.start,
                        sensing_stop=out.stop,
                        generation_time=plan.generation_time,
                        parameters=out.parameters,
                        configured_processor_id=processors[step.processor.id],
                    )
                )


def test_mode_scoped_rules_and_processor_choice(s5p: Catalog) -> None:
    nrti, offl, rpro = (
        _plan(
            s5p,
            "S5P",
            requested_classes=["L2__NO2___"],
            orbit_from=37400,
            orbit_to=37400,
            output_parameters=COLLECTION,
            processing_mode=mode,
            identifier=mode.lower(),
        )
        for mode in ("NRTI", "OFFL", "RPRO")
    )

    def ctm(plan) -> str:
        return next(i.rule_text for i in plan.steps[0].inputs if i.source_types == ("AUX_CTMFCT",))

    assert ctm(nrti) == "FOR AUX_CTMFCT SELECT LatestValidity MANDATORY"
    assert ctm(offl).startswith("FOR AUX_CTMFCT SELECT LatestValCover(0 D, 0 D) OR LatestValIntersect")
    l1b = {
        p.mode: next(s for s in p.steps if s.product_type == "L1B_______").processor.id
        for p in (nrti, offl, rpro)
    }
    assert l1b == {
        "NRTI": "L01B_02.10.00_2025.01",
        "OFFL": "L01B_02.10.00_2025.01",
        "RPRO": "L01B_02.10.00_2025.01-rpro",
    }
    pinned = _plan(
        s5p,
        "S5P",
        requested_classes=["L2__NO2___"],
        orbit_from=37400,
        orbit_to=37400,
        output_parameters=COLLECTION,
        identifier="pinned",
        configured_processors=["L01B_02.01.00_2025.01"],
    )
    assert (
        next(s for s in pinned.steps if s.product_type == "L1B_______").processor.id
        == "L01B_02.01.00_2025.01"
    )


def test_input_only_classes_are_never_planned(s5p: Catalog) -> None:
    plan = _plan(
        s5p,
        "S5P",
        requested_classes=["L2__CLOUD_"],
        orbit_from=37500,
        orbit_to=37501,
        output_parameters=COLLECTION,
        input_only_classes=["L1B_______"],
    )
    assert Counter(s.product_type for s in plan.steps) == {"L2__CLOUD_": 2}
    bd3 = [i for s in plan.steps for i in s.inputs if i.source_types == ("L1B_RA_BD3",)]
    assert bd3 and not any(i.satisfied for i in bd3)


def test_order_slicing_overrides_requested_class_slicing(s5p: Catalog) -> None:
    plan = _plan(
        s5p,
        "S5P",
        requested_classes=["L2__NO2___"],
        start=DAY,
        stop=DAY + timedelta(hours=12),
        slicing={"type": "TIME_SLICE", "duration": "6h"},
        output_parameters=COLLECTION,
    )
    l2 = [s for s in plan.steps if s.product_type == "L2__NO2___"]
    assert [(s.slice.start - DAY, s.slice.stop - DAY) for s in l2] == [
        (timedelta(0), timedelta(hours=6)),
        (timedelta(hours=6), timedelta(hours=12)),
    ]
    # The 6-hour windows need the orbits touching them; the orbit across 06:00 is planned once.
    l1b = [s for s in plan.steps if s.product_type == "L1B_______"]
    assert len(l1b) == len({s.slice.orbit for s in l1b})
    shared = [s for s in l1b if s.slice.start < DAY + timedelta(hours=6) < s.slice.stop]
    assert len(shared) == 1
    assert all(shared[0].index in s.upstream for s in l2)


def test_time_slices_follow_the_class_grid_whatever_the_order_start(catalog: Catalog, tmp_path: Path) -> None:
    """An hourly class whose scans start at :15: orders from 00:30 and from 01:50 plan the
    same scan-aligned runs, none straddling two scans."""
    daily = (
        "    processor: CALIB\n    slicing: {type: CALENDAR_DAY}\n"
        "    selection_rules:\n      - rule: FOR RAW_EXP/filter:g"
    )
    hourly = daily.replace(
        "{type: CALENDAR_DAY}", '{type: TIME_SLICE, duration: 1h, anchor: "2025-01-01T00:15:00Z"}'
    )
    text = without_triggers((MISSION_DIR / "sky.yaml").read_text())
    assert text.count(daily) == 1
    (tmp_path / "sky.yaml").write_text(text.replace(daily, hourly))
    with catalog.session() as s:
        sync_mission(s, load_mission(tmp_path / "sky.yaml"))

    def slices(identifier: str, start: timedelta, stop: timedelta) -> list[tuple[timedelta, timedelta]]:
        plan = _plan(
            catalog,
            "SKY",
            identifier=identifier,
            requested_classes=["CALEXP_G"],
            start=DAY + start,
            stop=DAY + stop,
        )
        return sorted((s.slice.start - DAY, s.slice.stop - DAY) for s in plan.steps)

    h, quarter = timedelta(hours=1), timedelta(minutes=15)
    early = slices("early", timedelta(minutes=30), 3 * h)
    late = slices("late", timedelta(minutes=110), 4 * h)
    assert early == [(n * h + quarter, (n + 1) * h + quarter) for n in (0, 1, 2)]
    assert late == [(n * h + quarter, (n + 1) * h + quarter) for n in (1, 2, 3)]
    # An order's own TIME_SLICE keeps the class's grid.
    with catalog.session() as s:
        orders.create_order(
            s,
            "SKY",
            OrderSpec(
                identifier="own",
                requested_classes=["CALEXP_G"],
                start=DAY + timedelta(minutes=30),
                stop=DAY + 3 * h,
                slicing={"type": "TIME_SLICE", "duration": "2h"},
            ),
        )
    lifecycle.approve_order(catalog, "SKY", "own")
    own = lifecycle.plan_order(catalog, "SKY", "own")
    assert sorted((s.slice.start - DAY, s.slice.stop - DAY) for s in own.steps) == [
        (quarter, 2 * h + quarter),
        (2 * h + quarter, 4 * h + quarter),
    ]


def test_bound_refuses_large_plans_and_records_why(s5p: Catalog) -> None:
    with pytest.raises(PlanTooLarge) as info:
        _plan(
            s5p,
            "S5P",
            max_steps=100,
            requested_classes=["L3__NO2___"],
            start=DAY,
            stop=DAY + timedelta(days=7),
            output_parameters=COLLECTION,
        )
    message = str(info.value)
    assert "more than 100 job steps" in message and "split the period into at least" in message
    with s5p.session() as s:
        order = orders.get_order(s, "S5P", "o1")
        assert order.state == "PLANNING_FAILED" and "more than 100" in (order.state_message or "")
        assert s.scalar(select(func.count()).select_from(JobStep)) == 0
        assert [e.operation for e in order.events][-2:] == ["plan", "plan-failed"]
    # A larger bound succeeds on the same order (PLANNING_FAILED may be planned again).
    plan = lifecycle.plan_order(s5p, "S5P", "o1", max_steps=1000)
    with s5p.session() as s:
        orbits = loaded_from_catalog(s, "S5P").orbits["S5P"]
    week = [o for o in orbits if o.stop > DAY and o.start < DAY + timedelta(days=7)]
    assert len(week) == 100  # 7 days of 101-minute orbits, both ends included
    assert len(plan.steps) == 7 + 3 * len(week)


def test_catalogue_reads_do_not_grow_with_the_order(s5p: Catalog, data_dirs, tmp_path: Path) -> None:
    _ingest(s5p, "S5P", DAY - timedelta(hours=6), DAY + timedelta(days=4, hours=6), tmp_path)
    statements: list[int] = []

    def plan_counting(identifier: str, days: int) -> int:
        count = [0]

        def hook(*_args) -> None:
            count[0] += 1

        event.listen(s5p.engine, "before_cursor_execute", hook)
        try:
            _plan(
                s5p,
                "S5P",
                identifier=identifier,
                requested_classes=["L3__NO2___"],
                start=DAY,
                stop=DAY + timedelta(days=days),
                output_parameters=COLLECTION,
            )
        finally:
            event.remove(s5p.engine, "before_cursor_execute", hook)
        return count[0]

    statements = [plan_counting("one", 1), plan_counting("four", 4)]
    # ~46 job steps against ~180: the same batched reads, only the bulk inserts may split.
    assert statements[1] <= statements[0] + 5, statements


def test_sky_month_plans_nights_and_bands(sky: Catalog, data_dirs, tmp_path: Path) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    _ingest(sky, "SKY", start, start + timedelta(days=3), tmp_path)
    plan = _plan(sky, "SKY", requested_classes=["OBJ_CAT"], start=start, stop=start + timedelta(days=31))
    by_class = Counter(s.product_type for s in plan.steps)
    assert by_class == {
        "OBJ_CAT": 1,
        "SRC_CAT": 31,
        "STACK_G": 31,
        "STACK_R": 31,
        "CALEXP_G": 31,
        "CALEXP_R": 31,
    }
    obj = plan.steps[0]
    assert obj.slice.stop - obj.slice.start == timedelta(days=31) and len(obj.upstream) == 31
    # Nights with raw exposures take them band by band, and calibrations by validity.
    night = next(s for s in plan.steps if s.product_type == "CALEXP_G" and s.slice.start == start)
    inputs = {i.source_types[0]: i for i in night.inputs}
    assert inputs["RAW_EXP"].satisfied and inputs["RAW_EXP"].filters == {"filter": "g"}
    assert len(inputs["RAW_EXP"].chosen) == 15  # 30 exposures a night, alternating g and r
    assert inputs["CAL_FLAT"].satisfied and len(inputs["CAL_FLAT"].chosen) == 1
    assert inputs["CAL_BIAS"].chosen[0].policy in ("LatestValCover", "ClosestStartValidity")
    # Nights without deliveries wait for their raw exposures.
    late = next(
        s for s in plan.steps if s.product_type == "CALEXP_R" and s.slice.start == start + timedelta(days=20)
    )
    assert not next(i for i in late.inputs if i.source_types == ("RAW_EXP",)).satisfied
    # The reference catalogue is chosen by LastCreated, outside every window.
    src = next(s for s in plan.steps if s.product_type == "SRC_CAT")
    ref = next(i for i in src.inputs if i.source_types == ("REF_CAT",))
    assert ref.satisfied and ref.chosen[0].policy == "LastCreated"
