"""Writing a plan into the catalogue, and reading it back as a job-step graph.

A plan is written in one transaction, its ids allocated up front and its rows
streamed in (COPY on PostgreSQL, executemany on SQLite; :mod:`proseo.planning.bulk`):
jobs (one per distinct slice), job steps, their planned outputs (``job_step_output``, each with its storage
key and the key of the product it will be), edges, input queries, and each query's
bindings: the existing products it chose (``input_query_product``) and the outputs
of other job steps it chose (``input_query_output``), each with its policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from proseo.catalog import products
from proseo.catalog.model_mission import ConfiguredProcessor as ConfiguredProcessorRow
from proseo.catalog.model_mission import Mission, ProductClass, Spacecraft
from proseo.catalog.model_mission import Orbit as OrbitRow
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryOutput,
    InputQueryProduct,
    Job,
    JobStep,
    JobStepEdge,
    JobStepOutput,
    ProcessingOrder,
    StepState,
)
from proseo.planning.bulk import RowWriter, allocate_ids
from proseo.planning.claims import refuse_if_awaited
from proseo.planning.graph import Graph, Node
from proseo.planning.model import Plan
from proseo.planning.stepinputs import read_step_inputs

#: Input queries handed to the writer at a time (a year's plan has about 115,000).
CHUNK = 20_000


def clear_plan(session: Session, order: ProcessingOrder) -> None:
    """Remove an order's jobs and everything under them (cascades to steps, outputs, queries).

    Refused while another order's job step waits for one of this order's outputs.
    """
    refuse_if_awaited(session, order)
    session.execute(delete(Job).where(Job.order_id == order.id))
    session.expire(order, ["jobs"])


def write_plan(
    session: Session,
    order: ProcessingOrder,
    plan: Plan,
    *,
    class_ids: dict[str, int] | None = None,
    processor_ids: dict[str, int] | None = None,
) -> dict[int, int]:
    """Insert the plan; returns plan step index -> job_step.id.

    The planner already looked up the mission's class and processor ids; passing them
    saves reading them twice in the planning transaction.
    """
    mission_id = order.mission_id
    mission = session.scalar(select(Mission.code).where(Mission.id == mission_id)) or ""
    if class_ids is None:
        class_ids = products.class_ids(session, mission_id)
    if processor_ids is None:
        processor_ids = products.processor_ids(session, mission_id)
    orbit_numbers = {s.slice.orbit for s in plan.steps if s.slice.orbit is not None}
    orbit_ids: dict[int, int] = {}
    if orbit_numbers:
        orbit_ids = dict(
            session.execute(
                select(OrbitRow.number, OrbitRow.id)
                .join(Spacecraft, OrbitRow.spacecraft_id == Spacecraft.id)
                .where(OrbitRow.number.in_(sorted(orbit_numbers)), Spacecraft.mission_id == mission_id)
            ).all()
        )

    slices = sorted({(s.slice.start, s.slice.stop, s.slice.orbit) for s in plan.steps})
    # Every id first (the writer then has the connection to itself): four statements.
    ids = _Ids(
        jobs=allocate_ids(session, Job, len(slices)),
        steps=allocate_ids(session, JobStep, len(plan.steps)),
        outputs=allocate_ids(session, JobStepOutput, sum(len(s.outputs) for s in plan.steps)),
        queries=allocate_ids(session, InputQuery, sum(len(s.inputs) for s in plan.steps)),
    )
    with RowWriter(session) as writer:
        _write_rows(writer, order, plan, mission, class_ids, processor_ids, orbit_ids, slices, ids)
    return {s.index: ids.steps[s.index] for s in plan.steps}


@dataclass(frozen=True)
class _Ids:
    jobs: list[int]
    steps: list[int]
    outputs: list[int]
    queries: list[int]


def _write_rows(
    writer: RowWriter,
    order: ProcessingOrder,
    plan: Plan,
    mission: str,
    class_ids: dict[str, int],
    processor_ids: dict[str, int],
    orbit_ids: dict[int, int],
    slices: list[tuple[datetime, datetime, int | None]],
    ids: _Ids,
) -> None:
    """Each table's rows, in the order their foreign keys need."""
    job_ids, step_ids, output_ids, query_ids = ids.jobs, ids.steps, ids.outputs, ids.queries
    job_of = {key: job_ids[n] for n, key in enumerate(slices)}
    writer.write(
        Job,
        [
            {
                "id": job_of[(a, b, o)],
                "order_id": order.id,
                "start_time": a,
                "stop_time": b,
                "orbit_id": orbit_ids.get(o) if o is not None else None,
                "state": StepState.PLANNED.value,
                "priority": order.priority,
            }
            for a, b, o in slices
        ],
    )

    writer.write(
        JobStep,
        [
            {
                "id": step_ids[s.index],
                "job_id": job_of[(s.slice.start, s.slice.stop, s.slice.orbit)],
                "state": (
                    StepState.WAITING_INPUT if any(i.waits_for_input for i in s.inputs) else StepState.PLANNED
                ).value,
                "product_class_id": class_ids[s.product_type],
                "configured_processor_id": processor_ids[s.processor.id],
                "processing_mode": plan.mode,
                "start_time": s.slice.start,
                "stop_time": s.slice.stop,
                "depth": s.depth,
                "requested": s.requested,
            }
            for s in plan.steps
        ],
    )

    output_of: dict[tuple[int, int], int] = {}
    output_rows: list[dict[str, Any]] = []
    for s in plan.steps:
        for n, o in enumerate(s.outputs):
            oid = output_of[(s.index, n)] = output_ids[len(output_rows)]
            output_rows.append(
                {
                    "id": oid,
                    "job_step_id": step_ids[s.index],
                    "output_index": n,
                    "product_class_id": class_ids[o.product_type],
                    "file_name": o.file_name,
                    "sensing_start": o.start,
                    "sensing_stop": o.stop,
                    "orbit": o.orbit,
                    "parameters": o.parameters,
                    "storage_key": products.storage_key(o.product_type, o.start, o.file_name),
                    "product_key": products.product_key(
                        mission=mission,
                        product_type=o.product_type,
                        file_class=plan.file_class,
                        mode=plan.mode,
                        start=o.start,
                        stop=o.stop,
                        configured_processor=s.processor.id,
                        parameters=o.parameters,
                    ),
                    "claim": None,  # claimed at release (planning/claims.py)
                }
            )
    writer.write(JobStepOutput, output_rows)

    writer.write(
        JobStepEdge,
        [
            {"upstream_id": step_ids[u], "downstream_id": step_ids[s.index]}
            for s in plan.steps
            for u in sorted(s.upstream)
        ],
    )

    query_rows: list[dict[str, Any]] = []
    picks: dict[tuple[int, int], dict[str, Any]] = {}
    bindings: dict[tuple[int, int], dict[str, Any]] = {}
    written = 0
    for s in plan.steps:
        if len(query_rows) >= CHUNK:
            # Handed over in pieces: the server stores one while the next is built.
            _write_queries(writer, query_rows, picks, bindings)
            written += len(query_rows)
            query_rows, picks, bindings = [], {}, {}
        for inp in s.inputs:
            qid = query_ids[written + len(query_rows)]
            query_rows.append(
                {
                    "id": qid,
                    "job_step_id": step_ids[s.index],
                    "source_class_id": class_ids[inp.source_types[0]],
                    "rule_text": inp.rule_text,
                    "mandatory": inp.mandatory,
                    "min_cover": inp.min_cover,
                    "filters": inp.filters,
                    "satisfied": inp.satisfied,
                    "explanation": inp.explanation,
                    "origin": inp.origin,
                    "coverage": round(inp.coverage, 3),
                }
            )
            for c in inp.chosen:
                if c.product_id is not None:
                    picks.setdefault(
                        (qid, c.product_id), {"query_id": qid, "product_id": c.product_id, "policy": c.policy}
                    )
                    continue
                if c.output_id is not None:
                    oid = c.output_id
                else:
                    assert c.step is not None and c.output is not None
                    oid = output_of[(c.step, c.output)]
                bindings.setdefault((qid, oid), {"query_id": qid, "output_id": oid, "policy": c.policy})
    _write_queries(writer, query_rows, picks, bindings)


