"""Test helpers for campaigns: a loaded S5P, real deliveries, and steps completed as runs would."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog
from proseo.catalog.model_order import Job, JobStep, ProcessingOrder, StepState
from proseo.devtools.generate import write_inputs
from proseo.planning.lifecycle import rollup_order
from proseo.planning.readiness import refresh_many

from tests_registration import register_planned

AUX = {"AUX_MET_TP", "AUX_CTMFCT", "AUX_NISE__", "AUX_L1_CKD"}
L0 = {"L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_"}


def ingest(catalog: Catalog, start: datetime, stop: datetime, tmp: Path, classes: set[str]) -> int:
    with catalog.session() as s:
        loaded = loaded_from_catalog(s, "S5P")
    files = write_inputs(loaded, start, stop, tmp / f"in-{uuid.uuid4().hex[:6]}", classes=classes, size=32)
    report = Ingestor(catalog, loaded).run(files)
    assert report.ok
    return len(files)


def order_rows(catalog: Catalog, campaign_id: int | None = None) -> list[ProcessingOrder]:
    with catalog.session() as s:
        query = select(ProcessingOrder).order_by(ProcessingOrder.id)
        if campaign_id is not None:
            query = query.where(ProcessingOrder.campaign_id == campaign_id)
        rows = list(s.scalars(query))
        for r in rows:
            s.expunge(r)
    return rows


def run_order(catalog: Catalog, identifier: str, *, fail: set[str] | None = None) -> int:
    """Run the order's ready steps level by level, registering outputs as a successful run would.

    Steps whose product class is in ``fail`` fail instead (with a reason), as a processor
    crash would; steps that wait for inputs that never come are left waiting. Returns
    the number of steps registered; the order is rolled up at the end.
    """
    from proseo.catalog.model_mission import ProductClass

    made = 0
    for _ in range(6):
        with catalog.session() as s:
            steps = s.execute(
                select(JobStep.id, JobStep.state, ProductClass.product_type)
                .join(ProductClass, ProductClass.id == JobStep.product_class_id)
                .join(Job, Job.id == JobStep.job_id)
                .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
                .where(ProcessingOrder.identifier == identifier)
                .order_by(JobStep.id)
            ).all()
        open_ = [(sid, t) for sid, state, t in steps if state not in ("COMPLETED", "FAILED")]
        if not open_:
            break
        with catalog.session() as s:
            ready = {sid for sid, r in refresh_many(s, [sid for sid, _ in open_]).items() if r.ready}
        if not ready:
            break
        for sid, ptype in open_:
            if sid not in ready:
                continue
            if fail and ptype in fail:
                with catalog.session() as s:
                    step = s.get(JobStep, sid)
                    assert step is not None
                    step.state = StepState.FAILED.value
                    step.failure_reason = "processor exited with code 139 (segmentation fault)"
            else:
                register_planned(catalog, sid)
                made += 1
    finish(catalog, identifier)
    return made


def finish(catalog: Catalog, identifier: str, reason: str | None = None) -> str:
    """Roll the order up as its DAG run's end does (``reason``: the run ended, steps not run fail)."""
    from proseo.planning.lifecycle import finalize_order

    with catalog.session() as s:
        oid = s.scalar(select(ProcessingOrder.id).where(ProcessingOrder.identifier == identifier))
        assert oid is not None
        return finalize_order(s, oid, reason) if reason else rollup_order(s, oid)
