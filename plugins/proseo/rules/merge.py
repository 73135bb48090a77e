"""Which rules apply to a job step, and how rules for the same input combine.

A product class lists its selection rules, each optionally scoped to a processing
mode and to configured processors. For one job step the planner keeps the rules in
scope, lets a rule written for the step's mode replace the mode-less ones for the
same input, and merges what is left per input, as the spec says: same policy, larger
deltas; different policies, concatenated; mandatory if either is.

An *input* is identified by its source key: the sources (with filters) of all the
rule's alternatives, in order. Rules with ELSE alternatives therefore merge only with
rules that name the same alternatives in the same order, and then alternative by
alternative (the first with the first, ...). A rule ``FOR A ...`` and a rule
``FOR A ... ELSE FOR B ...`` are different inputs and both stay: merging them would
have to invent what the first one says about B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proseo.errors import RuleSyntaxError
from proseo.rules.ast import Alternative, Delta, Policy, Qualifier, QualifierKind, SimpleRule, Source
from proseo.rules.parser import parse

SourceKey = tuple[Source, ...]


@dataclass(frozen=True)
class ScopedRule:
    """A simple rule with where it applies and where it was written (for explanations)."""

    rule: SimpleRule
    mode: str | None = None
    configured_processors: tuple[str, ...] = ()  # empty = any
    origin: str = ""

    @property
    def key(self) -> SourceKey:
        return source_key(self.rule)


def source_key(rule: SimpleRule) -> SourceKey:
    """What makes two rules rules for the same input."""
    return tuple(alt.source for alt in rule.alternatives)


def _larger(a: Delta, b: Delta) -> Delta:
    """The longer duration; on a tie the first as written, so merging is stable."""
    return b if b.milliseconds > a.milliseconds else a


def _merge_policy(a: Policy, b: Policy) -> Policy:
    if a.deltas is None or b.deltas is None:
        return a
    return Policy(a.name, (_larger(a.deltas[0], b.deltas[0]), _larger(a.deltas[1], b.deltas[1])))


def merge_chains(a: Sequence[Policy], b: Sequence[Policy]) -> tuple[Policy, ...]:
    """``a``'s chain, each policy widened by ``b``'s policy of the same name; then ``b``'s others.

    A chain that names one policy twice keeps both; ``b``'s policy widens the first
    of that name (the one evaluation reaches first).
    """
    chain = list(a)
    for policy in b:
        same = next((i for i, p in enumerate(chain) if p.name is policy.name), None)
        if same is None:
            chain.append(policy)
        else:
            chain[same] = _merge_policy(chain[same], policy)
    return tuple(chain)


def merge_qualifiers(a: Qualifier, b: Qualifier) -> Qualifier:
    """Mandatory if either is; MINCOVER (which implies mandatory) with the larger percent."""
    percents = [q.percent or 0 for q in (a, b) if q.kind is QualifierKind.MINCOVER]
    if percents:
        return Qualifier(QualifierKind.MINCOVER, max(percents))
    if a.mandatory or b.mandatory:
        return Qualifier(QualifierKind.MANDATORY)
    return Qualifier(QualifierKind.OPTIONAL)


def merge(a: SimpleRule, b: SimpleRule) -> SimpleRule:
    """One rule that asks for what both ask for; both must name the same source(s)."""
    if source_key(a) != source_key(b):
        raise ValueError(f"cannot merge rules for different inputs: {a} / {b}")
    alternatives = tuple(
        Alternative(x.source, merge_chains(x.chain, y.chain))
        for x, y in zip(a.alternatives, b.alternatives, strict=True)
    )
    return SimpleRule(alternatives, merge_qualifiers(a.qualifier, b.qualifier))


def _in_scope(rule: ScopedRule, mode: str | None, configured_processor: str | None) -> bool:
    if rule.configured_processors and configured_processor not in rule.configured_processors:
        return False
    return rule.mode is None or rule.mode == mode


def applicable_rules(
    rules: Sequence[ScopedRule], mode: str | None, configured_processor: str | None
) -> list[ScopedRule]:
    """The rules one job step uses, one per input, merged where several were written.

    Per input, rules for ``mode`` replace the mode-less ones. The result follows the
    order in which each input's first rule in scope was written. A merged rule keeps
    the winning mode, and names the configured processor only if a merged rule did
    (it was computed for that processor).
    """
    in_scope = [r for r in rules if _in_scope(r, mode, configured_processor)]
    groups: dict[SourceKey, list[ScopedRule]] = {}
    for rule in in_scope:
        groups.setdefault(rule.key, []).append(rule)
    out = []
    for group in groups.values():
        moded = [r for r in group if r.mode is not None]
        chosen = moded or group
        merged = chosen[0].rule
        for other in chosen[1:]:
            merged = merge(merged, other.rule)
        scoped = configured_processor is not None and any(r.configured_processors for r in chosen)
        processors = (configured_processor,) if scoped and configured_processor is not None else ()
        out.append(ScopedRule(merged, chosen[0].mode, processors, " + ".join(r.origin for r in chosen)))
    return out


def scoped_rules(specs: Sequence[tuple[str, str | None, Sequence[str], str]]) -> list[ScopedRule]:
    """Parse ``(rule text, mode, configured processors, origin)`` entries into scoped rules.

    A text holding several ``;``-separated simple rules gives one scoped rule each,
    with origins ``origin#1``, ``origin#2``, ... so an explanation can name the part.
    A RuleSyntaxError propagates, with the origin added as a note.
    """
    out = []
    for text, mode, processors, origin in specs:
        try:
            parsed = parse(text)
        except RuleSyntaxError as exc:
            exc.add_note(f"in {origin}" if origin else "in a selection rule")
            raise
        parts = parsed.rules
        for i, rule in enumerate(parts, start=1):
            where = origin if len(parts) == 1 else f"{origin}#{i}"
            out.append(ScopedRule(rule, mode, tuple(processors), where))
    return out
