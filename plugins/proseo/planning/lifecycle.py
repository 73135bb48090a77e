"""Order operations: approve, plan, release, suspend, resume, cancel, retry, reset, close.

Each operation is one transaction that locks the order row, checks the transition
against :mod:`proseo.planning.states`, does its work and records an event. Planning
reads the catalogue in batches, builds the plan in memory and writes it in the same
transaction that makes the order PLANNED; if planning fails, that transaction is
rolled back and a second one records PLANNING_FAILED with the reason, so an order
never stays in PLANNING and never holds half a plan.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.mission_sync import latest_revision, loaded_from_catalog
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_order import (
    InputQuery,
    Job,
    JobStep,
    OrderEvent,
    OrderState,
    ProcessingOrder,
    StepState,
)
from proseo.catalog.products import class_ids, processor_ids
from proseo.errors import IllegalTransition, PlanningError, ProseoError
from proseo.planning.blueprint import build_blueprint
from proseo.planning.candidates import CandidateCache
from proseo.planning.claims import ClaimConflict, ClaimedOutputs, claim_outputs, release_claims, untouched
from proseo.planning.facility_assign import assign_facilities
from proseo.planning.model import Plan
from proseo.planning.orders import get_order, spec_of
from proseo.planning.planner import DEFAULT_MAX_STEPS, Planner
from proseo.planning.states import Operation, next_state
from proseo.planning.step_states import StepOp, sources_of, target_of
from proseo.planning.store import clear_plan, write_plan

__all__ = [
    "DEFAULT_MAX_STEPS",
    "approve_order",
    "cancel_order",
    "carry_to_release",
    "close_order",
    "finalize_order",
    "plan_order",
    "release_order",
    "reset_order",
    "resume_order",
    "retry_order",
    "rollup_order",
    "suspend_order",
]


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


def _set_steps(session: Session, order_id: int, op: StepOp, reason: str | None, *where: Any) -> int:
    """Apply ``op`` to the order's steps in the states it applies to (one bulk UPDATE)."""
    job_ids = select(Job.id).where(Job.order_id == order_id).scalar_subquery()
    result = session.execute(
        update(JobStep)
        .where(JobStep.job_id.in_(job_ids), JobStep.state.in_(sources_of(op)), *where)
        .values(state=target_of(op).value, failure_reason=reason)
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
            with _gc_paused():
                plan = _plan(session, order, mission_code, max_steps)
            _move(
                session,
                order,
                mission_code,
                Operation.PLANNED,
                f"{len(plan.steps)} job steps, {len(plan.reused)} requested products exist already",
            )
            return plan
    except PlanningError as exc:
        with catalog.session() as session:
            order = get_order(session, mission_code, identifier, lock=True)
            _move(session, order, mission_code, Operation.PLAN)
            _move(session, order, mission_code, Operation.PLAN_FAILED, str(exc))
        raise


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cycle collector off while a plan is built and written.

    A year's plan allocates millions of small objects that live until it is written; the
    collector would scan them again and again (about a fifth of a year's planning time)
    and find no cycles among them. Afterwards the objects made meanwhile go straight to
    the oldest generation (freeze, then unfreeze) instead of being scanned at once as
    young ones; whatever of them is garbage goes with the next full collection.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
            gc.unfreeze()


def _plan(session: Session, order: ProcessingOrder, mission_code: str, max_steps: int) -> Plan:
    loaded = loaded_from_catalog(session, mission_code)
    revision = latest_revision(session, order.mission_id)
    assert revision is not None
    order.revision_id = revision.id
    spec = spec_of(session, order)
    orbits = next(iter(loaded.orbits.values()), [])
    classes = class_ids(session, order.mission_id)
    processors = processor_ids(session, order.mission_id)
    cache = CandidateCache(session, classes, {v: k for k, v in processors.items()})
    claimed = ClaimedOutputs(session, classes, order.id)
    planner = Planner(loaded.config, orbits, spec, cache, now=utcnow(), max_steps=max_steps, claimed=claimed)
    plan = planner.run()
    clear_plan(session, order)
    write_plan(session, order, plan, class_ids=classes, processor_ids=processors)
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
            # A forced suspend is PLANNED already; an unforced one waits in SUSPENDING while steps run.
            if then is not None and (op is not Operation.SUSPEND or _settles(session, order)):
                _move(session, order, mission_code, then, message)
            if then is Operation.RELEASED:
                # Each step's facility when the order names several (recorded on the step).
                assign_facilities(session, order, utcnow())
                session.flush()
                # The DAG factory builds the order's DAG from this; computed once, here.
                blueprint = build_blueprint(session, order)
                order.dag_blueprint = blueprint.as_json()
                order.dag_id = blueprint.dag_id if blueprint.job_steps else None
            session.flush()
            if then is Operation.RELEASED and not order.dag_id:
                # Every requested product exists already: nothing to run, so no DAG is
                # built (the factory takes RELEASED orders only) and no run would ever
                # complete the order; it completes now.
                rollup_order(session, order.id)
                session.flush()
            session.expunge(order)
            return order

    run.__name__ = f"{op.value}_order"
    return run


def _settles(session: Session, order: ProcessingOrder) -> bool:
    """A suspended order goes on to PLANNED now: SUSPENDING with no step running."""
    return order.state == OrderState.SUSPENDING.value and not _running(session, order)


def _running(session: Session, order: ProcessingOrder) -> bool:
    count = session.scalar(
        select(func.count())
        .select_from(JobStep)
        .join(Job, Job.id == JobStep.job_id)
        .where(Job.order_id == order.id, JobStep.state == StepState.RUNNING.value)
    )
    return bool(count)


def _cancel_steps(session: Session, order: ProcessingOrder) -> None:
    _set_steps(session, order.id, StepOp.CANCEL, "order cancelled")
    release_claims(session, order.id)


def _retry_steps(session: Session, order: ProcessingOrder) -> None:
    """Failed steps start over: waiting again where a mandatory input was never satisfied.

    The order takes the claims on its unfinished outputs again (refused, naming the
    other order, if another order makes those products meanwhile).
    """
    claim_outputs(session, order)
    _set_steps(session, order.id, StepOp.RETRY, None)
    awaiting = select(InputQuery.job_step_id).where(InputQuery.mandatory, ~InputQuery.satisfied)
    _set_steps(session, order.id, StepOp.WAIT, None, JobStep.id.in_(awaiting))


def _claim_for_release(session: Session, order: ProcessingOrder) -> None:
    """A released order claims the products it makes (see :mod:`proseo.planning.claims`).

    When another order released meanwhile makes some of them, and nothing of this
    order has run yet, it is planned again here: its inputs then bind to the other
    order's outputs and wait for them instead of making the same products twice.
    Requested products another order makes refuse the release, naming that order.
    """
    try:
        claim_outputs(session, order)
        return
    except ClaimConflict as exc:
        if not untouched(session, order):
            raise
        why = str(exc)
    mission = session.scalar(select(Mission.code).where(Mission.id == order.mission_id)) or ""
    plan = _plan(session, order, mission, DEFAULT_MAX_STEPS)
    claim_outputs(session, order)
    session.add(
        OrderEvent(
            order_id=order.id,
            operation="replan",
            from_state=order.state,
            to_state=order.state,
            message=f"planned again at release ({len(plan.steps)} job steps): {why}",
        )
    )


approve_order = _simple(Operation.APPROVE)
release_order = _simple(Operation.RELEASE, _claim_for_release, then=Operation.RELEASED)
resume_order = _simple(Operation.RESUME, _claim_for_release, then=Operation.RELEASED)
suspend_order = _simple(Operation.SUSPEND, then=Operation.SUSPENDED)
cancel_order = _simple(Operation.CANCEL, _cancel_steps)
retry_order = _simple(Operation.RETRY, _retry_steps, then=Operation.RELEASED)
reset_order = _simple(Operation.RESET, clear_plan)
close_order = _simple(Operation.CLOSE)


def rollup_order(session: Session, order_id: int) -> str:
    """Bring an order's state in line with its job steps (system transitions, with events).

    RELEASED becomes RUNNING once a step has started; RUNNING (or RELEASED) becomes
    COMPLETED when every step completed (at once for a plan without steps), FAILED
    when a step failed for good and nothing is still running or pending; SUSPENDING
    becomes PLANNED when nothing runs any more.
    """
    order = session.get(ProcessingOrder, order_id, with_for_update=True)
    assert order is not None
    counts = dict(
        session.execute(
            select(JobStep.state, func.count())
            .join(Job, Job.id == JobStep.job_id)
            .where(Job.order_id == order_id)
            .group_by(JobStep.state)
        ).all()
    )
    total = sum(counts.values())
    running = counts.get(StepState.RUNNING.value, 0)
    started = total - counts.get(StepState.PLANNED.value, 0) - counts.get(StepState.WAITING_INPUT.value, 0)
    mission = order.dag_blueprint.get("mission", "") if order.dag_blueprint else ""
    if order.state == OrderState.RELEASED.value and started:
        _move(session, order, mission, Operation.START)
    if order.state == OrderState.SUSPENDING.value and not running:
        _move(session, order, mission, Operation.SUSPENDED)
    if order.state in (OrderState.RUNNING.value, OrderState.RELEASED.value):
        if not total:
            # A plan without job steps (every requested product reused) has nothing to wait for.
            _move(session, order, mission, Operation.COMPLETE, "nothing to run: every product exists already")
        elif counts.get(StepState.COMPLETED.value, 0) == total:
            _move(session, order, mission, Operation.COMPLETE, f"{total} job steps completed")
        elif counts.get(StepState.FAILED.value, 0) and not running and not _pending(counts):
            _move(
                session,
                order,
                mission,
                Operation.FAIL,
                f"{counts[StepState.FAILED.value]} job step(s) failed",
            )
            release_claims(session, order_id)
    return order.state


def _pending(counts: dict[str, int]) -> bool:
    return any(counts.get(s.value, 0) for s in (StepState.PLANNED, StepState.WAITING_INPUT, StepState.READY))


def finalize_order(session: Session, order_id: int, reason: str) -> str:
    """The order's run ended: steps that did not finish fail with ``reason``; then roll up."""
    _set_steps(session, order_id, StepOp.NOT_RUN, f"not run: {reason}")
    return rollup_order(session, order_id)


def carry_to_release(
    catalog: Catalog,
    mission_code: str,
    todo: Iterable[tuple[str, str]],
    released: list[str],
    failed: list[str],
) -> None:
    """Approve, plan and release orders (identifier, state) that are INITIAL, APPROVED or PLANNED.

    What systematic production and campaigns both do with the orders they create. An
    order another pass carried on meanwhile is skipped; an order that cannot go on is
    listed in ``failed`` as "<order>: <reason>" and the others still go on.
    """
    for identifier, state in todo:
        try:
            if state == OrderState.INITIAL.value:
                approve_order(catalog, mission_code, identifier)
                state = OrderState.APPROVED.value
            if state == OrderState.APPROVED.value:
                plan_order(catalog, mission_code, identifier)
            release_order(catalog, mission_code, identifier)
            released.append(identifier)
        except IllegalTransition:
            continue
        except ProseoError as exc:
            failed.append(f"{identifier}: {exc}")
