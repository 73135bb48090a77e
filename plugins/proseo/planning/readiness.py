"""Is a job step ready to run? Inputs that were missing at planning time, looked at again.

Planning records, per job step, one input query per (merged) rule. A mandatory query
that found nothing leaves the step WAITING_INPUT; an optional one that found nothing
is satisfied but empty. Products arrive later (ingestion of deliveries, registration
by other orders), so the orchestrator asks two questions, at two prices:

* :func:`poll_readiness` -- the cheap one, asked once per poll interval for *all*
  waiting steps together: are the upstream job steps COMPLETED, and has any product
  of a class a step still waits for been catalogued since the last poll? Two SQL
  statements whatever the number of steps (see the function).
* :func:`refresh_inputs` / :func:`refresh_many` -- the expensive one, asked only for
  the steps the poll flags: evaluate each open query's stored rule again against the
  catalogue (candidates fetched in batch per class by
  :class:`~proseo.planning.candidates.CandidateCache`) and record the outcome the way
  planning does: ``satisfied``, ``input_query_product`` rows (with the policy that
  chose each product), the explanation's ``chosen`` entries and text, and the step
  WAITING_INPUT -> PLANNED once every mandatory query is satisfied.

Chosen entries that point at upstream job steps of the same order (planned outputs)
are never re-evaluated: they are satisfied once the upstream step is COMPLETED,
which is what ``upstream_pending`` reports.

:func:`give_up_waiting` is what an input timeout with ``RUN_WITH_AVAILABLE`` does: the
still-unsatisfied mandatory queries take whatever their rule finds (the qualifier
relaxed), references to upstream steps that never completed are dropped, and the
explanation says so, so the step runs with what exists.

No Airflow here: the triggerer, the sensor, the CLI and tests all call these.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased, load_only

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
from proseo.catalog.model_product import Product, ProductStatus
from proseo.catalog.products import class_ids, processor_ids
from proseo.planning.candidates import CandidateCache, ClassNeeds, Filters
from proseo.planning.index import CandidateIndex
from proseo.planning.selection import FALLS_BACK, NEAREST, add_rule_needs
from proseo.rules.ast import WINDOWLESS, Alternative, Qualifier, QualifierKind, SimpleRule
from proseo.rules.evaluate import Selection, evaluate, matches, widen
from proseo.rules.parser import parse_simple
from proseo.rules.policies import Candidate

#: Steps whose inputs may still change (later states have consumed theirs).
OPEN_STATES = frozenset({StepState.PLANNED.value, StepState.WAITING_INPUT.value, StepState.READY.value})
#: Steps that will not run any more (until an order operation moves them back).
DEAD_STATES = frozenset({StepState.FAILED.value, StepState.SKIPPED.value})
#: Products are stamped ``created_at`` before their transaction commits; a poll passes
#: ``since`` = start of the previous poll minus this lag so a product committed late
#: (a large ingestion batch, a registration with lineage, clock skew between hosts) is
#: still seen. Seeing a product twice only costs one more refresh of the steps concerned.
COMMIT_LAG = timedelta(seconds=60)


@lru_cache(maxsize=4096)
def _rule(text: str) -> SimpleRule:
    """Stored rule texts repeat across thousands of steps: parse each once per process."""
    return parse_simple(text)


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepReadiness:
    """What one job step still waits for, after :func:`refresh_inputs`."""

    job_step_id: int
    state: str
    upstream_pending: tuple[int, ...] = ()  # upstream job steps not COMPLETED
    waiting: tuple[str, ...] = ()  # "<product type>: <rule>" of unsatisfied mandatory queries
    upstream_failed: tuple[int, ...] = ()  # among upstream_pending: FAILED or SKIPPED
    newly_satisfied: tuple[str, ...] = ()  # queries this refresh satisfied (or filled, if optional)
    given_up: tuple[str, ...] = ()  # queries/upstream references given up by give_up_waiting

    @property
    def ready(self) -> bool:
        return not self.upstream_pending and not self.waiting

    def summary(self) -> str:
        if self.state in DEAD_STATES:
            return f"job step {self.job_step_id} is {self.state}"
        if self.ready:
            return f"job step {self.job_step_id}: inputs complete"
        parts = []
        if self.upstream_pending:
            parts.append("upstream job step(s) " + ", ".join(map(str, self.upstream_pending)))
            if self.upstream_failed:
                parts[-1] += " (failed: " + ", ".join(map(str, self.upstream_failed)) + ")"
        parts.extend(self.waiting)
        return f"job step {self.job_step_id} waits for " + "; ".join(parts)


class PollStatus(StrEnum):
    READY = "ready"  # nothing left to wait for: run refresh once, then the step may run
    CHANGED = "changed"  # an open query's classes got products since `since`: refresh it
    WAITING = "waiting"  # nothing new
    BLOCKED = "blocked"  # cannot become ready: missing step, FAILED/SKIPPED step or upstream


@dataclass(frozen=True)
class StepPoll:
    status: PollStatus
    state: str | None = None
    upstream_pending: int = 0
    upstream_failed: int = 0
    open_queries: int = 0  # unsatisfied, or optional and empty
    message: str = ""


# --- the cheap poll -------------------------------------------------------------------------


@dataclass
class _Open:
    """One open query as the poll sees it: per alternative, the class and the window asked."""

    mandatory: bool
    # (product type, (lo, hi) or None when any product of the class may matter)
    asks: list[tuple[str, tuple[datetime, datetime] | None]] = field(default_factory=list)


def _span(alt: Alternative, start: datetime, stop: datetime) -> tuple[datetime, datetime] | None:
    """The union of the windows an alternative's policies look at; ``None``: the whole class."""
    if any(p.name in WINDOWLESS or p.name in NEAREST or p.name in FALLS_BACK for p in alt.chain):
        return None
    windows = [widen(start, stop, p) for p in alt.chain]
    return min(w.start for w in windows), max(w.stop for w in windows)


