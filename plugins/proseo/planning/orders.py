"""Orders in the catalogue: creating them from a request, finding, listing, counting.

The state-changing operations (approve, plan, release, ...) are in
:mod:`proseo.planning.lifecycle`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from proseo.catalog.configs import revision_config_of
from proseo.catalog.mission_sync import get_mission, latest_revision
from proseo.catalog.model_mission import Facility, Mission, MissionRevision
from proseo.catalog.model_order import (
    Job,
    JobStep,
    OrderEvent,
    OrderState,
    ProcessingOrder,
)
from proseo.catalog.model_product import ProductionType
from proseo.errors import ConflictError, NotFoundError
from proseo.missions.types import SlicingType
from proseo.planning.spec import (
    OnInputTimeout,
    OrderSpec,
    SlicingRequest,
    check_against,
    effective_file_class,
    effective_mode,
)

DEFAULT_SLICING = "DEFAULT"  # stored when the order uses each class's own slicing


def create_order(
    session: Session, mission_code: str, spec: OrderSpec, *, generated: dict[str, Any] | None = None
) -> ProcessingOrder:
    """A new INITIAL order; ``generated`` carries a trigger's columns (trigger, generation_key,
    timeliness, deadline), set before the insert so the unique key decides a race."""
    mission = get_mission(session, mission_code)
    revision = latest_revision(session, mission.id)
    assert revision is not None
    cfg = revision_config_of(revision)
    check_against(spec, cfg)
    taken = session.scalar(
        select(ProcessingOrder.id).where(
            ProcessingOrder.mission_id == mission.id, ProcessingOrder.identifier == spec.identifier
        )
    )
    if taken is not None:
        raise ConflictError(f"{mission_code}/{spec.identifier}: an order with this identifier exists")
    facility_name = (spec.candidate_facilities() or [cfg.default_facility()])[0]
    facility_id = session.scalar(
        select(Facility.id).where(Facility.mission_id == mission.id, Facility.name == facility_name)
    )
    order = ProcessingOrder(
        uuid=str(uuid.uuid4()),
        mission_id=mission.id,
        identifier=spec.identifier,
        state=OrderState.INITIAL.value,
        revision_id=revision.id,
        facility_id=facility_id,
        facilities=list(spec.facilities) or None,
        requested_classes=list(spec.requested_classes),
        input_only_classes=list(spec.input_only_classes),
        configured_processors=list(spec.configured_processors),
        output_file_class=effective_file_class(spec, cfg),
        processing_mode=effective_mode(spec, cfg),
        production_type=spec.production_type.value,
        start_time=spec.start,
        stop_time=spec.stop,
        orbit_from=spec.orbit_from,
        orbit_to=spec.orbit_to,
        slicing_type=spec.slicing.type.value if spec.slicing else DEFAULT_SLICING,
        slice_duration_s=spec.slicing.duration.total_seconds()
        if spec.slicing and spec.slicing.duration
        else None,
        slice_overlap_s=spec.slicing.overlap.total_seconds() if spec.slicing else 0.0,
        input_filters=dict(spec.input_filters),
        dynamic_parameters=dict(spec.dynamic_parameters),
        output_parameters=dict(spec.output_parameters),
        priority=spec.priority,
        execution_time=spec.execution_time,
        input_timeout_s=spec.input_timeout.total_seconds() if spec.input_timeout else None,
        on_input_timeout=spec.on_input_timeout.value,
        notification_endpoint=spec.notification_endpoint,
        **(generated or {}),
    )
    session.add(order)
    session.flush()
    session.add(OrderEvent(order_id=order.id, operation="create", from_state="", to_state=order.state))
    return order


def spec_of(session: Session, order: ProcessingOrder) -> OrderSpec:
    """The order request back from its row (what planning works from)."""
    facility = session.get(Facility, order.facility_id) if order.facility_id else None
    slicing = None
    if order.slicing_type != DEFAULT_SLICING:
        slicing = SlicingRequest(
            type=SlicingType(order.slicing_type),
            duration=timedelta(seconds=order.slice_duration_s) if order.slice_duration_s else None,
            overlap=timedelta(seconds=order.slice_overlap_s or 0),
        )
    return OrderSpec(
        identifier=order.identifier,
        requested_classes=order.requested_classes,
        input_only_classes=order.input_only_classes,
        configured_processors=order.configured_processors,
        output_file_class=order.output_file_class,
        processing_mode=order.processing_mode,
        production_type=ProductionType(order.production_type),
        start=order.start_time,
        stop=order.stop_time,
        orbit_from=order.orbit_from,
        orbit_to=order.orbit_to,
        slicing=slicing,
        input_filters=order.input_filters,
        dynamic_parameters=order.dynamic_parameters,
        output_parameters=order.output_parameters,
        priority=order.priority,
        execution_time=order.execution_time,
        input_timeout=timedelta(seconds=order.input_timeout_s) if order.input_timeout_s else None,
        on_input_timeout=OnInputTimeout(order.on_input_timeout),
        notification_endpoint=order.notification_endpoint,
        facility=facility.name if facility and not order.facilities else None,
        facilities=list(order.facilities or []),
    )


def get_order(session: Session, mission_code: str, identifier: str, *, lock: bool = False) -> ProcessingOrder:
    query = (
        select(ProcessingOrder)
        .join(Mission, Mission.id == ProcessingOrder.mission_id)
        .where(Mission.code == mission_code, ProcessingOrder.identifier == identifier)
    )
    if lock:
        query = query.with_for_update()
    order = session.scalar(query)
    if order is None:
        raise NotFoundError(f"{mission_code}/{identifier}: no such order")
    return order


def list_orders(
    session: Session,
    mission_code: str | None = None,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[tuple[ProcessingOrder, str]]:
    query = select(ProcessingOrder, Mission.code).join(Mission, Mission.id == ProcessingOrder.mission_id)
    if mission_code:
        query = query.where(Mission.code == mission_code)
    if state:
        query = query.where(ProcessingOrder.state == state.upper())
    query = query.order_by(ProcessingOrder.id).limit(limit).offset(offset)
    return [(o, code) for o, code in session.execute(query).all()]


def step_counts(session: Session, order: ProcessingOrder) -> dict[str, int]:
    rows = session.execute(
        select(JobStep.state, func.count())
        .join(Job, Job.id == JobStep.job_id)
        .where(Job.order_id == order.id)
        .group_by(JobStep.state)
    )
    return {state: int(n) for state, n in rows}


def revision_number(session: Session, order: ProcessingOrder) -> int | None:
    return session.scalar(select(MissionRevision.number).where(MissionRevision.id == order.revision_id))
