"""Re-evaluating open input queries against the catalogue, batched per mission and class.

Refreshing thousands of steps must not cost a query (or a scan of the class) per step:
candidates are fetched once per mission and class and indexed by start, and each
step's alternatives look only at the candidates near their window, as the planner does.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.model_order import InputQuery, ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.catalog.products import class_ids, processor_ids
from proseo.planning.candidates import CandidateCache, ClassNeeds, Filters
from proseo.planning.index import CandidateIndex
from proseo.planning.readiness.asks import _span
from proseo.planning.selection import add_rule_needs
from proseo.rules.ast import Alternative, Qualifier, QualifierKind, SimpleRule
from proseo.rules.evaluate import Selection, evaluate, matches
from proseo.rules.policies import Candidate

if TYPE_CHECKING:
    from proseo.planning.readiness.refresh import _StepWork


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
        if sid is not None:
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
