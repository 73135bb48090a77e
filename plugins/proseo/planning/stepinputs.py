"""The one read of a job step's inputs: every query, and every product it is bound to.

A step's input query is bound to existing products (``input_query_product``) and to
outputs of other job steps (``input_query_output``: of an upstream step of the same
order, or of another active order that plans the product). An output becomes a
product when its step's manifest is registered (``job_step_output.product_id``).

Everything that asks "what does this step consume?" reads it here, by the same rule:
the job spec (what the wrapper stages), readiness (what the step still waits for),
the REST job-step view and the UI, and the order graph. A binding given up after an
input timeout (``given_up_at``) is listed apart and never consumed.

Plain Python and SQLAlchemy: no Airflow. Reads are batched (three statements for any
number of steps).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, null, select
from sqlalchemy.orm import Session, aliased

from proseo.catalog.model_mission import Mission, ProductClass
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryOutput,
    InputQueryProduct,
    Job,
    JobStep,
    JobStepOutput,
    ProcessingOrder,
    StepState,
)
from proseo.catalog.model_product import Product, ProductFile, ProductStatus


@dataclass(frozen=True)
class BoundProduct:
    """An existing product chosen for a query."""

    product_id: int
    product_type: str
    file_name: str | None
    policy: str | None
    available: bool


@dataclass(frozen=True)
class BoundOutput:
    """An output of another job step chosen for a query, and where it stands."""

    output_id: int
    job_step_id: int  # the step that makes it
    order_id: int
    order: str  # "<mission>/<identifier>" of that step's order, for messages
    output_index: int
    product_type: str
    file_name: str
    storage_key: str
    policy: str | None
    step_state: str
    product_id: int | None  # the registered product, once the step completed
    product_file: str | None  # a stored file name of that product
    given_up_at: datetime | None

    @property
    def delivered(self) -> bool:
        return self.product_id is not None

    @property
    def dead(self) -> bool:
        """Its step failed or was skipped: it will not come unless that order is retried."""
        return not self.delivered and self.step_state in (StepState.FAILED.value, StepState.SKIPPED.value)


@dataclass(frozen=True)
class StepInput:
    """One input query of a step with all of its bindings."""

    query_id: int
    job_step_id: int
    source_type: str
    rule_text: str
    mandatory: bool
    min_cover: float | None
    filters: dict[str, Any]
    satisfied: bool
    explanation: str
    origin: str | None
    coverage: float | None
    refreshed_at: datetime | None
    given_up_at: datetime | None
    products: tuple[BoundProduct, ...]
    outputs: tuple[BoundOutput, ...]  # bindings in force
    given_up: tuple[BoundOutput, ...]  # bindings dropped after an input timeout

    @property
    def open(self) -> bool:
        """May still change: unsatisfied, or optional with nothing bound."""
        return not self.satisfied or (not self.mandatory and not self.products and not self.outputs)

    def pending(self) -> list[BoundOutput]:
        """Bound outputs not delivered yet."""
        return [o for o in self.outputs if not o.delivered]

    def consumed(self) -> list[int]:
        """Product ids this input hands to the processor (existing ones, then delivered outputs)."""
        ids = [p.product_id for p in self.products]
        ids += [o.product_id for o in self.outputs if o.product_id is not None]
        return list(dict.fromkeys(ids))


def read_step_inputs(
    session: Session,
    job_step_ids: Sequence[int],
    *,
    names: bool = True,
    queries: Sequence[tuple[InputQuery, str]] | None = None,
) -> dict[int, list[StepInput]]:
    """Every input of the given steps (in query order), keyed by step id; steps without inputs map to [].

    ``names=False`` leaves the products' file names out (readiness needs none, and they
    cost a lookup per bound product); ``queries`` passes the steps' (input query, source
    type) rows a caller already holds, so they are not read twice.
    """
    ids = sorted({int(i) for i in job_step_ids})
    out: dict[int, list[StepInput]] = {i: [] for i in ids}
    if not ids:
        return out
    if queries is None:
        queries = session.execute(
            select(InputQuery, ProductClass.product_type)
            .join(ProductClass, ProductClass.id == InputQuery.source_class_id)
            .where(InputQuery.job_step_id.in_(ids))
            .order_by(InputQuery.job_step_id, InputQuery.id)
        ).all()
    qids = [q.id for q, _ in queries]
    products: dict[int, list[BoundProduct]] = defaultdict(list)
    outputs: dict[int, list[BoundOutput]] = defaultdict(list)
    if qids:
        for qid, pid, policy, ptype, status, name in session.execute(
            select(
                InputQueryProduct.query_id,
                InputQueryProduct.product_id,
                InputQueryProduct.policy,
                ProductClass.product_type,
                Product.status,
                _file_name(InputQueryProduct.product_id) if names else null(),
            )
            .join(Product, Product.id == InputQueryProduct.product_id)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .where(InputQueryProduct.query_id.in_(qids))
            .order_by(Product.sensing_start, Product.id)
        ):
            products[qid].append(
                BoundProduct(pid, ptype, name, policy, status == ProductStatus.AVAILABLE.value)
            )
        up = aliased(JobStep)
        for row in session.execute(
            select(
                InputQueryOutput.query_id,
                InputQueryOutput.policy,
                InputQueryOutput.given_up_at,
                JobStepOutput.id,
                JobStepOutput.job_step_id,
                JobStepOutput.output_index,
                JobStepOutput.file_name,
                JobStepOutput.storage_key,
                JobStepOutput.product_id,
                ProductClass.product_type,
                up.state,
                ProcessingOrder.id,
                ProcessingOrder.identifier,
                Mission.code,
                _file_name(JobStepOutput.product_id) if names else null(),
            )
            .join(JobStepOutput, JobStepOutput.id == InputQueryOutput.output_id)
            .join(ProductClass, ProductClass.id == JobStepOutput.product_class_id)
            .join(up, up.id == JobStepOutput.job_step_id)
            .join(Job, Job.id == up.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .join(Mission, Mission.id == ProcessingOrder.mission_id)
            .where(InputQueryOutput.query_id.in_(qids))
            .order_by(JobStepOutput.sensing_start, JobStepOutput.id)
        ):
            (qid, policy, given_up_at, oid, sid, index, file_name, key, product_id) = row[:9]
            ptype, state, order_id, identifier, mission, stored = row[9:]
            outputs[qid].append(
                BoundOutput(
                    output_id=oid,
                    job_step_id=sid,
                    order_id=order_id,
                    order=f"{mission}/{identifier}",
                    output_index=index,
                    product_type=ptype,
                    file_name=file_name,
                    storage_key=key,
                    policy=policy,
                    step_state=state,
                    product_id=product_id,
                    product_file=stored,
                    given_up_at=given_up_at,
                )
            )
    for q, ptype in queries:
        bound = outputs.get(q.id, [])
        out[q.job_step_id].append(
            StepInput(
                query_id=q.id,
                job_step_id=q.job_step_id,
                source_type=ptype,
                rule_text=q.rule_text,
                mandatory=q.mandatory,
                min_cover=q.min_cover,
                filters=dict(q.filters or {}),
                satisfied=q.satisfied,
                explanation=q.explanation or "",
                origin=q.origin,
                coverage=q.coverage,
                refreshed_at=q.refreshed_at,
                given_up_at=q.given_up_at,
                products=tuple(products.get(q.id, [])),
                outputs=tuple(o for o in bound if o.given_up_at is None),
                given_up=tuple(o for o in bound if o.given_up_at is not None),
            )
        )
    return out


def _file_name(product_id: Any) -> Any:
    """A stored file name of the product (for people: listings and pages)."""
    return (
        select(func.min(ProductFile.file_name)).where(ProductFile.product_id == product_id).scalar_subquery()
    )


def upstream_steps(inputs: Sequence[StepInput]) -> dict[int, str]:
    """Steps whose outputs the inputs still count on (given-up bindings excluded): id -> state."""
    found: dict[int, str] = {}
    for i in inputs:
        for o in i.outputs:
            found[o.job_step_id] = o.step_state
    return found
