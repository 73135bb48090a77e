"""Request and response models of the REST API, shared with the CLI's JSON output.

Plain pydantic models built from catalogue rows; nothing here imports FastAPI or
Airflow, so ``proseo order show --format json`` and ``GET /proseo/api/v1/...``
print the same document. Builders read what a page needs in a fixed number of
queries (step counts of a whole page of orders in one statement, not one per order).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from proseo.catalog.mission_sync import latest_revision
from proseo.catalog.model_mission import ConfiguredProcessor, Facility, Mission, ProductClass
from proseo.catalog.model_order import Job, JobStep, JobStepOutput, ProcessingOrder
from proseo.catalog.products import product_dict
from proseo.planning import orders as ops
from proseo.planning.states import allowed_operations
from proseo.planning.stepinputs import StepInput, read_step_inputs
from proseo.text import MAX_INT64, Text

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ProductClassOut(BaseModel):
    product_type: str
    level: str | None
    visibility: str
    processor_class: str | None
    enclosing_type: str | None
    slicing_type: str
    description: str


class MissionOut(BaseModel):
    code: str
    name: str
    revision: int | None
    product_classes: int
    role: str | None = Field(None, description="The caller's role on this mission.")


class OrderSummary(BaseModel):
    id: int
    mission: str
    identifier: str
    state: str
    classes: list[str]
    priority: int
    created_at: datetime
    dag_id: str | None
    job_steps: int
    progress: dict[str, int] = Field(description="Job steps per state.")

    @property
    def completed(self) -> int:
        return self.progress.get("COMPLETED", 0)

    @property
    def failed(self) -> int:
        return self.progress.get("FAILED", 0)


class OrderEventOut(BaseModel):
    at: datetime
    operation: str
    from_state: str = Field(serialization_alias="from")
    to_state: str = Field(serialization_alias="to")
    message: str | None


class OrderDetail(OrderSummary):
    state_message: str | None
    allowed_operations: list[str]
    revision: int | None
    request: dict[str, Any]
    planned_at: datetime | None
    plan: dict[str, Any] | None
    history: list[OrderEventOut]


class ChosenProduct(BaseModel):
    product_id: int
    name: str | None
    policy: str | None
    via_job_step: int | None = Field(
        None, description="The upstream job step that made it (None: an existing product chosen at planning)."
    )


class UpstreamOutputOut(BaseModel):
    """An output of another job step an input is bound to, delivered or not."""

    job_step_id: int
    order: str = Field(description="<mission>/<order> of that job step (another order's, when it plans it).")
    output_index: int
    product_type: str
    file_name: str
    policy: str | None
    state: str = Field(description="State of the job step that makes it.")
    product_id: int | None = Field(description="The registered product, once delivered.")
    given_up_at: datetime | None = Field(description="Dropped after an input timeout (not consumed).")


class InputOut(BaseModel):
    source_class: str
    rule: str
    mandatory: bool
    min_cover: float | None
    filters: dict[str, Any]
    satisfied: bool
    explanation: str = Field(description="Why these inputs (or why none yet), for people.")
    origin: str | None = Field(description="Where the rule was written in the mission file.")
    coverage: float | None
    refreshed_at: datetime | None
    given_up_at: datetime | None = Field(description="An input timeout relaxed this input.")
    chosen: list[ChosenProduct] = Field(
        description="Every product this input consumes (existing and delivered)."
    )
    upstream: list[UpstreamOutputOut] = Field(
        description="Outputs of other job steps this input is bound to."
    )


class PlannedOutputOut(BaseModel):
    index: int
    product_type: str
    file_name: str
    start: datetime
    stop: datetime
    orbit: int | None
    parameters: dict[str, Any]
    storage_key: str
    product_id: int | None = Field(description="The registered product, once the step completed.")


class JobStepOut(BaseModel):
    id: int
    job_id: int
    state: str
    product_type: str
    processor: str
    mode: str
    start: datetime
    stop: datetime
    depth: int
    requested: bool
    planned_outputs: list[PlannedOutputOut]
    task_id: str | None
    try_number: int | None
    exit_code: int | None
    failure_reason: str | None
    log_url: str | None
    started_at: datetime | None
    completed_at: datetime | None
    facility: str | None = Field(
        default=None, description="Where the step runs when its order named several facilities."
    )
    facility_reason: str | None = Field(default=None, description="Why the facility choice took it.")
    facility_scores: dict[str, Any] | None = Field(
        default=None, description="Every candidate facility's figures the choice compared."
    )
    run_ref: str | None = Field(
        default=None,
        description="The backend's own name for the current or latest try's run, e.g. "
        "'slurm:4711' (a Slurm job id); null where the step runs in its task process.",
    )


class JobStepDetail(JobStepOut):
    inputs: list[InputOut]


class ProductFileOut(BaseModel):
    file_name: str
    url: str
    size: int | None
    md5: str | None
    sha256: str | None
    xxh128: str | None = None  # what staging verifies with; None for files catalogued before it


class ProductOut(BaseModel):
    id: int
    uuid: str
    product_type: str
    file_class: str
    mode: str | None
    start: str
    stop: str
    generation_time: str | None
    production_type: str | None
    status: str
    parameters: dict[str, Any]
    footprint: dict[str, Any] | None = None
    files: list[ProductFileOut]


class OperationRequest(BaseModel):
    """Body of ``POST .../orders/{identifier}/{operation}``."""

    message: Text | None = Field(
        default=None, max_length=10_000, description="Reason, kept in the order's history."
    )
    force: bool = Field(default=False, description="suspend only: stop running job steps at once.")
    max_steps: int | None = Field(
        default=None, ge=1, le=MAX_INT64, description="plan only: refuse larger plans."
    )


class RoleGrant(BaseModel):
    role: str = Field(max_length=16, description="viewer, operator or admin")


# --- builders ---------------------------------------------------------------------------------


def step_counts_many(session: Session, order_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Job steps per state for many orders in one statement."""
    counts: dict[int, dict[str, int]] = {oid: {} for oid in order_ids}
    if not order_ids:
        return counts
    rows = session.execute(
        select(Job.order_id, JobStep.state, func.count())
        .join(Job, Job.id == JobStep.job_id)
        .where(Job.order_id.in_(order_ids))
        .group_by(Job.order_id, JobStep.state)
    )
    for oid, state, n in rows:
        counts[oid][state] = int(n)
    return counts