def _write_queries(
    writer: RowWriter,
    query_rows: list[dict[str, Any]],
    picks: dict[tuple[int, int], dict[str, Any]],
    bindings: dict[tuple[int, int], dict[str, Any]],
) -> None:
    """Input queries, then what they chose (their keys need the queries first)."""
    writer.write(InputQuery, query_rows)
    writer.write(InputQueryProduct, list(picks.values()))
    writer.write(InputQueryOutput, list(bindings.values()))


def order_graph(session: Session, order: ProcessingOrder) -> Graph:
    """The stored plan as a graph: job steps, their external inputs, and edges."""
    steps = session.execute(
        select(JobStep, ProductClass.product_type, ConfiguredProcessorRow.identifier, Job)
        .join(Job, JobStep.job_id == Job.id)
        .join(ProductClass, JobStep.product_class_id == ProductClass.id)
        .join(ConfiguredProcessorRow, JobStep.configured_processor_id == ConfiguredProcessorRow.id)
        .where(Job.order_id == order.id)
        .order_by(JobStep.id)
    ).all()
    ids = [row[0].id for row in steps]
    orbits = (
        dict(
            session.execute(
                select(JobStepOutput.job_step_id, JobStepOutput.orbit).where(
                    JobStepOutput.job_step_id.in_(ids), JobStepOutput.output_index == 0
                )
            ).all()
        )
        if ids
        else {}
    )
    nodes: list[Node] = []
    for step, ptype, processor, job in steps:
        orbit = orbits.get(step.id)
        group = f"orbit {orbit}" if orbit else f"{job.start_time:%Y-%m-%d %H:%M}"
        nodes.append(Node(f"step-{step.id}", ptype, step.state, group, processor))
    edges: list[tuple[str, str]] = []
    if ids:
        for up, down in session.execute(
            select(JobStepEdge.upstream_id, JobStepEdge.downstream_id).where(
                JobStepEdge.downstream_id.in_(ids)
            )
        ):
            edges.append((f"step-{up}", f"step-{down}"))
        external: dict[str, Node] = {}
        own = set(ids)
        for step_id, inputs in read_step_inputs(session, ids).items():
            for i in inputs:
                awaited = i.mandatory and not i.satisfied
                elsewhere = [o for o in i.outputs if o.job_step_id not in own]
                if not (i.products or awaited or elsewhere):
                    continue
                node_id = f"input-{i.source_type}"
                if awaited or (elsewhere and any(o.product_id is None for o in elsewhere)):
                    label = "awaited input" if awaited else "made by another order"
                    external[node_id] = Node(
                        node_id, i.source_type, "WAITING_INPUT", "inputs", label, "input"
                    )
                else:
                    external.setdefault(
                        node_id, Node(node_id, i.source_type, "EXISTING", "inputs", "input products", "input")
                    )
                edges.append((node_id, f"step-{step_id}"))
        nodes.extend(external.values())
    return Graph(f"{order.identifier} ({order.state})", tuple(nodes), tuple(dict.fromkeys(edges)))
