"""The cheap question, asked once per poll interval for all waiting steps together.

:func:`poll_readiness` answers, in one SQL statement in the steady state, which steps
are ready, which got new candidate products (and need the expensive refresh) and
which can never become ready, so the triggerer's cost does not grow with the number
of waiting steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, literal, null, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from proseo.catalog.model_order import (
    InputQuery,
    InputQueryOutput,
    InputQueryProduct,
    Job,
    JobStep,
    JobStepOutput,
    ProcessingOrder,
)
from proseo.planning.readiness.asks import _asks_of, _Open
from proseo.planning.readiness.cursor import PollCursor, Spans, _covers, _new_products_query, _NewProducts
from proseo.planning.readiness.results import DEAD_STATES, OPEN_STATES, PollStatus, StepPoll

#: Products are stamped ``created_at`` before their transaction commits; a poll passes
#: ``since`` = start of the previous poll minus this lag so a product committed late
#: (a large ingestion batch, a registration with lineage, clock skew between hosts) is
#: still seen. Seeing a product twice only costs one more refresh of the steps concerned.
COMMIT_LAG = timedelta(seconds=60)


def poll_readiness(
    session: Session, job_step_ids: Iterable[int], since: datetime | PollCursor | None
) -> dict[int, StepPoll]:
    """Which of these steps became ready, or got new candidate products since ``since``.

    One SQL statement in the steady state, two at most, whatever the number of steps:

    1. the steps (state, mission, window), with two correlated counts over their
       upstream bindings (``input_query_output`` rows not given up whose output has no
       product yet: the steps that still owe one; of those, FAILED or SKIPPED ones; the
       upstream step may belong to another order), outer-joined to their *open* input
       queries (unsatisfied, or optional with nothing bound) with the rule text;
    2. only when a watermark is given and some step has an open query: the new
       products, ``created_at >= since`` and AVAILABLE, restricted per (mission, product
       type) of every alternative of every open query to the union of the windows the
       rules ask about (no window for window-less and "closest" policies), so the
       condition rides on the (class, validity) indexes. Rows are matched to queries in
       Python (bisection over the new products, sorted by start).

    With a :class:`PollCursor` that holds the previous poll's spans, statement 2 for
    those spans is sent with statement 1 as one ``UNION ALL`` statement (one round
    trip, one snapshot), and a separate statement 2 follows only for spans this poll
    asks about that the previous one did not (new steps, a query reopened). The
    cursor's spans are then replaced by this poll's.

    With ``since=None`` every open query counts as changed (a first poll). Filters
    (``/key:value``, the order's input filters) are not applied here: a product that a
    filter rejects costs one needless refresh, never a missed one.
    """
    cursor = since if isinstance(since, PollCursor) else None
    watermark = cursor.since if cursor is not None else since
    assert watermark is None or isinstance(watermark, datetime)
    ids = sorted({int(i) for i in job_step_ids})
    if not ids:
        return {}
    # Upstream outputs the step's queries are bound to and that are not delivered yet
    # (given-up bindings excluded), and of those, how many come from FAILED/SKIPPED steps.
    up = aliased(JobStep)
    bound = aliased(InputQuery)

    def owed() -> Any:
        return (
            select(func.count(func.distinct(JobStepOutput.job_step_id)))
            .select_from(InputQueryOutput)
            .join(bound, bound.id == InputQueryOutput.query_id)
            .join(JobStepOutput, JobStepOutput.id == InputQueryOutput.output_id)
            .where(
                bound.job_step_id == JobStep.id,
                InputQueryOutput.given_up_at.is_(None),
                JobStepOutput.product_id.is_(None),
            )
        )

    not_completed = owed().correlate(JobStep).scalar_subquery()
    dead = (
        owed()
        .join(up, up.id == JobStepOutput.job_step_id)
        .where(up.state.in_(sorted(DEAD_STATES)))
        .correlate(JobStep)
        .scalar_subquery()
    )
    picked = exists().where(InputQueryProduct.query_id == InputQuery.id)
    bound_upstream = exists().where(
        InputQueryOutput.query_id == InputQuery.id, InputQueryOutput.given_up_at.is_(None)
    )
    # Open: unsatisfied, or optional with nothing bound (an optional input served by an
    # upstream step is not re-evaluated).
    is_open = or_(
        InputQuery.satisfied.is_(False), and_(InputQuery.mandatory.is_(False), ~picked, ~bound_upstream)
    )
    steps_query = (
        select(
            literal(0).label("kind"),
            JobStep.id.label("sid"),
            JobStep.state,
            JobStep.start_time,
            JobStep.stop_time,
            ProcessingOrder.mission_id,
            not_completed.label("pending"),
            dead.label("dead"),
            InputQuery.id.label("qid"),
            InputQuery.mandatory,
            InputQuery.satisfied,
            InputQuery.rule_text,
        )
        .join(Job, Job.id == JobStep.job_id)
        .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
        .outerjoin(InputQuery, and_(InputQuery.job_step_id == JobStep.id, is_open))
        .where(JobStep.id.in_(ids))
    )
    new: dict[tuple[int, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    asked: Spans = cursor.spans if cursor is not None and cursor.spans and watermark is not None else {}
    if asked:
        assert watermark is not None
        products = _new_products_query(watermark, asked).subquery()
        statement = union_all(
            steps_query,
            select(
                literal(1),
                null(),
                products.c.product_type,
                products.c.sensing_start,
                products.c.sensing_stop,
                products.c.mission_id,
                null(),
                null(),
                null(),
                null(),
                null(),
                null(),
            ),
        )
        rows = session.execute(statement).all()
    else:
        rows = session.execute(steps_query).all()

    steps: dict[int, dict[str, Any]] = {}
    for (
        kind,
        sid,
        state,
        start,
        stop,
        mission_id,
        pending,
        dead_n,
        qid,
        mandatory,
        _satisfied,
        text,
    ) in rows:
        if kind:  # a new product: state holds its type, start/stop its validity
            new[(mission_id, state)].append((start, stop))
            continue
        info = steps.get(sid)
        if info is None:
            info = steps[sid] = {
                "state": state,
                "mission": mission_id,
                "pending": int(pending or 0),
                "dead": int(dead_n or 0),
                "open": [],
            }
        if qid is None:
            continue
        try:
            asks = _asks_of(text, start, stop)
        except Exception:  # a rule that no longer parses: let refresh report it
            asks = ()
        info["open"].append(_Open(bool(mandatory), list(asks)))

    # Statement 2: new products of the classes open queries ask about (what the union did not cover).
    # Without a watermark the spans are still worked out for the cursor (the next poll's union).
    if watermark is not None or cursor is not None:
        spans: Spans = {}
        for info in steps.values():
            if info["state"] not in OPEN_STATES:
                continue
            for q in info["open"]:
                for ptype, window in q.asks:
                    key = (info["mission"], ptype)
                    if key in spans and spans[key] is None:
                        continue
                    if window is None or key not in spans:
                        spans[key] = window
                    else:
                        have = spans[key]
                        assert have is not None
                        spans[key] = (min(have[0], window[0]), max(have[1], window[1]))
        missing = {k: span for k, span in spans.items() if not _covers(asked, k, span)}
        if missing and watermark is not None:
            for mission_id, ptype, start, stop in session.execute(_new_products_query(watermark, missing)):
                new[(mission_id, ptype)].append((start, stop))
        if cursor is not None:
            cursor.spans = spans
    seen = _NewProducts(new)

    out: dict[int, StepPoll] = {}
    for sid in ids:
        info = steps.get(sid)
        if info is None:
            out[sid] = StepPoll(PollStatus.BLOCKED, message=f"job step {sid} does not exist")
            continue
        state, opens = info["state"], info["open"]
        common = {
            "state": state,
            "upstream_pending": info["pending"],
            "upstream_failed": info["dead"],
            "open_queries": len(opens),
        }
        if state in DEAD_STATES:
            out[sid] = StepPoll(PollStatus.BLOCKED, **common, message=f"job step {sid} is {state}")
            continue
        if info["dead"]:
            out[sid] = StepPoll(
                PollStatus.BLOCKED,
                **common,
                message=f"job step {sid}: {info['dead']} upstream job step(s) FAILED or SKIPPED",
            )
            continue
        changed = state in OPEN_STATES and any(
            watermark is None or seen.meets(q, info["mission"]) for q in opens
        )
        if changed:
            status = PollStatus.CHANGED
        elif info["pending"] == 0 and not any(q.mandatory for q in opens):
            status = PollStatus.READY
        else:
            status = PollStatus.WAITING
        out[sid] = StepPoll(status, **common)
    return out