def _summary_fields(o: ProcessingOrder, code: str, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": o.id,
        "mission": code,
        "identifier": o.identifier,
        "state": o.state,
        "classes": list(o.requested_classes),
        "priority": o.priority,
        "created_at": o.created_at,
        "dag_id": o.dag_id,
        "job_steps": sum(counts.values()),
        "progress": counts,
    }


def order_summaries(session: Session, rows: Sequence[tuple[ProcessingOrder, str]]) -> list[OrderSummary]:
    counts = step_counts_many(session, [o.id for o, _ in rows])
    return [OrderSummary(**_summary_fields(o, code, counts[o.id])) for o, code in rows]


def order_detail(session: Session, o: ProcessingOrder, code: str) -> OrderDetail:
    spec = ops.spec_of(session, o)
    return OrderDetail(
        **_summary_fields(o, code, ops.step_counts(session, o)),
        state_message=o.state_message,
        allowed_operations=[op.value for op in allowed_operations(o.state)],
        revision=ops.revision_number(session, o),
        request=json.loads(spec.model_dump_json(exclude_defaults=True)),
        planned_at=o.planned_at,
        plan=o.plan_summary,
        history=[
            OrderEventOut(
                at=e.at,
                operation=e.operation,
                from_state=e.from_state,
                to_state=e.to_state,
                message=e.message,
            )
            for e in o.events
        ],
    )


def product_out(p: Any) -> ProductOut:
    return ProductOut.model_validate(product_dict(p))


def planned_outputs(session: Session, step_ids: Sequence[int]) -> dict[int, list[PlannedOutputOut]]:
    """The planned outputs of these steps (one statement)."""
    out: dict[int, list[PlannedOutputOut]] = {int(i): [] for i in step_ids}
    if not out:
        return out
    for o, ptype in session.execute(
        select(JobStepOutput, ProductClass.product_type)
        .join(ProductClass, ProductClass.id == JobStepOutput.product_class_id)
        .where(JobStepOutput.job_step_id.in_(list(out)))
        .order_by(JobStepOutput.job_step_id, JobStepOutput.output_index)
    ):
        out[o.job_step_id].append(
            PlannedOutputOut(
                index=o.output_index,
                product_type=ptype,
                file_name=o.file_name,
                start=o.sensing_start,
                stop=o.sensing_stop,
                orbit=o.orbit,
                parameters=dict(o.parameters or {}),
                storage_key=o.storage_key,
                product_id=o.product_id,
            )
        )
    return out


def _facility_names(session: Session, steps: Sequence[JobStep]) -> dict[int, str]:
    ids = {s.facility_id for s in steps if s.facility_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Facility.id, Facility.name).where(Facility.id.in_(ids)))
    return {i: n for i, n in rows}


def _step_fields(
    step: JobStep,
    product_type: str,
    processor: str,
    outputs: list[PlannedOutputOut],
    facilities: dict[int, str] | None = None,
) -> dict[str, Any]:
    return {
        "facility": (facilities or {}).get(step.facility_id) if step.facility_id is not None else None,
        "facility_reason": step.facility_reason,
        "facility_scores": step.facility_scores,
        "run_ref": step.run_ref,
        "id": step.id,
        "job_id": step.job_id,
        "state": step.state,
        "product_type": product_type,
        "processor": processor,
        "mode": step.processing_mode,
        "start": step.start_time,
        "stop": step.stop_time,
        "depth": step.depth,
        "requested": step.requested,
        "planned_outputs": outputs,
        "task_id": step.task_id,
        "try_number": step.try_number,
        "exit_code": step.exit_code,
        "failure_reason": step.failure_reason,
        "log_url": step.log_url,
        "started_at": step.started_at,
        "completed_at": step.completed_at,
    }


