"""Claims: one active order per product to be made, and the others wait for it.

Every planned output carries ``product_key`` (the product's identity without its
generation time). From its order's release until its product is registered, the
output also holds ``claim`` = that key, under a unique index: two released orders
can never both make the same product, even when released at the same moment (the
second update fails; :func:`claim_outputs` names the other order first where it can).

The planner reads the claimed outputs of other orders as candidates
(:class:`ClaimedOutputs`), so an input a released order already makes is bound to
that order's output and waited for instead of being planned a second time. An order
planned before the other was released finds out at its own release: nothing of it
has run yet, so it is planned again there, now binding to the other's outputs (see
:func:`proseo.planning.lifecycle.release_order`). Claims end when the product is
registered, when the order fails or is cancelled (a retry takes them again), and
with the plan itself (reset), which is refused while a job step of another order
still waits for one of its outputs. A planned, unreleased order claims nothing, so
an order that is planned only to look at it holds nobody up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proseo.catalog.model_mission import ConfiguredProcessor, Mission, ProductClass
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryOutput,
    Job,
    JobStep,
    JobStepOutput,
    OrderState,
    ProcessingOrder,
    StepState,
)
from proseo.errors import ConflictError, PlanningError
from proseo.planning.candidates import ClassBuckets, ClassNeeds
from proseo.planning.model import claimed_id
from proseo.rules.policies import Candidate

#: Orders that mean to make what they planned (released, possibly suspended since).
CLAIMING_ORDERS = (
    OrderState.PLANNED.value,
    OrderState.RELEASING.value,
    OrderState.RELEASED.value,
    OrderState.RUNNING.value,
    OrderState.SUSPENDING.value,
)
ENDED_STEPS = (StepState.COMPLETED.value, StepState.FAILED.value, StepState.SKIPPED.value)
_SHOWN = 3


def _order_name(session: Session, order_id: int) -> str:
    row = session.execute(
        select(Mission.code, ProcessingOrder.identifier)
        .join(ProcessingOrder, ProcessingOrder.mission_id == Mission.id)
        .where(ProcessingOrder.id == order_id)
    ).first()
    return f"{row[0]}/{row[1]}" if row else f"order {order_id}"


class ClaimConflict(PlanningError):
    """Products this order would make are claimed by another released order."""


def check_claims(session: Session, order: ProcessingOrder, keys: Sequence[str]) -> None:
    """Refuse claims another order already holds (naming it)."""
    taken: list[tuple[int, str, datetime]] = []
    wanted = sorted(set(keys))
    for offset in range(0, len(wanted), 1000):
        taken += session.execute(
            select(Job.order_id, ProductClass.product_type, JobStepOutput.sensing_start)
            .join(JobStep, JobStep.id == JobStepOutput.job_step_id)
            .join(Job, Job.id == JobStep.job_id)
            .join(ProductClass, ProductClass.id == JobStepOutput.product_class_id)
            .where(JobStepOutput.claim.in_(wanted[offset : offset + 1000]), Job.order_id != order.id)
        ).all()
    if not taken:
        return
    others = sorted({o for o, _, _ in taken})
    examples = ", ".join(
        f"{t} {s:%Y-%m-%dT%H:%M:%S}" for _, t, s in sorted(taken, key=lambda r: r[2])[:_SHOWN]
    )
    raise ClaimConflict(
        f"{len(taken)} product(s) this order would make are already made by "
        f"{', '.join(_order_name(session, o) for o in others)} (e.g. {examples}): "
        "wait for that order, or cancel it first",
        order=order.identifier,
    )


def refuse_if_awaited(session: Session, order: ProcessingOrder) -> None:
    """A plan may not go while job steps of other orders wait for its outputs."""
    waiting = session.execute(
        select(Job.order_id, InputQuery.job_step_id)
        .select_from(InputQueryOutput)
        .join(InputQuery, InputQuery.id == InputQueryOutput.query_id)
        .join(JobStep, JobStep.id == InputQuery.job_step_id)
        .join(Job, Job.id == JobStep.job_id)
        .join(JobStepOutput, JobStepOutput.id == InputQueryOutput.output_id)
        .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
        .where(
            Job.order_id != order.id,
            _outputs_of(order.id),
            InputQueryOutput.given_up_at.is_(None),
            ProcessingOrder.state.notin_([OrderState.COMPLETED.value, OrderState.CLOSED.value]),
        )
    ).all()
    if waiting:
        orders = sorted({o for o, _ in waiting})
        raise ConflictError(
            f"order {order.identifier}: job steps of {', '.join(_order_name(session, o) for o in orders)} "
            f"wait for products this order plans ({len(waiting)} binding(s)); cancel or reset those first"
        )


def _outputs_of(order_id: int) -> Any:
    steps = select(JobStep.id).join(Job, Job.id == JobStep.job_id).where(Job.order_id == order_id)
    return JobStepOutput.job_step_id.in_(steps.scalar_subquery())


def release_claims(session: Session, order_id: int) -> None:
    """The order will not make its unfinished outputs (failed, cancelled): others may plan them."""
    session.execute(
        update(JobStepOutput)
        .where(_outputs_of(order_id), JobStepOutput.claim.isnot(None))
        .values(claim=None)
        .execution_options(synchronize_session=False)
    )


def release_step_claims(session: Session, job_step_id: int) -> None:
    """A step's outputs are registered (or it ended): they are products now, not claims."""
    session.execute(
        update(JobStepOutput)
        .where(JobStepOutput.job_step_id == job_step_id, JobStepOutput.claim.isnot(None))
        .values(claim=None)
        .execution_options(synchronize_session=False)
    )


