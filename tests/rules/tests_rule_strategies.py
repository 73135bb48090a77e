"""Hypothesis strategies for selection-rule syntax trees (shared by the rule tests).

They generate every construct the language has: several simple rules, ELSE
alternatives, filters with arbitrary (blank-free) values, every policy spelled
canonically with deltas in every unit, and every qualifier.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

from proseo.rules import (
    Alternative,
    Delta,
    Policy,
    PolicyName,
    Qualifier,
    QualifierKind,
    Rule,
    SimpleRule,
    Source,
)
from proseo.rules.ast import WINDOWLESS, Unit

NAMES = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
VALUE_CHARS = st.characters(
    exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs"), exclude_characters=",;()", max_codepoint=0x2FFF
)
VALUES = st.text(VALUE_CHARS, min_size=1, max_size=8).filter(lambda v: re.search(r"[\s,;()]", v) is None)


def sources() -> st.SearchStrategy[Source]:
    filters = st.lists(st.tuples(NAMES, VALUES), max_size=3).map(tuple)
    return st.builds(Source, NAMES, filters)


def deltas() -> st.SearchStrategy[Delta]:
    return st.builds(Delta, st.integers(0, 10**12), st.sampled_from(list(Unit)))


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    name = draw(st.sampled_from(list(PolicyName)))
    if name in WINDOWLESS:
        return Policy(name)
    return Policy(name, (draw(deltas()), draw(deltas())))


def qualifiers() -> st.SearchStrategy[Qualifier]:
    return st.one_of(
        st.just(Qualifier(QualifierKind.MANDATORY)),
        st.just(Qualifier(QualifierKind.OPTIONAL)),
        st.builds(Qualifier, st.just(QualifierKind.MINCOVER), st.integers(0, 100)),
    )


def alternatives() -> st.SearchStrategy[Alternative]:
    return st.builds(Alternative, sources(), st.lists(policies(), min_size=1, max_size=4).map(tuple))


def simple_rules() -> st.SearchStrategy[SimpleRule]:
    return st.builds(SimpleRule, st.lists(alternatives(), min_size=1, max_size=3).map(tuple), qualifiers())


def rules() -> st.SearchStrategy[Rule]:
    return st.builds(Rule, st.lists(simple_rules(), min_size=1, max_size=3).map(tuple))
