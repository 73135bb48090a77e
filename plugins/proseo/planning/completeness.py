"""Is a slice complete enough to order? The test of a ``when: complete`` data trigger.

The day's L3 must not be ordered at the first L2 of the day: it would either wait all
day or plan the missing L2 itself. It is ordered once the requested classes' rules
on the trigger's ``on`` classes are satisfied by products that exist (``MINCOVER(90)``
of the day's L2, say). Only rules reading the ``on`` classes are asked: the others
(auxiliary data, say) are what the order's input sensors wait for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from proseo.catalog.model_order import JobStepOutput
from proseo.catalog.model_product import Product, ProductStatus
from proseo.missions.models import MissionConfig
from proseo.missions.production import Trigger
from proseo.planning.slicing import Slice
from proseo.rules import ScopedRule, applicable_rules, scoped_rules
from proseo.rules.ast import SimpleRule
from proseo.rules.evaluate import evaluate
from proseo.rules.policies import Candidate

#: How far a window-less policy (LatestValidity, ...) looks around the slice for completeness.
WINDOWLESS_REACH = timedelta(days=7)


def _rules_on(cfg: MissionConfig, trigger: Trigger, mode: str | None) -> list[tuple[str, ScopedRule]]:
    """(requested class, rule) for every mandatory rule of a requested class reading an ``on`` class."""
    on = set(trigger.on)
    out = []
    for target in trigger.classes:
        specs = [
            (s.rule, s.mode, s.configured_processors, f"{target}.selection_rules[{i}]")
            for i, s in enumerate(cfg.product_classes[target].selection_rules)
        ]
        for scoped in applicable_rules(scoped_rules(specs), mode, None):
            sources = {alt.source.product_type for alt in scoped.rule.alternatives}
            if sources & on and scoped.rule.qualifier.mandatory:
                out.append((target, scoped))
    return out


def _reach(rule: SimpleRule) -> timedelta:
    reach = timedelta(0)
    for alt in rule.alternatives:
        for policy in alt.chain:
            if policy.deltas is None:
                return WINDOWLESS_REACH
            reach = max(reach, policy.deltas[0].timedelta, policy.deltas[1].timedelta)
    return reach


def _candidates(
    session: Session, class_ids: Mapping[str, int], types: set[str], lo: datetime, hi: datetime
) -> dict[str, list[Candidate]]:
    out: dict[str, list[Candidate]] = {t: [] for t in types}
    ids = {class_ids[t]: t for t in types if t in class_ids}
    rows = session.execute(
        select(
            Product.id,
            Product.product_class_id,
            Product.sensing_start,
            Product.sensing_stop,
            Product.generation_time,
            Product.parameters,
            Product.file_class,
            Product.mode,
            Product.production_type,
        ).where(
            Product.product_class_id.in_(list(ids)),
            Product.status == ProductStatus.AVAILABLE.value,
            Product.sensing_start <= hi,
            Product.sensing_stop >= lo,
        )
    )
    for pid, cid, start, stop, gen, params, file_class, mode, ptype in rows:
        attributes = {**(params or {}), "file_class": file_class, "mode": mode, "production_type": ptype}
        out[ids[cid]].append(Candidate(pid, start, stop, gen, attributes))
    return out


def slice_complete(
    session: Session,
    cfg: MissionConfig,
    class_ids: Mapping[str, int],
    trigger: Trigger,
    mode: str | None,
    s: Slice,
) -> tuple[bool, str]:
    """Whether every such rule is satisfied for the slice now, and why not (first unmet rule)."""
    for target, scoped in _rules_on(cfg, trigger, mode):
        reach = _reach(scoped.rule)
        types = {alt.source.product_type for alt in scoped.rule.alternatives}
        found = _candidates(session, class_ids, types, s.start - reach, s.stop + reach)
        result = evaluate(scoped.rule, found, s.start, s.stop)
        if not result.satisfied:
            return False, f"{target}: {scoped.rule} not yet satisfied ({result.explanation})"
    coming = _in_flight(session, class_ids, trigger, s)
    if coming:
        return False, f"{coming} product(s) of {', '.join(trigger.on)} touching it still being made"
    return True, "complete"


def _in_flight(session: Session, class_ids: Mapping[str, int], trigger: Trigger, s: Slice) -> int:
    """Outputs of the ``on`` classes touching the slice that released orders still make (claimed,
    not registered): a slice whose rules are met (MINCOVER(90)) waits for them too, so the
    day's L3 reads every orbit already on its way, not the first 90 %."""
    ids = [class_ids[c] for c in trigger.on if c in class_ids]
    return int(
        session.scalar(
            select(func.count(JobStepOutput.id)).where(
                JobStepOutput.product_class_id.in_(ids),
                JobStepOutput.claim.is_not(None),
                JobStepOutput.product_id.is_(None),
                JobStepOutput.sensing_start < s.stop,
                JobStepOutput.sensing_stop > s.start,
            )
        )
        or 0
    )