def claim_outputs(session: Session, order: ProcessingOrder) -> int:
    """Claim the order's outputs not made yet; returns how many. Raises :class:`ClaimConflict`.

    Idempotent (its own claims stay). The updates run in a savepoint, so a claim taken
    by a concurrent release (the unique index) leaves the caller's transaction usable.
    """
    rows = session.execute(
        select(JobStepOutput.id, JobStepOutput.product_key)
        .join(JobStep, JobStep.id == JobStepOutput.job_step_id)
        .where(
            _outputs_of(order.id),
            JobStepOutput.product_id.is_(None),
            JobStepOutput.claim.is_(None),
            JobStep.state != StepState.COMPLETED.value,
        )
    ).all()
    check_claims(session, order, [k for _, k in rows])
    try:
        with session.begin_nested():
            for oid, key in rows:
                session.execute(
                    update(JobStepOutput)
                    .where(JobStepOutput.id == oid)
                    .values(claim=key)
                    .execution_options(synchronize_session=False)
                )
    except IntegrityError:
        check_claims(session, order, [k for _, k in rows])  # names the other order
        raise ClaimConflict(
            "another order claimed some of the same products at the same moment; release again",
            order=order.identifier,
        ) from None
    return len(rows)


def untouched(session: Session, order: ProcessingOrder) -> bool:
    """Nothing of the order has run or been registered: it may be planned again."""
    started = session.scalar(
        select(JobStep.id)
        .join(Job, Job.id == JobStep.job_id)
        .where(
            Job.order_id == order.id,
            JobStep.state.notin_([StepState.PLANNED.value, StepState.WAITING_INPUT.value]),
        )
        .limit(1)
    )
    made = session.scalar(
        select(JobStepOutput.id).where(_outputs_of(order.id), JobStepOutput.product_id.isnot(None)).limit(1)
    )
    return started is None and made is None


class ClaimedOutputs(ClassBuckets):
    """Outputs other released orders make, as planning candidates (fetched per level and class)."""

    def __init__(self, session: Session, class_ids: dict[str, int], order_id: int | None) -> None:
        super().__init__()
        self._session = session
        self._class_ids = class_ids
        self._order_id = order_id
        self._any: bool | None = None

    def _anything_claimed(self) -> bool:
        """One look, on first use: most plans meet no claimed output of the mission at all."""
        if self._any is None:
            self.queries += 1
            self._any = (
                self._session.scalar(
                    select(JobStepOutput.id)
                    .where(
                        JobStepOutput.claim.isnot(None),
                        JobStepOutput.product_class_id.in_(sorted(self._class_ids.values())),
                    )
                    .limit(1)
                )
                is not None
            )
        return self._any

    def fetch(self, needs: dict[str, ClassNeeds]) -> None:
        if not self._anything_claimed():
            return
        for product_type, need in needs.items():
            class_id = self._class_ids.get(product_type)
            if class_id is None or need.lo is None or need.hi is None:
                continue
            for lo, hi in self._missing(product_type, need.lo, need.hi):
                self._add(product_type, self._load(class_id, lo, hi))

    def _load(self, class_id: int, lo: datetime, hi: datetime) -> list[Candidate]:
        self.queries += 1
        query = (
            select(
                JobStepOutput.id,
                JobStepOutput.sensing_start,
                JobStepOutput.sensing_stop,
                JobStepOutput.parameters,
                ProcessingOrder.planned_at,
                ProcessingOrder.output_file_class,
                ProcessingOrder.processing_mode,
                ProcessingOrder.production_type,
                ConfiguredProcessor.identifier,
            )
            .join(JobStep, JobStep.id == JobStepOutput.job_step_id)
            .join(Job, Job.id == JobStep.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .join(ConfiguredProcessor, ConfiguredProcessor.id == JobStep.configured_processor_id)
            .where(
                JobStepOutput.product_class_id == class_id,
                JobStepOutput.claim.isnot(None),
                JobStepOutput.product_id.is_(None),
                and_(JobStepOutput.sensing_start <= hi, JobStepOutput.sensing_stop >= lo),
                ProcessingOrder.state.in_(CLAIMING_ORDERS),
                JobStep.state.notin_(ENDED_STEPS),
            )
        )
        if self._order_id is not None:
            query = query.where(Job.order_id != self._order_id)
        out = []
        for (
            oid,
            start,
            stop,
            params,
            planned_at,
            file_class,
            mode,
            production_type,
            processor,
        ) in self._session.execute(query):
            attributes: dict[str, Any] = dict(params or {})
            attributes.update(
                file_class=file_class,
                mode=mode,
                production_type=production_type,
                configured_processor=processor,
            )
            out.append(Candidate(claimed_id(oid), start, stop, planned_at or start, attributes))
        return out
