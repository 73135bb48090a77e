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
    JobStepEdge,
    ProcessingOrder,
    StepState,
)
from proseo.planning.readiness.asks import _chooses_upstream, _rule
from proseo.planning.readiness.giveup import _drop_unfinished_upstream
from proseo.planning.readiness.reevaluate import _evaluate_all
from proseo.planning.readiness.results import DEAD_STATES, OPEN_STATES, StepReadiness
from proseo.rules.ast import SimpleRule


@dataclass
class _StepWork:
    step: JobStep
    order: ProcessingOrder
    queries: list[InputQuery]
    upstream: set[int]
    given_up_upstream: set[int]


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
    for q in session.scalars(
        select(InputQuery).where(InputQuery.job_step_id.in_([s.id for s in steps])).order_by(InputQuery.id)
    ):
        queries[q.job_step_id].append(q)
    all_qids = [q.id for qs in queries.values() for q in qs]
    picked = (
        set(
            session.scalars(
                select(InputQueryProduct.query_id).where(InputQueryProduct.query_id.in_(all_qids)).distinct()
            )
        )
        if all_qids
        else set()
    )
    upstream: dict[int, set[int]] = defaultdict(set)
    for up_id, down_id in session.execute(
        select(JobStepEdge.upstream_id, JobStepEdge.downstream_id).where(
            JobStepEdge.downstream_id.in_([s.id for s in steps])
        )
    ):
        upstream[down_id].add(up_id)
    work: list[_StepWork] = []
    for s in steps:
        given_up_upstream: set[int] = set()
        for q in queries[s.id]:
            expl = q.explanation or {}
            upstream[s.id].update(int(c["job_step"]) for c in expl.get("chosen", []) if "job_step" in c)
            given_up_upstream.update(int(x) for x in expl.get("given_up_upstream", []))
        work.append(_StepWork(s, orders[s.job_id], queries[s.id], upstream[s.id], given_up_upstream))
    up_ids = sorted({u for w in work for u in w.upstream})
    up_state: dict[int, str] = (
        dict(session.execute(select(JobStep.id, JobStep.state).where(JobStep.id.in_(up_ids))).all())
        if up_ids
        else {}
    )

    # Which queries to evaluate: open ones of steps whose inputs may still change.
    def is_open(q: InputQuery) -> bool:
        if not q.satisfied:
            return True
        return not q.mandatory and q.id not in picked and not _chooses_upstream(q.explanation)

    todo: list[tuple[_StepWork, InputQuery, SimpleRule]] = []
    for w in work:
        if w.step.state not in OPEN_STATES:
            continue
        for q in w.queries:
            if is_open(q):
                todo.append((w, q, _rule(q.rule_text)))

    selections = _evaluate_all(session, todo, relax=give_up is not None)
    now = utcnow()
    stamp = now.isoformat()
    new_picks: list[dict[str, Any]] = []
    replaced: list[int] = []
    newly: dict[int, list[str]] = defaultdict(list)
    gave_up: dict[int, list[str]] = defaultdict(list)
    type_of = _type_names(session, {q.source_class_id for w in work for q in w.queries})
    for (w, q, _parsed), (selection, relaxed) in zip(todo, selections, strict=True):
        label = f"{type_of.get(q.source_class_id, q.source_class_id)}: {q.rule_text}"
        old = dict(q.explanation or {})
        if selection.chosen:
            replaced.append(q.id)
            chosen_ids: dict[Any, str] = {}
            for c in selection.chosen:
                chosen_ids[c.candidate.id] = c.policy.value
            new_picks.extend(
                {"query_id": q.id, "product_id": pid, "policy": pol} for pid, pol in chosen_ids.items()
            )
            expl = {
                **old,
                "text": selection.explanation,
                "coverage": round(selection.coverage, 3),
                "chosen": [
                    {"product": c.candidate.id, "product_type": c.product_type, "policy": c.policy.value}
                    for c in selection.chosen
                ],
                "refreshed_at": stamp,
            }
            expl.setdefault("planning_text", old.get("text"))
            if relaxed:
                expl["given_up"] = {"at": stamp, "reason": give_up, "products": len(chosen_ids)}
                gave_up[w.step.id].append(label)
            q.explanation = expl
            q.satisfied = True
            newly[w.step.id].append(label)
        elif relaxed:
            q.explanation = {
                **old,
                "text": f"given up, nothing found: {selection.explanation}",
                "given_up": {"at": stamp, "reason": give_up, "products": 0},
                "refreshed_at": stamp,
            }
            q.satisfied = True
            gave_up[w.step.id].append(label)
        elif not q.satisfied and old.get("text") != selection.explanation:
            # Still waiting: keep the latest reason (candidate counts, coverage) for listings.
            expl = {**old, "text": selection.explanation, "refreshed_at": stamp}
            expl.setdefault("planning_text", old.get("text"))
            q.explanation = expl

    if give_up is not None:
        _drop_unfinished_upstream(work, up_state, stamp, give_up, gave_up)

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
            w.step.state = StepState.PLANNED.value
            w.step.failure_reason = None
        pending = tuple(
            sorted(
                u for u in w.upstream - w.given_up_upstream if up_state.get(u) != StepState.COMPLETED.value
            )
        )
        out[w.step.id] = StepReadiness(
            job_step_id=w.step.id,
            state=w.step.state,
            upstream_pending=pending,
            waiting=waiting,
            upstream_failed=tuple(u for u in pending if up_state.get(u) in DEAD_STATES),
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
