"""Evaluating rules: the spec's worked example, chains, qualifiers, filters and ELSE.

The worked example is the one in the selection-rule spec, statement by statement;
the rest checks the rules around it: chains run left to right and stop as soon as
the selection is non-empty and covers enough, MINCOVER measures the union of the
validities over the *unwidened* window, filters compare typed values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from proseo.rules import PolicyName, parse, parse_simple
from proseo.rules.evaluate import Selection, coverage, evaluate, matches, widen
from proseo.rules.policies import Candidate

H = timedelta(hours=1)
DAY0 = datetime(2025, 1, 1, tzinfo=UTC)


def t(day: int, hour: float = 0) -> datetime:
    return datetime(2025, 1, day, tzinfo=UTC) + hour * H


def p(pid: object, start: datetime, stop: datetime, gen: int = 0, **attributes: object) -> Candidate:
    return Candidate(pid, start, stop, t(10) + gen * H, attributes)


def run(rule: str, cands: Mapping[str, Sequence[Candidate]], start: datetime, stop: datetime) -> Selection:
    return evaluate(parse_simple(rule), cands, start, stop)


# --- the worked example of the spec ----------------------------------------------

EXAMPLE = {
    "AUX_X": [
        p("A", t(1, 12), t(2, 12), gen=2),
        p("B", t(1, 18), t(2, 18), gen=3),
        p("C", t(2, 22), t(3, 22), gen=4),
        p("D", t(1, 20), t(2, 20), gen=1),
    ]
}


@pytest.mark.parametrize(
    ("rule", "satisfied", "ids"),
    [
        ("FOR AUX_X SELECT ValIntersect(0, 0)", True, ["C"]),
        ("FOR AUX_X SELECT LatestValidity", True, ["C"]),
        # W = [02 12:00, 05 00:00]: A stops exactly at W.start, touching only.
        ("FOR AUX_X SELECT ValIntersect(12 h, 1 d)", True, ["B", "D", "C"]),
        ("FOR AUX_X SELECT LatestValCover(0, 0)", False, []),
    ],
)
def test_worked_example_first_window(rule: str, satisfied: bool, ids: list[str]) -> None:
    result = run(rule, EXAMPLE, t(3), t(4))
    assert (result.satisfied, result.ids) == (satisfied, ids)


@pytest.mark.parametrize(
    ("rule", "satisfied", "ids"),
    [
        ("FOR AUX_X SELECT ValIntersect(0, 0) MANDATORY", False, []),
        ("FOR AUX_X SELECT ValIntersect(0, 0)", False, []),  # MANDATORY is the default
        ("FOR AUX_X SELECT ValIntersect(0, 0) OPTIONAL", True, []),
        ("FOR AUX_X SELECT ValIntersect(0, 0) OR LatestValidity", True, ["C"]),
    ],
)
def test_worked_example_second_window(rule: str, satisfied: bool, ids: list[str]) -> None:
    result = run(rule, EXAMPLE, t(5), t(6))
    assert (result.satisfied, result.ids) == (satisfied, ids)


def test_worked_example_records_which_policy_chose_each_product() -> None:
    result = run("FOR AUX_X SELECT ValIntersect(0, 0) OR LatestValidity", EXAMPLE, t(5), t(6))
    assert [(c.candidate.id, c.policy, c.product_type) for c in result.chosen] == [
        ("C", PolicyName.LATEST_VALIDITY, "AUX_X")
    ]
    assert "ValIntersect(0 D, 0 D) found 0" not in result.explanation  # satisfied: says what it chose
    assert result.explanation == "AUX_X: chose 1 by LatestValidity (coverage 0%)"


def test_explanations_say_why_nothing_was_chosen() -> None:
    failed = run("FOR AUX_X SELECT ValIntersect(0, 0)", EXAMPLE, t(5), t(6))
    assert failed.explanation == "not satisfied: AUX_X: 4 candidates; ValIntersect(0 D, 0 D) found 0"
    optional = run("FOR AUX_X SELECT ValIntersect(0, 0) OPTIONAL", EXAMPLE, t(5), t(6))
    assert optional.explanation.startswith("optional input, nothing found: AUX_X: 4 candidates")


# --- chains -----------------------------------------------------------------------


def test_a_chain_stops_at_the_first_policy_that_finds_something() -> None:
    cands = {"X": [p("old", t(1), t(2), gen=9), p("new_validity", t(8), t(9), gen=0)]}
    first = run("FOR X SELECT LastCreated OR LatestValidity", cands, t(3), t(4))
    assert first.ids == ["old"] and {c.policy for c in first.chosen} == {PolicyName.LAST_CREATED}
    swapped = run("FOR X SELECT LatestValidity OR LastCreated", cands, t(3), t(4))
    assert swapped.ids == ["new_validity"]


def test_the_written_order_of_a_chain_is_kept() -> None:
    rule = parse_simple("FOR X SELECT LatestValidity OR ValIntersect(1 h, 2 h) OR LastCreated")
    assert [p.name for p in rule.alternatives[0].chain] == [
        PolicyName.LATEST_VALIDITY,
        PolicyName.VAL_INTERSECT,
        PolicyName.LAST_CREATED,
    ]


def test_a_chain_goes_on_while_coverage_is_short_and_accumulates() -> None:
    cands = {
        "X": [
            p("morning", t(3), t(3, 10), gen=1),
            p("midday", t(3, 8), t(3, 16), gen=1),
            p("evening", t(3, 16), t(4), gen=0),
            p("newest", t(9), t(10), gen=9),
        ]
    }
    rule = "FOR X SELECT ValIntersect(0, 0) OR LatestValidity OR LastCreated MINCOVER(90)"
    # Window [03 00:00, 03 20:00]: ValIntersect takes all three day products (100 %).
    assert run(rule, cands, t(3), t(3, 20)).ids == ["morning", "midday", "evening"]
    # Window [03 00:00, 04 12:00]: 24 of 36 h = 67 %; LatestValidity adds "newest", still 67 %,
    # LastCreated adds nothing new: not satisfied, and nothing is kept.
    short = run(rule, cands, t(3), t(4, 12))
    assert not short.satisfied and short.ids == []
    assert "coverage 67% < 90%" in short.explanation


def test_mincover_uses_the_union_of_validities_over_the_unwidened_window() -> None:
    overlapping = [p(1, t(3), t(3, 20)), p(2, t(3, 2), t(3, 22))]
    assert coverage(overlapping, t(3), t(4)) == pytest.approx(100 * 22 / 24)
    assert run("FOR X SELECT ValIntersect(0, 0) MINCOVER(91)", {"X": overlapping}, t(3), t(4)).satisfied
    assert not run("FOR X SELECT ValIntersect(0, 0) MINCOVER(92)", {"X": overlapping}, t(3), t(4)).satisfied
    # A product only in the widened part is selected by the policy but covers nothing.
    outside = {"X": [p("before", t(2), t(2, 23))]}
    assert run("FOR X SELECT ValIntersect(1 d, 0) OPTIONAL", outside, t(3), t(4)).ids == ["before"]
    assert not run("FOR X SELECT ValIntersect(1 d, 0) MINCOVER(1)", outside, t(3), t(4)).satisfied


def test_mincover_boundaries() -> None:
    halves = {"X": [p(1, t(3), t(3, 12)), p(2, t(3, 12), t(4))]}
    assert run("FOR X SELECT ValIntersect(0, 0) MINCOVER(100)", halves, t(3), t(4)).ids == [1, 2]
    # 57 % exactly (a ratio that is not exact in binary floating point) meets MINCOVER(57).
    part = {"X": [p(1, t(3), t(3) + timedelta(minutes=57 * 24 * 60 / 100))]}
    assert run("FOR X SELECT ValIntersect(0, 0) MINCOVER(57)", part, t(3), t(4)).satisfied
    assert not run("FOR X SELECT ValIntersect(0, 0) MINCOVER(58)", part, t(3), t(4)).satisfied
    # MINCOVER(0) needs something, since MINCOVER implies MANDATORY.
    assert run("FOR X SELECT LastCreated MINCOVER(0)", part, t(8), t(9)).satisfied
    assert not run("FOR X SELECT LastCreated MINCOVER(0)", {"X": []}, t(8), t(9)).satisfied


def test_coverage_of_a_zero_length_window() -> None:
    holder = [p(1, t(2), t(4))]
    assert coverage(holder, t(3), t(3)) == 100.0
    assert coverage(holder, t(5), t(5)) == 0.0
    assert coverage([], t(3), t(4)) == 0.0


def test_absurd_deltas_widen_to_the_calendar_limits_instead_of_failing() -> None:
    policy = parse_simple("FOR X SELECT ValIntersect(99999999999999 d, 99999999999999999999 ms)")
    window = widen(t(3), t(4), policy.alternatives[0].chain[0])
    assert window.start.year == 1 and window.stop.year == 9999
    assert window.start.tzinfo is not None
    assert run(str(policy), {"X": [p(1, t(20), t(21))]}, t(3), t(4)).ids == [1]


# --- filters ----------------------------------------------------------------------

TYPED = [
    p("a", t(3), t(4), gen=1, orbit=7, ratio=0.5, flag=True, band="g", file_class="OPER", big=2**60 + 1),
    p("b", t(3), t(4), gen=2, orbit=8, ratio=0.25, flag=False, band="r", file_class="TEST"),
    p("c", t(3), t(4), gen=3, orbit=None, band="G"),
]


@pytest.mark.parametrize(
    ("filters", "ids"),
    [
        ("orbit:7", ["a"]),
        ("orbit:7.0", ["a"]),  # integers compare as numbers
        ("orbit:07", ["a"]),
        ("orbit:9", []),
        ("orbit:seven", []),  # not a number: no match, no error
        ("ratio:0.5", ["a"]),
        ("ratio:.25", ["b"]),
        ("flag:true", ["a"]),
        ("flag:TRUE", ["a"]),
        ("flag:false", ["b"]),
        ("flag:1", []),
        ("band:g", ["a"]),  # strings are compared exactly
        ("band:G", ["c"]),
        ("file_class:OPER", ["a"]),
        ("band:g,orbit:7", ["a"]),  # all pairs must hold
        ("band:g,orbit:8", []),
        ("missing:x", []),
        ("orbit:None", []),  # an attribute that is None matches nothing
        ("big:1152921504606846977", ["a"]),  # large integers compare exactly ...
        ("big:1152921504606846976", []),  # ... not through floating point
        ("ratio:1e999", []),
    ],
)
def test_filters_compare_typed_attributes(filters: str, ids: list[str]) -> None:
    result = run(f"FOR X/{filters} SELECT ValIntersect(0, 0) OPTIONAL", {"X": TYPED}, t(3), t(4))
    assert result.ids == ids
    source = parse_simple(f"FOR X/{filters} SELECT LastCreated").source
    assert [c.id for c in TYPED if matches(c, source.filters)] == ids


def test_filters_apply_before_the_policy() -> None:
    # LastCreated over the whole class would take "c"; over band g it takes "a".
    assert run("FOR X/band:g SELECT LastCreated", {"X": TYPED}, t(3), t(4)).ids == ["a"]
    assert run("FOR X SELECT LastCreated", {"X": TYPED}, t(3), t(4)).ids == ["c"]


# --- ELSE: alternatives across classes ----------------------------------------------

ELSE_RULE = "FOR L1B_RA SELECT ValIntersect(0, 0) ELSE FOR L1B_RB SELECT LatestValidity"


def test_else_uses_the_first_alternative_that_satisfies_the_rule() -> None:
    both = {"L1B_RA": [p("ra", t(3), t(4))], "L1B_RB": [p("rb", t(3), t(4), gen=9)]}
    first = run(ELSE_RULE, both, t(3), t(4))
    assert first.ids == ["ra"] and first.chosen[0].product_type == "L1B_RA"
    only_b = {"L1B_RA": [p("ra_elsewhere", t(8), t(9))], "L1B_RB": [p("rb", t(1), t(2))]}
    fallback = run(ELSE_RULE, only_b, t(3), t(4))
    assert fallback.ids == ["rb"] and fallback.chosen[0].product_type == "L1B_RB"
    assert fallback.explanation.startswith("L1B_RB: chose 1 by LatestValidity")
    assert run(ELSE_RULE, {"L1B_RB": [p("rb", t(1), t(2))]}, t(3), t(4)).ids == ["rb"]  # no A at all


def test_else_with_mincover_discards_an_insufficient_first_alternative() -> None:
    cands = {"A": [p("a_half", t(3), t(3, 12))], "B": [p("b_full", t(2), t(5))]}
    rule = "FOR A SELECT ValIntersect(0, 0) ELSE FOR B SELECT ValIntersect(0, 0) MINCOVER(80)"
    assert run(rule, cands, t(3), t(4)).ids == ["b_full"]
    assert run(rule.replace("80", "50"), cands, t(3), t(4)).ids == ["a_half"]


def test_else_nothing_anywhere() -> None:
    assert not run(ELSE_RULE, {}, t(3), t(4)).satisfied
    optional = run(ELSE_RULE + " OPTIONAL", {}, t(3), t(4))
    assert optional.satisfied and optional.ids == []
    assert "L1B_RA: 0 candidates" in optional.explanation and "L1B_RB: 0 candidates" in optional.explanation


def test_else_between_filters_of_one_class() -> None:
    rule = "FOR X/band:g SELECT LatestValCover(0, 0) ELSE FOR X/band:r SELECT LatestValCover(0, 0)"
    assert run(rule, {"X": TYPED}, t(3), t(4)).ids == ["a"]
    assert run(rule, {"X": TYPED[1:]}, t(3), t(4)).ids == ["b"]


def test_a_rule_with_several_simple_rules_is_evaluated_one_by_one() -> None:
    rule = parse("FOR AUX_X SELECT ValIntersect(0, 0); FOR AUX_X SELECT LatestValCover(0, 0) OPTIONAL")
    results = [evaluate(r, EXAMPLE, t(3), t(4)) for r in rule]
    assert [(r.satisfied, r.ids) for r in results] == [(True, ["C"]), (True, [])]
