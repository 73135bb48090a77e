"""Evaluate one simple rule for a job step's window: what is selected, and why.

Policies of a chain run in written order, each adding to one selection; evaluation
stops as soon as the selection is non-empty and the coverage condition holds
(MINCOVER(n): the selected validities cover n % of the unwidened window). With
``ELSE`` alternatives, the next source is tried only when the previous one could not
satisfy the rule. The returned :class:`Selection` records, per chosen product, the
policy that chose it, and a sentence that explains the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from proseo.rules.ast import WINDOWLESS, Alternative, Delta, Policy, PolicyName, QualifierKind, SimpleRule
from proseo.rules.policies import POLICIES, Candidate, Window


@dataclass(frozen=True)
class Choice:
    candidate: Candidate
    policy: PolicyName
    product_type: str


@dataclass(frozen=True)
class Selection:
    rule: SimpleRule
    satisfied: bool
    chosen: tuple[Choice, ...]
    coverage: float
    explanation: str

    @property
    def ids(self) -> list[Any]:
        return [c.candidate.id for c in self.chosen]


def widen(start: datetime, stop: datetime, policy: Policy) -> Window:
    """``[t0 - T0, t1 + T1]``; deltas beyond the calendar widen to its limits instead of failing."""
    if policy.deltas is None:
        return Window(start, stop)
    return Window(_shift(start, -1, policy.deltas[0]), _shift(stop, 1, policy.deltas[1]))


def _shift(instant: datetime, sign: int, delta: Delta) -> datetime:
    try:
        return instant + sign * delta.timedelta
    except OverflowError:
        limit = datetime.min if sign < 0 else datetime.max
        return limit.replace(tzinfo=UTC) if instant.tzinfo is not None else limit


def _same(attribute: Any, text: str) -> bool:
    """Typed comparison: ``/orbit:7`` matches 7 and 7.0, ``/flag:TRUE`` matches True; None never."""
    if attribute is None:
        return False
    if isinstance(attribute, bool):
        return text.lower() == str(attribute).lower()
    if isinstance(attribute, int | float):
        try:
            return int(text) == attribute  # exact for integers of any size
        except ValueError:
            pass
        try:
            return float(text) == attribute
        except (ValueError, OverflowError):
            return False
    return str(attribute) == text


def matches(candidate: Candidate, filters: Sequence[tuple[str, str]]) -> bool:
    """``/key:value`` filters against product attributes and free parameters."""
    return all(
        key in candidate.attributes and _same(candidate.attributes[key], value) for key, value in filters
    )


def coverage(chosen: Sequence[Candidate], start: datetime, stop: datetime) -> float:
    """Percentage of ``[start, stop]`` covered by the union of the chosen validities."""
    if stop <= start:
        return 100.0 if any(c.start <= start <= c.stop for c in chosen) else 0.0
    spans = sorted(
        (max(c.start, start), min(c.stop, stop)) for c in chosen if c.stop > start and c.start < stop
    )
    covered, cursor = timedelta(0), start
    for a, b in spans:
        a = max(a, cursor)
        if b > a:
            covered += b - a
            cursor = b
    return 100.0 * covered / (stop - start)


def _holds(rule: SimpleRule, chosen: Sequence[Candidate], start: datetime, stop: datetime) -> bool:
    if not chosen:
        return False
    if rule.qualifier.kind is QualifierKind.MINCOVER:
        return coverage(chosen, start, stop) >= (rule.qualifier.percent or 0)
    return True


class CandidateSource(Protocol):
    """The candidates of one class, asked by window (an index over validity), so that a
    windowed policy looks only at those that can meet its window instead of the whole class.
    A plain sequence is taken whole."""

    def __len__(self) -> int: ...

    def touching(self, lo: datetime, hi: datetime) -> Sequence[Candidate]: ...

    def all(self) -> Sequence[Candidate]: ...


#: Policies whose answer may lie outside their widened window: they read the whole class.
WHOLE_CLASS = WINDOWLESS | {
    PolicyName.LATEST_VALIDITY_CLOSEST,
    PolicyName.CLOSEST_START_VALIDITY,
    PolicyName.CLOSEST_STOP_VALIDITY,
    PolicyName.LATEST_VAL_COVER_NEWEST_VALIDITY,
}

Candidates = Sequence[Candidate] | CandidateSource


def _policy_pool(
    cands: Candidates,
    policy: Policy,
    window: Window,
    filters: Sequence[tuple[str, str]],
    whole: list[Candidate] | None,
) -> tuple[list[Candidate], list[Candidate] | None]:
    """The filtered candidates a policy looks at, and the whole filtered class once computed."""
    if isinstance(cands, Sequence) or policy.name in WHOLE_CLASS:
        if whole is None:
            source = cands if isinstance(cands, Sequence) else cands.all()
            whole = [c for c in source if matches(c, filters)]
        return whole, whole
    return [c for c in cands.touching(window.start, window.stop) if matches(c, filters)], whole


def _run_chain(
    rule: SimpleRule,
    alt: Alternative,
    cands: Candidates,
    start: datetime,
    stop: datetime,
    notes: list[str],
) -> list[Choice] | None:
    selected: dict[Any, Choice] = {}
    whole: list[Candidate] | None = None
    for policy in alt.chain:
        window = widen(start, stop, policy)
        pool, whole = _policy_pool(cands, policy, window, alt.source.filters, whole)
        found = POLICIES[policy.name](pool, window)
        for c in found:
            selected.setdefault(c.id, Choice(c, policy.name, alt.source.product_type))
        notes.append(f"{policy} found {len(found)}")
        if _holds(rule, [s.candidate for s in selected.values()], start, stop):
            return list(selected.values())
    if selected and rule.qualifier.kind is QualifierKind.MINCOVER:
        got = coverage([s.candidate for s in selected.values()], start, stop)
        notes.append(f"coverage {got:.0f}% < {rule.qualifier.percent}%")
    return None


def evaluate(
    rule: SimpleRule, candidates: Mapping[str, Candidates], start: datetime, stop: datetime
) -> Selection:
    """Apply a simple rule to the candidates (by product type) for the window ``[start, stop]``."""
    notes: list[str] = []
    for alt in rule.alternatives:
        cands = candidates.get(alt.source.product_type, ())
        notes.append(f"{alt.source}: {len(cands)} candidates")
        chosen = _run_chain(rule, alt, cands, start, stop, notes)
        if chosen is not None:
            cov = coverage([c.candidate for c in chosen], start, stop)
            by_policy: dict[str, int] = {}
            for c in chosen:
                by_policy[c.policy.value] = by_policy.get(c.policy.value, 0) + 1
            picked = ", ".join(f"{n} by {p}" for p, n in by_policy.items())
            return Selection(
                rule, True, tuple(chosen), cov, f"{alt.source}: chose {picked} (coverage {cov:.0f}%)"
            )
    if not rule.qualifier.mandatory:
        return Selection(rule, True, (), 0.0, "optional input, nothing found: " + "; ".join(notes))
    return Selection(rule, False, (), 0.0, "not satisfied: " + "; ".join(notes))
