"""One input of one job step: evaluate its rule, plan what is missing, record why.

Candidates are the catalogue's products (narrowed by the order's input filters)
plus the outputs already planned in this order. For an input whose class has a
processor:
- a rule whose first policy selects *every* matching product (ValCover,
  ValIntersect, ValIntersectWithoutDuplicates) gets every slice of the source class
  in its widened window that no existing or planned product covers planned, so an
  L3 day waits for all of its orbits, not for whichever happens to exist;
- a rule that selects *one* product gets the slices of the job step's own window
  planned only when nothing satisfies it.
The rule is then evaluated again, and each planned output it chose becomes an edge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from proseo.planning.candidates import ClassNeeds
from proseo.planning.model import ChosenInput, InputPlan, StepPlan, parse_claimed_id, parse_planned_id
from proseo.planning.sources import MEMO_SIZE, Evaluations
from proseo.rules.ast import WINDOWLESS, Alternative, PolicyName, QualifierKind, SimpleRule
from proseo.rules.evaluate import Selection, matches, widen
from proseo.rules.merge import ScopedRule

if TYPE_CHECKING:
    from proseo.planning.planner import Planner
    from proseo.planning.slicing import Slice

#: Policies that take every matching product, so completeness matters.
SELECT_ALL = frozenset(
    {PolicyName.VAL_COVER, PolicyName.VAL_INTERSECT, PolicyName.VAL_INTERSECT_WITHOUT_DUPLICATES}
)
#: Policies whose answer may lie outside every window (nearest start/stop/centre).
NEAREST = frozenset(
    {PolicyName.LATEST_VALIDITY_CLOSEST, PolicyName.CLOSEST_START_VALIDITY, PolicyName.CLOSEST_STOP_VALIDITY}
)
#: Policies that fall back to a window-less one.
FALLS_BACK = frozenset({PolicyName.LATEST_VAL_COVER_NEWEST_VALIDITY})


def add_rule_needs(
    needs: dict[str, ClassNeeds],
    rule: SimpleRule,
    start: datetime,
    stop: datetime,
    filters_for: Callable[[Alternative], tuple[tuple[str, str], ...]],
) -> None:
    """The windows (and nearest/extreme scans) a rule will ask of each source class."""
    for alt in rule.alternatives:
        need = needs.setdefault(alt.source.product_type, ClassNeeds())
        filters = filters_for(alt)
        need.add_window(start, stop)
        for policy in alt.chain:
            if policy.name in WINDOWLESS or policy.name in FALLS_BACK:
                need.extremes.add(filters)
            if policy.name not in WINDOWLESS:
                window = widen(start, stop, policy)
                need.add_window(window.start, window.stop)
            if policy.name in NEAREST:
                need.nearest.add(filters)


class Selector:
    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self._order_filters = {
            ptype: tuple((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items())
            for ptype, values in planner.spec.input_filters.items()
        }
        self._evaluations = Evaluations(planner, self._order_filters)
        self._covered_pieces: set[tuple[Any, ...]] = set()
        # id(selection) -> (selection, references, upstream steps); the selection is kept so
        # its id cannot be reused by another object while the entry lives.
        self._references: dict[int, tuple[Selection, list[ChosenInput], set[int]]] = {}

    def filters_for(self, alt: Alternative) -> tuple[tuple[str, str], ...]:
        return alt.source.filters + self._order_filters.get(alt.source.product_type, ())

    def add_needs(self, needs: dict[str, ClassNeeds], scoped: ScopedRule, lo: datetime, hi: datetime) -> None:
        """Record which windows of which classes this rule will ask about for slices within
        ``[lo, hi]`` (for batching)."""
        add_rule_needs(needs, scoped.rule, lo, hi, self.filters_for)

    def _evaluate(self, rule: SimpleRule, start: datetime, stop: datetime) -> Selection:
        return self._evaluations.evaluate(rule, start, stop)

    def _covered(self, ptype: str, alt: Alternative, piece: Slice) -> bool:
        """Whether a product (existing, claimed or planned) covers the piece; once covered, a
        piece stays covered (candidates are only added while planning)."""
        filters = self.filters_for(alt)
        key = (ptype, filters, piece.start, piece.stop)
        if key in self._covered_pieces:
            return True
        found = any(
            c.start <= piece.start and c.stop >= piece.stop and matches(c, filters)
            for c in self.planner.existing_candidates(ptype, piece.start, piece.stop)
            + self.planner.claimed_candidates(ptype, piece.start, piece.stop)
            + self.planner.planned_candidates(ptype, piece.start, piece.stop)
        )
        if found:
            self._covered_pieces.add(key)
        return found

    def select(self, step: StepPlan, scoped: ScopedRule, created: list[StepPlan]) -> InputPlan:
        rule = scoped.rule
        start, stop = step.slice.start, step.slice.stop
        selection = self._evaluate(rule, start, stop)
        planned: list[str] = []
        target = next((a for a in rule.alternatives if self.planner.producible(a.source.product_type)), None)
        if target is not None:
            ptype = target.source.product_type
            first = target.chain[0]
            if first.name in SELECT_ALL and target is rule.alternatives[0]:
                window = widen(start, stop, first)
                pieces = self.planner.slices_of(ptype, window.start, window.stop)
            elif not selection.satisfied:
                pieces = self.planner.slices_of(ptype, start, stop)
            else:
                pieces = []
            for piece in pieces:
                if self._covered(ptype, target, piece):
                    continue
                upstream, new = self.planner.step_for(ptype, piece, depth=step.depth + 1, requested=False)
                if new:
                    created.append(upstream)
                planned.append(f"{ptype} {piece.label}")
            if planned:
                selection = self._evaluate(rule, start, stop)
        return self._record(step, scoped, selection, planned)

    def _chosen(self, selection: Selection) -> tuple[list[ChosenInput], set[int]]:
        """The selection's choices as references (and the plan steps they come from), made
        once per selection: a remembered selection serves several job steps."""
        held = self._references.get(id(selection))
        if held is not None and held[0] is selection:
            return held[1], held[2]
        chosen: list[ChosenInput] = []
        upstream: set[int] = set()
        for choice in selection.chosen:
            claimed = parse_claimed_id(choice.candidate.id)
            if claimed is not None:
                chosen.append(ChosenInput(choice.policy.value, choice.product_type, output_id=claimed))
                continue
            ref = parse_planned_id(choice.candidate.id)
            if ref is None:
                chosen.append(
                    ChosenInput(choice.policy.value, choice.product_type, product_id=choice.candidate.id)
                )
                continue
            upstream.add(ref[0])
            chosen.append(ChosenInput(choice.policy.value, choice.product_type, step=ref[0], output=ref[1]))
        if len(self._references) >= MEMO_SIZE:
            self._references.clear()
        self._references[id(selection)] = (selection, chosen, upstream)
        return chosen, upstream

    def _record(
        self, step: StepPlan, scoped: ScopedRule, selection: Selection, planned: list[str]
    ) -> InputPlan:
        rule = scoped.rule
        chosen, upstream = self._chosen(selection)
        step.upstream.update(u for u in upstream if u != step.index)
        first = rule.alternatives[0]
        explanation = selection.explanation
        if planned:
            explanation += (
                f"; planned {len(planned)} job step(s) of {', '.join(sorted(set(rule.product_types)))}"
            )
        elsewhere = sum(1 for c in chosen if c.output_id is not None)
        if elsewhere:
            explanation += f"; waits for {elsewhere} product(s) another order plans"
        return InputPlan(
            rule_text=rule.text,
            origin=scoped.origin,
            source_types=rule.product_types,
            mandatory=rule.qualifier.mandatory,
            min_cover=float(rule.qualifier.percent)
            if rule.qualifier.kind is QualifierKind.MINCOVER and rule.qualifier.percent is not None
            else None,
            filters=dict(self.filters_for(first)),
            satisfied=selection.satisfied,
            chosen=chosen,
            coverage=selection.coverage,
            explanation=explanation,
            planned_slices=planned,
        )