def _asks(
    rule: SimpleRule, start: datetime, stop: datetime
) -> list[tuple[str, tuple[datetime, datetime] | None]]:
    return [(alt.source.product_type, _span(alt, start, stop)) for alt in rule.alternatives]


def _chooses_upstream(explanation: dict[str, Any] | None) -> bool:
    return any("job_step" in c for c in (explanation or {}).get("chosen", []))


_Ask = tuple[str, tuple[datetime, datetime] | None]


@lru_cache(maxsize=1 << 17)
def _asks_of(
    text: str, start: datetime, stop: datetime
) -> tuple[tuple[str, tuple[datetime, datetime] | None], ...]:
    """A stored rule's asks for a step window; steady polls ask the same again and again."""
    return tuple(_asks(_rule(text), start, stop))


Spans = dict[tuple[int, str], tuple[datetime, datetime] | None]


@dataclass
class PollCursor:
    """What a poller carries from one poll to the next.

    ``since``: the watermark (products created at or after it are new). ``spans``: per
    (mission, product type) the windows the previous poll's open queries asked about.
    Passing a cursor instead of a bare instant lets :func:`poll_readiness` ask for the
    new products in the *same* statement as the steps (steady state: one statement),
    using the previous spans; where this poll asks about more than those covered, a
    second statement asks for the rest.
    """

    since: datetime | None = None
    spans: Spans | None = None


def _covers(have: Spans, key: tuple[int, str], span: tuple[datetime, datetime] | None) -> bool:
    if key not in have:
        return False
    old = have[key]
    return old is None or (span is not None and old[0] <= span[0] and span[1] <= old[1])


def _new_products_query(since: datetime, spans: Spans) -> Any:
    terms = []
    for (mission_id, ptype), span in sorted(spans.items(), key=lambda kv: kv[0]):
        term = and_(ProductClass.mission_id == mission_id, ProductClass.product_type == ptype)
        if span is not None:
            term = and_(term, Product.sensing_start <= span[1], Product.sensing_stop >= span[0])
        terms.append(term)
    return (
        select(
            ProductClass.mission_id,
            ProductClass.product_type,
            Product.sensing_start,
            Product.sensing_stop,
        )
        .join(ProductClass, ProductClass.id == Product.product_class_id)
        .where(Product.created_at >= since, Product.status == ProductStatus.AVAILABLE.value, or_(*terms))
    )