def _steps_query() -> Any:
    return (
        select(JobStep, ProductClass.product_type, ConfiguredProcessor.identifier)
        .join(ProductClass, ProductClass.id == JobStep.product_class_id)
        .join(ConfiguredProcessor, ConfiguredProcessor.id == JobStep.configured_processor_id)
    )


def job_steps(
    session: Session, order: ProcessingOrder, *, state: str | None = None, limit: int = 100, offset: int = 0
) -> Page[JobStepOut]:
    query = _steps_query().join(Job, Job.id == JobStep.job_id).where(Job.order_id == order.id)
    if state:
        query = query.where(JobStep.state == state.upper())
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(JobStep.depth.desc(), JobStep.start_time, JobStep.id).limit(limit).offset(offset)
    )
    page = rows.all()
    outputs = planned_outputs(session, [s.id for s, _, _ in page])
    names = _facility_names(session, [s for s, _, _ in page])
    items = [JobStepOut(**_step_fields(s, t, p, outputs[s.id], names)) for s, t, p in page]
    return Page[JobStepOut](items=items, total=total, limit=limit, offset=offset)


def job_step_details(
    session: Session, order: ProcessingOrder, step_ids: Sequence[int]
) -> list[JobStepDetail]:
    """Steps of ``order`` with their inputs, in the order of ``step_ids``: a few statements in all.

    Inputs are read the one way (:func:`proseo.planning.stepinputs.read_step_inputs`), so
    products delivered by upstream job steps are listed as chosen like existing ones.
    """
    if not step_ids:
        return []
    rows = session.execute(
        _steps_query()
        .join(Job, Job.id == JobStep.job_id)
        .where(Job.order_id == order.id, JobStep.id.in_(list(step_ids)))
    ).all()
    found_ids = [step.id for step, _, _ in rows]
    read = read_step_inputs(session, found_ids)
    outputs = planned_outputs(session, found_ids)
    names = _facility_names(session, [step for step, _, _ in rows])
    found = {
        step.id: JobStepDetail(
            **_step_fields(step, product_type, processor, outputs[step.id], names),
            inputs=[_input_out(i) for i in read.get(step.id, [])],
        )
        for step, product_type, processor in rows
    }
    return [found[i] for i in step_ids if i in found]


def _input_out(i: StepInput) -> InputOut:
    chosen = [ChosenProduct(product_id=p.product_id, name=p.file_name, policy=p.policy) for p in i.products]
    chosen += [
        ChosenProduct(
            product_id=o.product_id, name=o.product_file, policy=o.policy, via_job_step=o.job_step_id
        )
        for o in i.outputs
        if o.product_id is not None
    ]
    upstream = [
        UpstreamOutputOut(
            job_step_id=o.job_step_id,
            order=o.order,
            output_index=o.output_index,
            product_type=o.product_type,
            file_name=o.file_name,
            policy=o.policy,
            state=o.step_state,
            product_id=o.product_id,
            given_up_at=o.given_up_at,
        )
        for o in (*i.outputs, *i.given_up)
    ]
    return InputOut(
        source_class=i.source_type,
        rule=i.rule_text,
        mandatory=i.mandatory,
        min_cover=i.min_cover,
        filters=i.filters,
        satisfied=i.satisfied,
        explanation=i.explanation,
        origin=i.origin,
        coverage=i.coverage,
        refreshed_at=i.refreshed_at,
        given_up_at=i.given_up_at,
        chosen=chosen,
        upstream=upstream,
    )


def job_step_detail(session: Session, order: ProcessingOrder, step_id: int) -> JobStepDetail | None:
    found = job_step_details(session, order, [step_id])
    return found[0] if found else None


def missions_out(session: Session, code: str | None = None) -> list[MissionOut]:
    """Onboarded missions (or the one named ``code``) with their current revision."""
    counts = dict(
        session.execute(
            select(ProductClass.mission_id, func.count())
            .where(~ProductClass.retired)
            .group_by(ProductClass.mission_id)
        ).all()
    )
    query = select(Mission).order_by(Mission.code)
    if code is not None:
        query = query.where(Mission.code == code)
    out = []
    for m in session.scalars(query):
        rev = latest_revision(session, m.id)
        out.append(
            MissionOut(
                code=m.code,
                name=m.name,
                revision=rev.number if rev else None,
                product_classes=int(counts.get(m.id, 0)),
            )
        )
    return out


def product_classes_out(session: Session, mission_id: int) -> list[ProductClassOut]:
    rows = session.scalars(
        select(ProductClass)
        .where(ProductClass.mission_id == mission_id, ~ProductClass.retired)
        .order_by(ProductClass.product_type)
    )
    return [
        ProductClassOut(
            product_type=c.product_type,
            level=c.level,
            visibility=c.visibility,
            processor_class=c.processor_class,
            enclosing_type=c.enclosing_type,
            slicing_type=c.slicing_type,
            description=c.description,
        )
        for c in rows
    ]
