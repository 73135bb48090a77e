"""Candidates of one source class for one evaluation, and evaluations remembered.

A year's plan evaluates about 100,000 inputs. Two things keep that linear and cheap:
- each evaluation reads a class's candidates by window (catalogue products, other
  orders' claimed outputs and this plan's outputs, each from its validity index), so a
  windowed policy touches only the candidates that can meet its window;
- an evaluation is a function of the rule, the window and the candidates it could
  choose, so it is remembered under exactly those: the classes of one orbit share most
  input rules (four L2 classes read the same meteorological files and L1B bands), and
  each such rule is evaluated once per window instead of once per job step.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from proseo.rules.ast import Policy, SimpleRule
from proseo.rules.evaluate import WHOLE_CLASS, Selection, evaluate, matches, widen
from proseo.rules.policies import Candidate

if TYPE_CHECKING:
    from proseo.planning.planner import Planner

#: Evaluations remembered at most (then all forgotten at once: the memo only saves work).
MEMO_SIZE = 20_000


class ClassSource:
    """A source class's candidates for one evaluation, asked by window.

    ``span`` is the union of the windows of the rule's windowed policies for this class
    (None when it has none); its candidates are gathered once and every windowed policy
    filters them. ``strict``: every such window has a length, so a candidate that only
    touches the span's edge can never be chosen (intersection is strict, covering needs
    overlap) and is left out; that keeps the memo key of an orbit the same whether or
    not its neighbours are planned yet. Whole-class policies (window-less, nearest) read
    :meth:`all`, which is noted so the memo can tell which results depend on it.
    """

    def __init__(
        self,
        planner: Planner,
        ptype: str,
        order_filters: tuple[tuple[str, str], ...],
        span: tuple[datetime, datetime] | None,
        strict: bool,
    ) -> None:
        self._planner, self._ptype, self._filters = planner, ptype, order_filters
        self._span, self._strict = span, strict
        self._all: list[Candidate] | None = None
        self._in_span: list[Candidate] | None = None
        self.whole_read = False

    def _gather(self, lo: datetime | None, hi: datetime | None) -> list[Candidate]:
        p, t = self._planner, self._ptype
        outside = p.existing_candidates(t, lo, hi) + p.claimed_candidates(t, lo, hi)
        if self._filters:
            outside = [c for c in outside if matches(c, self._filters)]
        return outside + p.planned_candidates(t, lo, hi)

    def _spanned(self) -> list[Candidate]:
        if self._in_span is None:
            assert self._span is not None
            lo, hi = self._span
            found = self._gather(lo, hi)
            self._in_span = [c for c in found if c.start < hi and c.stop > lo] if self._strict else found
        return self._in_span

    def touching(self, lo: datetime, hi: datetime) -> list[Candidate]:
        if self._span is not None and self._span[0] <= lo and hi <= self._span[1]:
            return [c for c in self._spanned() if c.stop >= lo and c.start <= hi]
        return self._gather(lo, hi)

    def all(self) -> list[Candidate]:
        self.whole_read = True
        if self._all is None:
            self._all = self._gather(None, None)
        return self._all

    def key(self) -> tuple[Any, ...]:
        """The windowed candidates (their ids), else the state of the whole class."""
        if self._span is not None:
            return tuple(c.id for c in self._spanned())
        return ("*", *self._planner.class_version(self._ptype))

    def __len__(self) -> int:
        """Candidates meeting the windows (explanations report this), else the whole class."""
        if self._span is not None:
            return len(self._spanned())
        if self._filters:
            return len(self.all())
        return self._planner.count_candidates(self._ptype)


class Evaluations:
    """Evaluates rules over :class:`ClassSource` pools and remembers the results."""

    def __init__(self, planner: Planner, order_filters: dict[str, tuple[tuple[str, str], ...]]) -> None:
        self._planner, self._filters = planner, order_filters
        # key -> (selection, {class: version} of the classes read whole, checked on a hit)
        self._memo: dict[tuple[Any, ...], tuple[Selection, dict[str, tuple[int, int, int]]]] = {}
        self._reaches: dict[str, dict[str, tuple[Policy | None, Policy | None]]] = {}

    def pool(self, rule: SimpleRule, start: datetime, stop: datetime) -> dict[str, ClassSource]:
        """One window-indexed source per source class of the rule."""
        out = {}
        for ptype, (before, after) in self._reach(rule).items():
            if before is None or after is None:
                span, strict = None, True
            else:
                span = (widen(start, stop, before).start, widen(start, stop, after).stop)
                # A window has a length if the slice has one or the policy widens it.
                strict = start < stop or all(
                    p.deltas is not None and p.deltas[0].milliseconds + p.deltas[1].milliseconds > 0
                    for p in self._windowed(rule, ptype)
                )
            out[ptype] = ClassSource(self._planner, ptype, self._filters.get(ptype, ()), span, strict)
        return out

    def _windowed(self, rule: SimpleRule, ptype: str) -> list[Policy]:
        return [
            p
            for alt in rule.alternatives
            if alt.source.product_type == ptype
            for p in alt.chain
            if p.name not in WHOLE_CLASS
        ]

    def _reach(self, rule: SimpleRule) -> dict[str, tuple[Policy | None, Policy | None]]:
        """Per source class, the windowed policies reaching furthest back and forward (None:
        no windowed policy), found once per rule: a span is then two additions per window."""
        found = self._reaches.get(rule.text)
        if found is None:
            found = {}
            for alt in rule.alternatives:
                ptype = alt.source.product_type
                if ptype in found:
                    continue
                windowed = self._windowed(rule, ptype)
                if not windowed:
                    found[ptype] = (None, None)
                    continue
                found[ptype] = (
                    max(windowed, key=lambda p: p.deltas[0].milliseconds if p.deltas else 0),
                    max(windowed, key=lambda p: p.deltas[1].milliseconds if p.deltas else 0),
                )
            self._reaches[rule.text] = found
        return found

    def evaluate(self, rule: SimpleRule, start: datetime, stop: datetime) -> Selection:
        pool = self.pool(rule, start, stop)
        key = (rule.text, start, stop, tuple(source.key() for source in pool.values()))
        held = self._memo.get(key)
        if held is not None and all(self._planner.class_version(t) == v for t, v in held[1].items()):
            return held[0]
        selection = evaluate(rule, pool, start, stop)
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        whole = {t: self._planner.class_version(t) for t, source in pool.items() if source.whole_read}
        self._memo[key] = (selection, whole)
        return selection
