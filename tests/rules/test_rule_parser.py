"""Parsing and canonical printing of selection rules.

Canonical text is what gets stored, so ``parse(str(rule)) == rule`` must hold for
every rule, hand-written or generated; keywords are case-insensitive, product
types are not, and the spec's example prints exactly as the spec writes it.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from tests_rule_strategies import rules as rule_asts

from proseo.errors import RuleSyntaxError
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
    parse,
    parse_simple,
    source_offsets,
)
from proseo.rules.ast import Unit

SPEC_CANONICAL = "FOR AUX_CH4 SELECT ValIntersect(0 D, 0 D) OR LatestValidity MANDATORY"


def test_the_spec_canonical_example_prints_exactly() -> None:
    rule = parse("for AUX_CH4 select valintersect(0, 0) or LATESTVALIDITY")
    assert str(rule) == SPEC_CANONICAL
    assert rule == Rule(
        (
            SimpleRule(
                (
                    Alternative(
                        Source("AUX_CH4"),
                        (
                            Policy(PolicyName.VAL_INTERSECT, (Delta(0), Delta(0))),
                            Policy(PolicyName.LATEST_VALIDITY),
                        ),
                    ),
                ),
                Qualifier(QualifierKind.MANDATORY),
            ),
        )
    )
    assert str(parse(SPEC_CANONICAL)) == SPEC_CANONICAL


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("FOR A SELECT LastCreated", "FOR A SELECT LastCreated MANDATORY"),
        ("FOR A SELECT LastCreated optional", "FOR A SELECT LastCreated OPTIONAL"),
        ("FOR A SELECT LastCreated MinCover(050)", "FOR A SELECT LastCreated MINCOVER(50)"),
        ("FOR A SELECT LastCreated MINCOVER( 0 )", "FOR A SELECT LastCreated MINCOVER(0)"),
        ("FOR A SELECT ValCover(12 h, 30 m)", "FOR A SELECT ValCover(12 H, 30 M) MANDATORY"),
        ("FOR A SELECT ValCover(1 ms,1 S)", "FOR A SELECT ValCover(1 MS, 1 S) MANDATORY"),
        ("FOR A SELECT ValCover(7\td , 007)", "FOR A SELECT ValCover(7 D, 7 D) MANDATORY"),
        ("FOR A SELECT ValCover (0,0)", "FOR A SELECT ValCover(0 D, 0 D) MANDATORY"),
        ("  FOR\n A\tSELECT\r\n LastCreated  ", "FOR A SELECT LastCreated MANDATORY"),
        (
            "FOR A SELECT LastCreated;FOR B SELECT LastCreated",
            "FOR A SELECT LastCreated MANDATORY; FOR B SELECT LastCreated MANDATORY",
        ),
        (
            "FOR RAW_EXP/filter:g,exposure_id:12 SELECT ValIntersect(0, 0)",
            "FOR RAW_EXP/filter:g,exposure_id:12 SELECT ValIntersect(0 D, 0 D) MANDATORY",
        ),
        (
            "for L1B_RA select ValIntersect(0,0) else for L1B_RB select LatestValidity optional",
            "FOR L1B_RA SELECT ValIntersect(0 D, 0 D) ELSE FOR L1B_RB SELECT LatestValidity OPTIONAL",
        ),
    ],
)
def test_canonical_printing(text: str, canonical: str) -> None:
    rule = parse(text)
    assert str(rule) == canonical
    assert parse(canonical) == rule


@pytest.mark.parametrize("spelling", ["FOR", "for", "For", "fOr"])
def test_keywords_are_case_insensitive(spelling: str) -> None:
    assert parse(f"{spelling} A SELECT LastCreated") == parse("FOR A SELECT LastCreated")
    variants = [
        "FOR A SELECT ValIntersect(1 H, 2 d) OR LastCreated MINCOVER(5)",
        "for A select valintersect(1 h, 2 D) or lastcreated mincover(5)",
        "fOr A SeLeCt VALINTERSECT(1 h, 2 d) Or LASTCREATED MinCover(5)",
    ]
    assert len({parse(v) for v in variants}) == 1


def test_product_types_and_filter_values_are_case_sensitive() -> None:
    assert parse_simple("FOR aux_ch4 SELECT LastCreated").source.product_type == "aux_ch4"
    assert parse("FOR AUX SELECT LastCreated") != parse("FOR aux SELECT LastCreated")
    assert parse_simple("FOR A/Band:G SELECT LastCreated").source.filters == (("Band", "G"),)


def test_a_unit_needs_a_blank() -> None:
    rule = parse_simple("FOR A SELECT ValIntersect(12 h, 0)")
    assert rule.alternatives[0].chain[0].deltas == (Delta(12, Unit.H), Delta(0, Unit.D))
    with pytest.raises(RuleSyntaxError) as info:
        parse("FOR A SELECT ValIntersect(12h, 0)")
    assert info.value.offset == len("FOR A SELECT ValIntersect(12")


def test_bare_numbers_are_days_and_durations_are_exact() -> None:
    rule = parse_simple("FOR A SELECT ValIntersect(2, 90 m) OR ValCover(1 ms, 3 s)")
    (first, second) = rule.alternatives[0].chain
    assert first.deltas is not None and second.deltas is not None
    assert [d.milliseconds for d in first.deltas + second.deltas] == [2 * 86_400_000, 5_400_000, 1, 3000]
    assert Delta(1, Unit.D) != Delta(24, Unit.H)  # different texts ...
    assert Delta(1, Unit.D).timedelta == Delta(24, Unit.H).timedelta  # ... same duration


def test_keywords_and_policy_names_can_be_product_types() -> None:
    for name in ["FOR", "SELECT", "OR", "ELSE", "MANDATORY", "ValIntersect", "LastCreated", "123"]:
        rule = parse_simple(f"FOR {name} SELECT LastCreated")
        assert rule.source.product_type == name
        assert parse(str(rule)) == Rule((rule,))


def test_filters_keep_written_order_and_take_any_blank_free_value() -> None:
    source = parse_simple("FOR A/z:1,a:x:y/z,k:é-1.5e3 SELECT LastCreated").source
    assert source.filters == (("z", "1"), ("a", "x:y/z"), ("k", "é-1.5e3"))
    assert str(source) == "A/z:1,a:x:y/z,k:é-1.5e3"


def test_the_chain_order_and_the_qualifier_survive_storage() -> None:
    text = "FOR A SELECT LatestValidity OR LargestOverlap85(1 d, 0) OR ValCover(0, 0) MINCOVER(75)"
    rule = parse_simple(text)
    assert [p.name.value for p in rule.alternatives[0].chain] == [
        "LatestValidity",
        "LargestOverlap85",
        "ValCover",
    ]
    assert rule.qualifier == Qualifier(QualifierKind.MINCOVER, 75) and rule.qualifier.mandatory
    assert not parse_simple("FOR A SELECT LastCreated OPTIONAL").qualifier.mandatory


def test_simple_rule_helpers() -> None:
    rule = parse_simple("FOR A/x:1 SELECT LastCreated ELSE FOR B SELECT LastCreated")
    assert rule.source == Source("A", (("x", "1"),))
    assert rule.product_types == ("A", "B")
    assert list(parse("FOR A SELECT LastCreated; FOR B SELECT LastCreated")) == [
        parse_simple("FOR A SELECT LastCreated"),
        parse_simple("FOR B SELECT LastCreated"),
    ]


def test_source_offsets_point_at_each_product_type() -> None:
    text = "FOR A/x:1 SELECT LastCreated ELSE FOR BB SELECT LastCreated;  for  CCC SELECT LastCreated"
    found = source_offsets(text)
    assert [(s.product_type, o) for s, o in found] == [("A", 4), ("BB", 38), ("CCC", text.index("CCC"))]
    assert all(text[o:].startswith(s.product_type) for s, o in found)
    with pytest.raises(RuleSyntaxError):
        source_offsets("FOR A SELECT")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_asts())
def test_generated_rules_round_trip_through_their_canonical_text(rule: Rule) -> None:
    text = str(rule)
    assert parse(text) == rule
    assert str(parse(text)) == text
    offsets = source_offsets(text)
    assert [s for s, _ in offsets] == [a.source for r in rule for a in r.alternatives]
    assert all(text[o:].startswith(str(s)) for s, o in offsets)


def _differently_cased(rule: Rule) -> str:
    """The rule's text with keywords in lower case, policy names and units in upper case."""

    def policy(p: Policy) -> str:
        if p.deltas is None:
            return p.name.value.upper()
        return f"{p.name.value.upper()}({p.deltas[0].value} {p.deltas[0].unit.value}, {p.deltas[1]})"

    def simple(r: SimpleRule) -> str:
        alts = [f"for {a.source} select " + " or ".join(policy(p) for p in a.chain) for a in r.alternatives]
        qualifier = str(r.qualifier).lower()
        return " else ".join(alts) + " " + qualifier

    return " ; ".join(simple(r) for r in rule)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_asts())
def test_keyword_case_never_changes_the_meaning(rule: Rule) -> None:
    assert parse(_differently_cased(rule)) == rule
