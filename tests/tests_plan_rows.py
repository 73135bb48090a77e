"""Plan rows as the bulk writer takes them (tests/planning/test_bulk_*.py): one S5P order,
and a job, a job step and an input query of it, written by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_mission import ConfiguredProcessor, ProductClass
from proseo.catalog.model_order import ProcessingOrder
from proseo.missions import load_mission
from proseo.planning import orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR

T0 = datetime(2025, 3, 1, 0, 0, 0, 123456, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 1, 41, tzinfo=UTC)


def s5p_order(catalog: Catalog, identifier: str) -> int:
    """The id of a new S5P order (the mission loaded first) for L2__NO2___ over [T0, T1)."""
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
        orders.create_order(
            s, "S5P", OrderSpec(identifier=identifier, requested_classes=["L2__NO2___"], start=T0, stop=T1)
        )
    with catalog.session() as s:
        return s.scalars(select(ProcessingOrder.id).where(ProcessingOrder.identifier == identifier)).one()


def job_row(job_id: int, order_id: int) -> dict[str, Any]:
    return {
        "id": job_id,
        "order_id": order_id,
        "start_time": T0,
        "stop_time": T1,
        "orbit_id": None,
        "state": "PLANNED",
        "priority": 50,
    }


def step_row(s: Session, step_id: int, job_id: int) -> dict[str, Any]:
    return {
        "id": step_id,
        "job_id": job_id,
        "state": "PLANNED",
        "product_class_id": s.scalars(
            select(ProductClass.id).where(ProductClass.product_type == "L2__NO2___")
        ).one(),
        "configured_processor_id": s.scalars(select(ConfiguredProcessor.id)).first(),
        "processing_mode": "OFFL",
        "start_time": T0,
        "stop_time": T1,
        "depth": 0,
        "requested": True,
    }


def query_row(s: Session, query_id: int, step_id: int) -> dict[str, Any]:
    return {
        "id": query_id,
        "job_step_id": step_id,
        "source_class_id": s.scalars(select(ProductClass.id)).first(),
        "rule_text": "FOR AUX_MET_TP SELECT ValIntersect(3 H, 3 H)",
        "mandatory": True,
        "min_cover": 100.0,
        "filters": {},
        "satisfied": False,
        "explanation": "",
        "origin": "test",
        "coverage": 0.0,
    }
