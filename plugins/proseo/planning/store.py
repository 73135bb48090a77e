"""Writing a plan into the catalogue, and reading it back as a job-step graph.

A plan is written in one transaction with bulk inserts: jobs (one per distinct
slice), job steps, edges, input queries and the products each query chose. Planned
outputs chosen by a query are recorded in its explanation (they have no product
rows yet) and as edges between job steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from proseo.catalog import products
from proseo.catalog.model_mission import ConfiguredProcessor as ConfiguredProcessorRow
from proseo.catalog.model_mission import Orbit as OrbitRow
from proseo.catalog.model_mission import ProductClass, Spacecraft
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryProduct,
    Job,
    JobStep,
    JobStepEdge,
    ProcessingOrder,
    StepState,
)
from proseo.planning.graph import Graph, Node
from proseo.planning.model import Plan


def clear_plan(session: Session, order: ProcessingOrder) -> None:
    """Remove an order's jobs and everything under them (cascades to steps, edges, queries)."""
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
    job_rows = [
        {
            "order_id": order.id,
            "start_time": a,
            "stop_time": b,
            "orbit_id": orbit_ids.get(o) if o is not None else None,
            "state": StepState.PLANNED.value,
            "priority": order.priority,
        }
        for a, b, o in slices
    ]
    job_keys = _insert_keyed(session, Job, job_rows, ("start_time", "stop_time"))
    job_of = {(a, b, o): job_keys[(a, b)] for a, b, o in slices}

    step_rows = []
    for s in plan.steps:
        waiting = any(i.waits_for_input for i in s.inputs)
        step_rows.append(
            {
                "job_id": job_of[(s.slice.start, s.slice.stop, s.slice.orbit)],
                "state": (StepState.WAITING_INPUT if waiting else StepState.PLANNED).value,
                "product_class_id": class_ids[s.product_type],
                "configured_processor_id": processor_ids[s.processor.id],
                "processing_mode": plan.mode,
                "start_time": s.slice.start,
                "stop_time": s.slice.stop,
                "planned_outputs": [o.as_json() for o in s.outputs],
                "depth": s.depth,
                "requested": s.requested,
            }
        )
    step_keys = _insert_keyed(session, JobStep, step_rows, ("product_class_id", "start_time", "stop_time"))
    step_ids = [step_keys[(r["product_class_id"], r["start_time"], r["stop_time"])] for r in step_rows]
    edges = [
        {"upstream_id": step_ids[u], "downstream_id": step_ids[s.index]}
        for s in plan.steps
        for u in sorted(s.upstream)
    ]
    if edges:
        session.execute(insert(JobStepEdge), edges)

    query_rows: list[dict[str, Any]] = []
    chosen_rows: list[list[tuple[int, str]]] = []
    for s in plan.steps:
        for inp in s.inputs:
            explanation = inp.explanation_json()
            for c in explanation["chosen"]:
                if "planned_step" in c:
                    c["job_step"] = step_ids[c.pop("planned_step")]
            query_rows.append(
                {
                    "job_step_id": step_ids[s.index],
                    "source_class_id": class_ids[inp.source_types[0]],
                    "rule_text": inp.rule_text,
                    "mandatory": inp.mandatory,
                    "min_cover": inp.min_cover,
                    "filters": inp.filters,
                    "satisfied": inp.satisfied,
                    "explanation": explanation,
                }
            )
            chosen_rows.append([(c.product_id, c.policy) for c in inp.chosen if c.product_id is not None])
    query_keys = _insert_keyed(session, InputQuery, query_rows, ("job_step_id", "rule_text"))
    query_ids = [query_keys[(r["job_step_id"], r["rule_text"])] for r in query_rows]
    picks = [
        {"query_id": qid, "product_id": pid, "policy": policy}
        for qid, chosen in zip(query_ids, chosen_rows, strict=True)
        for pid, policy in dict(chosen).items()
    ]
    if picks:
        session.execute(insert(InputQueryProduct), picks)
    return {s.index: step_ids[s.index] for s in plan.steps}


def _insert_keyed(
    session: Session, table: type[Any], rows: Sequence[dict[str, Any]], key: tuple[str, ...]
) -> dict[tuple[Any, ...], int]:
    """Bulk insert; returns natural key -> new id.

    RETURNING the natural key (unique within one plan) instead of asking for rows in
    parameter order keeps this one multi-row statement per batch on SQLite too, where
    ordered RETURNING would fall back to a statement per row.
    """
    columns = [getattr(table, k) for k in key]
    out: dict[tuple[Any, ...], int] = {}
    for offset in range(0, len(rows), 1000):
        chunk = rows[offset : offset + 1000]
        statement = insert(table).returning(table.id, *columns)
        # render_nulls: rows with and without NULLs share one statement shape (one batch).
        for row in session.execute(statement, chunk, execution_options={"render_nulls": True}):
            out[tuple(row[1:])] = row[0]
    if len(out) != len(rows):
        raise AssertionError(f"{table.__tablename__}: natural key {key} is not unique within the plan")
    return out


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
    nodes: list[Node] = []
    for step, ptype, processor, job in steps:
        group = (
            f"orbit {step.planned_outputs[0]['orbit']}"
            if step.planned_outputs[0].get("orbit")
            else (f"{job.start_time:%Y-%m-%d %H:%M}")
        )
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
        for step_id, ptype, satisfied, mandatory, explanation in session.execute(
            select(
                InputQuery.job_step_id,
                ProductClass.product_type,
                InputQuery.satisfied,
                InputQuery.mandatory,
                InputQuery.explanation,
            )
            .join(ProductClass, InputQuery.source_class_id == ProductClass.id)
            .where(InputQuery.job_step_id.in_(ids))
        ):
            chosen = (explanation or {}).get("chosen", [])
            uses_existing = any("product" in c for c in chosen)
            awaited = mandatory and not satisfied
            if not (uses_existing or awaited):
                continue
            node_id = f"input-{ptype}"
            if awaited:
                external[node_id] = Node(node_id, ptype, "WAITING_INPUT", "inputs", "awaited input", "input")
            else:
                external.setdefault(
                    node_id, Node(node_id, ptype, "EXISTING", "inputs", "input products", "input")
                )
            edges.append((node_id, f"step-{step_id}"))
        nodes.extend(external.values())
    return Graph(f"{order.identifier} ({order.state})", tuple(nodes), tuple(dict.fromkeys(edges)))