def poll_readiness(
    session: Session, job_step_ids: Iterable[int], since: datetime | PollCursor | None
) -> dict[int, StepPoll]:
    """Which of these steps became ready, or got new candidate products since ``since``.

    One SQL statement in the steady state, two at most, whatever the number of steps:

    1. the steps (state, mission, window), with two correlated counts over
       ``job_step_edge`` x ``job_step`` (upstream steps not COMPLETED; of those, FAILED or
       SKIPPED), outer-joined to their *open* input queries (unsatisfied, or optional
       with no ``input_query_product`` row) with the rule text; the explanation is read
       only where it may name an upstream step (a satisfied query whose JSON holds a
       ``job_step`` key);
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
    up = aliased(JobStep)
    not_completed = (
        select(func.count())
        .select_from(JobStepEdge)
        .join(up, up.id == JobStepEdge.upstream_id)
        .where(JobStepEdge.downstream_id == JobStep.id, up.state != StepState.COMPLETED.value)
        .correlate(JobStep)
        .scalar_subquery()
    )
    dead = (
        select(func.coalesce(func.sum(case((up.state.in_(sorted(DEAD_STATES)), 1), else_=0)), 0))
        .select_from(JobStepEdge)
        .join(up, up.id == JobStepEdge.upstream_id)
        .where(JobStepEdge.downstream_id == JobStep.id)
        .correlate(JobStep)
        .scalar_subquery()
    )
    picked = exists().where(InputQueryProduct.query_id == InputQuery.id)
    is_open = or_(InputQuery.satisfied.is_(False), and_(InputQuery.mandatory.is_(False), ~picked))
    # Only a satisfied query can be served by an upstream step; its JSON then has the key.
    may_name_step = and_(
        InputQuery.satisfied.is_(True), cast(InputQuery.explanation, Text).like('%"job_step"%')
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
            case((may_name_step, InputQuery.explanation), else_=null()).label("explanation"),
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
        satisfied,
        text,
        expl,
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
        if satisfied and _chooses_upstream(expl):
            continue  # optional input served by an upstream step: not re-evaluated
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


class _NewProducts:
    """New products per (mission, type), sorted by start, with the running maximum of
    their stops: "does any meet [lo, hi]?" is one bisection, not a scan."""

    def __init__(self, new: dict[tuple[int, str], list[tuple[datetime, datetime]]]) -> None:
        self._starts: dict[tuple[int, str], list[datetime]] = {}
        self._max_stop: dict[tuple[int, str], list[datetime]] = {}
        for key, rows in new.items():
            rows.sort()
            self._starts[key] = [start for start, _ in rows]
            running: list[datetime] = []
            for _, stop in rows:
                running.append(stop if not running or stop > running[-1] else running[-1])
            self._max_stop[key] = running

    def meets(self, q: _Open, mission_id: int) -> bool:
        for ptype, window in q.asks:
            starts = self._starts.get((mission_id, ptype))
            if not starts:
                continue
            if window is None:
                return True
            n = bisect_right(starts, window[1])  # products starting at or before hi
            if n and self._max_stop[(mission_id, ptype)][n - 1] >= window[0]:
                return True
        return False


# --- the expensive refresh -----------------------------------------------------------------


def refresh_inputs(session: Session, job_step_id: int) -> StepReadiness:
    """Re-evaluate the open input queries of one step and record the outcome."""
    return refresh_many(session, [job_step_id])[int(job_step_id)]


def give_up_waiting(session: Session, job_step_id: int, reason: str) -> StepReadiness:
    """Input timeout with RUN_WITH_AVAILABLE: take what exists, drop what never came."""
    return refresh_many(session, [job_step_id], give_up=reason)[int(job_step_id)]


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
        # References to upstream steps that never completed are dropped, with a note.
        for w in work:
            if w.step.state not in OPEN_STATES:
                continue
            missing = {u for u in w.upstream if up_state.get(u) != StepState.COMPLETED.value}
            missing -= w.given_up_upstream
            if not missing:
                continue
            for q in w.queries:
                expl = dict(q.explanation or {})
                chosen = expl.get("chosen", [])
                keep = [c for c in chosen if not ("job_step" in c and int(c["job_step"]) in missing)]
                if len(keep) != len(chosen):
                    expl["chosen"] = keep
                    expl["given_up_upstream"] = sorted(
                        {
                            *expl.get("given_up_upstream", []),
                            *(int(c["job_step"]) for c in chosen if c not in keep),
                        }
                    )
                    expl["given_up"] = {**expl.get("given_up", {}), "at": stamp, "reason": give_up}
                    q.explanation = expl
            w.given_up_upstream |= missing
            gave_up[w.step.id].append("upstream job step(s) " + ", ".join(map(str, sorted(missing))))

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


def _order_filters(order: ProcessingOrder) -> dict[str, Filters]:
    return {
        ptype: tuple((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items())
        for ptype, values in (order.input_filters or {}).items()
    }


def _alt_filters(alt: Alternative, order_filters: dict[str, Filters]) -> Filters:
    return alt.source.filters + order_filters.get(alt.source.product_type, ())


def _evaluate_all(
    session: Session, todo: list[tuple[_StepWork, InputQuery, SimpleRule]], *, relax: bool
) -> list[tuple[Selection, bool]]:
    """Evaluate every open query; candidates fetched once per mission and class (batched).

    With ``relax``, a mandatory query its rule cannot satisfy is evaluated again as if
    OPTIONAL (it takes whatever the chain finds); the flag says so.
    """
    if not todo:
        return []
    by_mission: dict[int, list[int]] = defaultdict(list)
    for n, (w, _, _) in enumerate(todo):
        by_mission[w.order.mission_id].append(n)
    results: list[tuple[Selection, bool] | None] = [None] * len(todo)
    for mission_id, indexes in by_mission.items():
        processors = {v: k for k, v in processor_ids(session, mission_id).items()}
        cache = CandidateCache(session, class_ids(session, mission_id), processors)
        needs: dict[str, ClassNeeds] = {}
        filters_of: dict[int, dict[str, Filters]] = {}
        for n in indexes:
            w, _, rule = todo[n]
            order_filters = filters_of.setdefault(w.order.id, _order_filters(w.order))
            _add_needs(needs, rule, w.step.start_time, w.step.stop_time, order_filters)
        cache.fetch(needs)
        own_products = _own_products(session, [todo[n][0].step.id for n in indexes])
        # One index per class for all steps: a step's windowed alternatives look at the
        # candidates near their window only (as the planner does), never the whole class,
        # so refreshing thousands of steps against thousands of products stays linear.
        indexes_by_class: dict[str, CandidateIndex] = {}
        for n in indexes:
            w, q, rule = todo[n]
            start, stop = w.step.start_time, w.step.stop_time
            order_filters = filters_of[w.order.id]
            own = own_products.get(w.step.id, ())
            pool: dict[str, list[Candidate]] = {}
            for alt in rule.alternatives:
                ptype = alt.source.product_type
                index = indexes_by_class.get(ptype)
                if index is None:
                    index = indexes_by_class[ptype] = CandidateIndex(cache.candidates(ptype))
                span = _span(alt, start, stop)
                near = index.all() if span is None else index.touching(*span)
                extra = order_filters.get(ptype, ())
                found = pool.setdefault(ptype, [])
                seen = {c.id for c in found}
                found.extend(
                    c
                    for c in near
                    if c.id not in own and c.id not in seen and (not extra or matches(c, extra))
                )
            selection = evaluate(rule, pool, start, stop)
            relaxed = relax and q.mandatory and not selection.satisfied
            if relaxed:  # what the rule finds at all, whatever its coverage condition
                lenient = dataclasses.replace(rule, qualifier=Qualifier(QualifierKind.OPTIONAL))
                selection = evaluate(lenient, pool, start, stop)
            results[n] = (selection, relaxed)
    return [r for r in results if r is not None]


def _own_products(session: Session, step_ids: list[int]) -> dict[int, set[int]]:
    """Products a step made itself (a re-run's outputs are never its own inputs)."""
    out: dict[int, set[int]] = defaultdict(set)
    for pid, sid in session.execute(
        select(Product.id, Product.job_step_id).where(Product.job_step_id.in_(step_ids))
    ):
        out[sid].add(pid)
    return out


def _add_needs(
    needs: dict[str, ClassNeeds],
    rule: SimpleRule,
    start: datetime,
    stop: datetime,
    order_filters: dict[str, Filters],
) -> None:
    """The windows (and nearest/extreme scans) a rule asks of each source class, as the planner does."""
    add_rule_needs(needs, rule, start, stop, lambda alt: _alt_filters(alt, order_filters))
