"""Test helper: a catalogue with produced products whose delays are known exactly.

SKY with a timeliness section (NRT 2 h, STANDARD 1 d after sensing stop) is onboarded,
two nights of exposures ingested, and order ``kpi-1`` (CALEXP_G and CALEXP_R, one step
per class and day) planned and registered for real (:func:`register_planned`). Then the
publication times are set to known offsets after sensing stop, the raw availability to a
known time before publication, and the order gets the NRT category with a deadline that
exactly one of the four products misses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import Job, JobStep, ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR, without_triggers
from tests_registration import register_planned

DAY = datetime(2025, 3, 1, tzinfo=UTC)
TIMELINESS = "timeliness:\n  deadline_from: sensing_stop\n  categories: {NRT: 2h, STANDARD: 1d}\n"
#: (class, day index) -> (sensing-to-publication, raw-to-publication) in seconds.
DELAYS = {
    ("CALEXP_G", 0): (3600.0, 600.0),
    ("CALEXP_G", 1): (5400.0, 1200.0),
    ("CALEXP_R", 0): (1800.0, 300.0),
    ("CALEXP_R", 1): (9000.0, 900.0),  # after the deadline (2 h after the last sensing stop)
}
DEADLINE = DAY + timedelta(days=2, hours=2)
#: Publication times of the ingested exposures (all of them, so they are easy to find).
INGESTED_AT = DAY + timedelta(days=3)


@dataclass(frozen=True)
class KpiWorld:
    catalog: Catalog
    products: dict[tuple[str, int], int]  # (class, day index) -> product id
    sensing_stop: dict[tuple[str, int], datetime]
    ingested: int  # number of ingested products


def sky_with_timeliness(tmp: Path) -> Path:
    path = tmp / "sky.yaml"
    # The sample's own systematic-production sections give way to this table (and its
    # triggers, which name its categories, go with them).
    path.write_text(without_triggers((MISSION_DIR / "sky.yaml").read_text()) + "\n" + TIMELINESS)
    return path


def kpi_world(catalog: Catalog, tmp: Path) -> KpiWorld:
    with catalog.session() as s:
        sync_mission(s, load_mission(sky_with_timeliness(tmp)))
        mission = loaded_from_catalog(s, "SKY")
    files = write_inputs(mission, DAY, DAY + timedelta(days=2), tmp / f"in-{uuid.uuid4().hex[:6]}", size=200)
    assert Ingestor(catalog, mission).run(files).ok
    spec = OrderSpec(
        identifier="kpi-1",
        requested_classes=["CALEXP_G", "CALEXP_R"],
        start=DAY,
        stop=DAY + timedelta(days=2),
    )
    with catalog.session() as s:
        orders.create_order(s, "SKY", spec)
    lifecycle.approve_order(catalog, "SKY", "kpi-1")
    lifecycle.plan_order(catalog, "SKY", "kpi-1")
    with catalog.session() as s:
        steps = s.execute(
            select(JobStep.id, ProductClass.product_type, JobStep.start_time)
            .join(ProductClass, ProductClass.id == JobStep.product_class_id)
            .join(Job, Job.id == JobStep.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .where(ProcessingOrder.identifier == "kpi-1")
            .order_by(JobStep.id)
        ).all()
    products: dict[tuple[str, int], int] = {}
    for step_id, ptype, start in steps:
        (pid,) = register_planned(catalog, step_id)
        products[(ptype, (start - DAY).days)] = pid
    assert set(products) == set(DELAYS)
    stops: dict[tuple[str, int], datetime] = {}
    with catalog.session() as s:
        for key, pid in products.items():
            stop = s.get(Product, pid).sensing_stop
            sensing, raw = DELAYS[key]
            published = stop + timedelta(seconds=sensing)
            s.execute(
                update(Product)
                .where(Product.id == pid)
                .values(created_at=published, raw_available_at=published - timedelta(seconds=raw))
            )
            stops[key] = stop
        ingested = s.execute(
            update(Product)
            .where(Product.job_step_id.is_(None))
            .values(created_at=INGESTED_AT, raw_available_at=INGESTED_AT)
        ).rowcount
        s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.identifier == "kpi-1")
            .values(timeliness="NRT", deadline=DEADLINE)
        )
    return KpiWorld(catalog, products, stops, ingested)
