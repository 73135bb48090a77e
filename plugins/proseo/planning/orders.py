"""Order operations against the catalogue: create, approve, plan, release, ... close.

Each operation is one transaction that locks the order row, checks the transition
against :mod:`proseo.planning.states`, does its work and records an event. Planning
reads the catalogue in batches, builds the plan in memory and writes it in the same
transaction that makes the order PLANNED; if planning fails, that transaction is
rolled back and a second one records PLANNING_FAILED with the reason, so an order
never stays in PLANNING and never holds half a plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.mission_sync import get_mission, latest_revision, loaded_from_catalog
from proseo.catalog.model_mission import ConfiguredProcessor, Facility, Mission, MissionRevision, ProductClass
from proseo.catalog.model_order import (
    InputQuery,
    Job,
    JobStep,
    OrderEvent,
    OrderState,
    ProcessingOrder,
    StepState,
)
from proseo.errors import ConflictError, NotFoundError, PlanningError
from proseo.missions.models import MissionConfig
from proseo.planning.candidates import CandidateCache
from proseo.planning.model import Plan
from proseo.planning.planner import DEFAULT_MAX_STEPS, Planner
from proseo.planning.spec import (
    OrderSpec,
    SlicingRequest,
    check_against,
    effective_file_class,
    effective_mode,
)
from proseo.planning.states import Operation, next_state
from proseo.planning.store import clear_plan, write_plan

DEFAULT_SLICING = "DEFAULT"  # stored when the order uses each class's own slicing


def create_order(session: Session, mission_code: str, spec: OrderSpec) -> ProcessingOrder:
    mission = get_mission(session, mission_code)
    revision = latest_revision(session, mission.id)
    assert revision is not None
    cfg = MissionConfig.model_validate(revision.config)
    check_against(spec, cfg)
    taken = session.scalar(
        select(ProcessingOrder.id).where(
            ProcessingOrder.mission_id == mission.id, ProcessingOrder.identifier == spec.identifier
        )
    )
    if taken is not None:
        raise ConflictError(f"{mission_code}/{spec.identifier}: an order with this identifier exists")
    facility_name = spec.facility or cfg.default_facility()
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
            type=order.slicing_type,
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
        production_type=order.production_type,
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
        on_input_timeout=order.on_input_timeout,
        notification_endpoint=order.notification_endpoint,
        facility=facility.name if facility else None,
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


def _move(
    session: Session,
    order: ProcessingOrder,
    mission: str,
    op: Operation,
    message: str | None = None,
    *,
    force: bool = False,
) -> None:
    target = next_state(op, order.state, mission=mission, order=order.identifier, force=force)
    session.add(
        OrderEvent(
            order_id=order.id,
            operation=op.value,
            from_state=order.state,
            to_state=target.value,
            message=message,
        )
    )
    order.state = target.value
    order.state_message = message
    order.updated_at = utcnow()


def _set_steps(
    session: Session, order: ProcessingOrder, from_states: set[StepState], to: StepState, reason: str | None
) -> int:
    job_ids = select(Job.id).where(Job.order_id == order.id).scalar_subquery()
    result = session.execute(
        update(JobStep)
        .where(JobStep.job_id.in_(job_ids), JobStep.state.in_([s.value for s in from_states]))
        .values(state=to.value, failure_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def plan_order(
    catalog: Catalog, mission_code: str, identifier: str, *, max_steps: int = DEFAULT_MAX_STEPS
) -> Plan:
    """Plan an APPROVED (or PLANNING_FAILED) order; on failure it is PLANNING_FAILED with the reason."""
    try:
        with catalog.session() as session:
            order = get_order(session, mission_code, identifier, lock=True)
            _move(session, order, mission_code, Operation.PLAN)
            plan = _plan(session, order, mission_code, max_steps)
            _move(
                session,
                order,
                mission_code,
                Operation.PLANNED,
                f"{len(plan.steps)} job steps, {len(plan.reused)} products reused",
            )
            return plan
    except PlanningError as exc:
        with catalog.session() as session:
            order = get_order(session, mission_code, identifier, lock=True)
            _move(session, order, mission_code, Operation.PLAN)
            _move(session, order, mission_code, Operation.PLAN_FAILED, str(exc))
        raise


def _plan(session: Session, order: ProcessingOrder, mission_code: str, max_steps: int) -> Plan:
    loaded = loaded_from_catalog(session, mission_code)
    revision = latest_revision(session, order.mission_id)
    assert revision is not None
    order.revision_id = revision.id
    spec = spec_of(session, order)
    orbits = next(iter(loaded.orbits.values()), [])
    class_ids = dict(
        session.execute(
            select(ProductClass.product_type, ProductClass.id).where(
                ProductClass.mission_id == order.mission_id
            )
        ).all()
    )
    processor_names = dict(
        session.execute(
            select(ConfiguredProcessor.id, ConfiguredProcessor.identifier).where(
                ConfiguredProcessor.mission_id == order.mission_id
            )
        ).all()
    )
    cache = CandidateCache(session, class_ids, processor_names)
    planner = Planner(loaded.config, orbits, spec, cache, now=utcnow(), max_steps=max_steps)
    plan = planner.run()
    clear_plan(session, order)
    write_plan(session, order, plan)
    order.planned_at = plan.generation_time
    order.plan_summary = plan.summary()
    return plan


def _simple(
    op: Operation,
    steps: Callable[[Session, ProcessingOrder], Any] | None = None,
    then: Operation | None = None,
) -> Callable[..., ProcessingOrder]:
    def run(
        catalog: Catalog,
        mission_code: str,
        identifier: str,
        *,
        force: bool = False,
        message: str | None = None,
    ) -> ProcessingOrder:
        with catalog.session() as session:
            order = get_order(session, mission_code, identifier, lock=True)
            _move(session, order, mission_code, op, message, force=force)
            if steps is not None:
                steps(session, order)
            if then is not None and (op is not Operation.SUSPEND or not _running(session, order)):
                _move(session, order, mission_code, then, message)
            session.flush()
            session.expunge(order)
            return order

    run.__name__ = f"{op.value}_order"
    return run


def _running(session: Session, order: ProcessingOrder) -> bool:
    count = session.scalar(
        select(func.count())
        .select_from(JobStep)
        .join(Job, Job.id == JobStep.job_id)
        .where(Job.order_id == order.id, JobStep.state == StepState.RUNNING.value)
    )
    return bool(count)


def _cancel_steps(session: Session, order: ProcessingOrder) -> None:
    pending = {StepState.PLANNED, StepState.WAITING_INPUT, StepState.READY, StepState.RUNNING}
    _set_steps(session, order, pending, StepState.FAILED, "order cancelled")


def _retry_steps(session: Session, order: ProcessingOrder) -> None:
    """Failed steps start over: waiting again where a mandatory input was never satisfied."""
    _set_steps(session, order, {StepState.FAILED}, StepState.PLANNED, None)
    job_ids = select(Job.id).where(Job.order_id == order.id).scalar_subquery()
    awaiting = select(InputQuery.job_step_id).where(InputQuery.mandatory, ~InputQuery.satisfied)
    session.execute(
        update(JobStep)
        .where(
            JobStep.job_id.in_(job_ids), JobStep.state == StepState.PLANNED.value, JobStep.id.in_(awaiting)
        )
        .values(state=StepState.WAITING_INPUT.value)
    )


approve_order = _simple(Operation.APPROVE)
release_order = _simple(Operation.RELEASE, then=Operation.RELEASED)
resume_order = _simple(Operation.RESUME, then=Operation.RELEASED)
suspend_order = _simple(Operation.SUSPEND, then=Operation.SUSPENDED)
cancel_order = _simple(Operation.CANCEL, _cancel_steps)
retry_order = _simple(Operation.RETRY, _retry_steps, then=Operation.RELEASED)
reset_order = _simple(Operation.RESET, clear_plan)
close_order = _simple(Operation.CLOSE)


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
