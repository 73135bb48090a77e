"""The expensive question, asked only for the steps a poll flags: refresh their inputs.

:func:`refresh_many` locks the steps, re-evaluates their open queries (see
:mod:`~proseo.planning.readiness.reevaluate`) and records the outcome the way planning
does, in the caller's transaction; reading everything it needs in a few batched
statements keeps thousands of steps affordable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, load_only

from proseo.catalog.db import utcnow
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryProduct,
    Job,
    JobStep,
    ProcessingOrder,
    StepState,
)
from proseo.planning.readiness.asks import _rule
from proseo.planning.readiness.giveup import _drop_unfinished_upstream
from proseo.planning.readiness.reevaluate import _evaluate_all
from proseo.planning.readiness.results import DEAD_STATES, OPEN_STATES, StepReadiness
from proseo.planning.step_states import StepOp, move_step
from proseo.planning.stepinputs import StepInput, read_step_inputs
from proseo.rules.ast import SimpleRule


@dataclass
class _StepWork:
    step: JobStep
    order: ProcessingOrder
    queries: list[InputQuery]
    inputs: dict[int, StepInput]  # query id -> its bindings (the one read, planning/stepinputs.py)

    def pending(self) -> dict[int, str]:
        """Upstream steps that still owe an output: id -> state."""
        return {o.job_step_id: o.step_state for i in self.inputs.values() for o in i.pending()}


def refresh_many(
    session: Session, job_step_ids: Sequence[int], *, give_up: str | None = None
) -> dict[int, StepReadiness]:
    """Refresh several steps in the caller's transaction, sharing one candidate fetch per mission.

    Steps that do not exist are missing from the result. ``give_up`` (a reason) turns
    the refresh into :func:`give_up_waiting`.
    """
    ids = sorted({int(i) for i in job_step_ids})
    if not ids:
        return {}
    steps = session.scalars(
        select(JobStep).where(JobStep.id.in_(ids)).order_by(JobStep.id).with_for_update()
    ).all()
    if not steps:
        return {}
    # Each order once, with only what refreshing needs (not its plan summary or DAG
    # blueprint, which are large: thousands of steps would decode them thousands of times).
    order_of: dict[int, int] = {
        job_id: order_id
        for job_id, order_id in session.execute(
            select(Job.id, Job.order_id).where(Job.id.in_(sorted({s.job_id for s in steps})))
        )
    }
    by_id = {
        o.id: o
        for o in session.scalars(
            select(ProcessingOrder)
            .where(ProcessingOrder.id.in_(sorted(set(order_of.values()))))
            .options(load_only(ProcessingOrder.id, ProcessingOrder.mission_id, ProcessingOrder.input_filters))
        )
    }
    orders = {job_id: by_id[order_id] for job_id, order_id in order_of.items()}
    queries: dict[int, list[InputQuery]] = defaultdict(list)
    rows = session.execute(
        select(InputQuery, ProductClass.product_type)
        .join(ProductClass, ProductClass.id == InputQuery.source_class_id)
        .where(InputQuery.job_step_id.in_([s.id for s in steps]))
        .order_by(InputQuery.job_step_id, InputQuery.id)
    ).all()
    for q, _ in rows:
        queries[q.job_step_id].append(q)
    # The bindings, read the one way; the query rows above are handed over, not read again.
    read = read_step_inputs(session, [s.id for s in steps], names=False, queries=rows)
    work = [
        _StepWork(s, orders[s.job_id], queries[s.id], {i.query_id: i for i in read.get(s.id, [])})
        for s in steps
    ]

    # Which queries to evaluate: open ones of steps whose inputs may still change.
    todo: list[tuple[_StepWork, InputQuery, SimpleRule]] = []
    for w in work:
        if w.step.state not in OPEN_STATES:
            continue
        for q in w.queries:
            if w.inputs[q.id].open:
                todo.append((w, q, _rule(q.rule_text)))

    selections = _evaluate_all(session, todo, relax=give_up is not None)
    now = utcnow()
    new_picks: list[dict[str, Any]] = []
    replaced: list[int] = []
    newly: dict[int, list[str]] = defaultdict(list)
    gave_up: dict[int, list[str]] = defaultdict(list)
    type_of = _type_names(session, {q.source_class_id for w in work for q in w.queries})
    for (w, q, _parsed), (selection, relaxed) in zip(todo, selections, strict=True):
        label = f"{type_of.get(q.source_class_id, q.source_class_id)}: {q.rule_text}"
        if selection.chosen:
            replaced.append(q.id)
            chosen_ids: dict[Any, str] = {}
            for c in selection.chosen:
                chosen_ids[c.candidate.id] = c.policy.value
            new_picks.extend(
                {"query_id": q.id, "product_id": pid, "policy": pol} for pid, pol in chosen_ids.items()
            )
            q.explanation = selection.explanation
            q.coverage = round(selection.coverage, 3)
            q.refreshed_at = now
            if relaxed:
                q.given_up_at = now
                q.explanation = (
                    f"given up waiting ({give_up}): took the {len(chosen_ids)} product(s) found; "
                    f"{selection.explanation}"
                )
                gave_up[w.step.id].append(label)
            q.satisfied = True
            newly[w.step.id].append(label)
        elif relaxed:
            q.explanation = f"given up waiting ({give_up}), nothing found: {selection.explanation}"
            q.given_up_at = now
            q.refreshed_at = now
            q.satisfied = True
            gave_up[w.step.id].append(label)
        elif not q.satisfied and q.explanation != selection.explanation:
            # Still waiting: keep the latest reason (candidate counts, coverage) for listings.
            q.explanation = selection.explanation
            q.coverage = round(selection.coverage, 3)
            q.refreshed_at = now

    if give_up is not None:
        _drop_unfinished_upstream(session, work, now, give_up, gave_up)
        read = read_step_inputs(session, [w.step.id for w in work], names=False, queries=rows)
        for w in work:
            w.inputs = {i.query_id: i for i in read.get(w.step.id, [])}

    if replaced:
        session.execute(delete(InputQueryProduct).where(InputQueryProduct.query_id.in_(replaced)))
    if new_picks:
        session.execute(insert(InputQueryProduct), new_picks)

    out: dict[int, StepReadiness] = {}
    for w in work:
        waiting = tuple(
            f"{type_of.get(q.source_class_id, q.source_class_id)}: {q.rule_text}"
            for q in w.queries
            if q.mandatory and not q.satisfied
        )
        if w.step.state == StepState.WAITING_INPUT.value and not waiting:
            move_step(w.step, StepOp.INPUTS_COMPLETE)
        pending = w.pending()
        out[w.step.id] = StepReadiness(
            job_step_id=w.step.id,
            state=w.step.state,
            upstream_pending=tuple(sorted(pending)),
            waiting=waiting,
            upstream_failed=tuple(sorted(u for u, state in pending.items() if state in DEAD_STATES)),
            newly_satisfied=tuple(newly[w.step.id]),
            given_up=tuple(gave_up[w.step.id]),
        )
    session.flush()
    return out


def _type_names(session: Session, class_ids: set[int]) -> dict[int, str]:
    if not class_ids:
        return {}
    return dict(
        session.execute(
            select(ProductClass.id, ProductClass.product_type).where(ProductClass.id.in_(sorted(class_ids)))
        ).all()
    )
