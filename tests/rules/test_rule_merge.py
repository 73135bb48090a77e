"""Rule scoping (mode, configured processors) and merging of rules for the same input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proseo.errors import RuleSyntaxError
from proseo.missions import load_mission
from proseo.rules import ScopedRule, applicable_rules, merge, parse, parse_simple, scoped_rules, source_key
from proseo.rules.evaluate import evaluate
from proseo.rules.merge import merge_qualifiers
from proseo.rules.policies import Candidate

from tests_paths import MISSION_DIR


def m(a: str, b: str) -> str:
    return str(merge(parse_simple(a), parse_simple(b)))


# --- merge -------------------------------------------------------------------------


def test_same_policy_takes_each_larger_delta() -> None:
    merged = m("FOR A SELECT ValIntersect(12 h, 0)", "FOR A SELECT ValIntersect(0, 30 m)")
    assert merged == "FOR A SELECT ValIntersect(12 H, 30 M) MANDATORY"
    # Durations, not numbers, are compared: 1 d beats 23 h, 90 s loses to 2 m.
    merged = m("FOR A SELECT ValCover(23 h, 90 s)", "FOR A SELECT ValCover(1 d, 2 m)")
    assert merged == "FOR A SELECT ValCover(1 D, 2 M) MANDATORY"


def test_equal_durations_keep_the_first_spelling() -> None:
    assert m("FOR A SELECT ValCover(1 d, 0)", "FOR A SELECT ValCover(24 h, 0 ms)") == (
        "FOR A SELECT ValCover(1 D, 0 D) MANDATORY"
    )


def test_different_policies_are_concatenated_in_written_order() -> None:
    merged = m("FOR A SELECT LatestValCover(0, 0)", "FOR A SELECT LatestValidity")
    assert merged == "FOR A SELECT LatestValCover(0 D, 0 D) OR LatestValidity MANDATORY"
    swapped = m("FOR A SELECT LatestValidity", "FOR A SELECT LatestValCover(0, 0)")
    assert swapped == "FOR A SELECT LatestValidity OR LatestValCover(0 D, 0 D) MANDATORY"


def test_chains_merge_policy_by_policy() -> None:
    merged = m(
        "FOR A SELECT ValIntersect(0, 0) OR LatestValidity",
        "FOR A SELECT LatestValCover(0, 0) OR ValIntersect(1 h, 0) OR LatestValidity",
    )
    assert merged == (
        "FOR A SELECT ValIntersect(1 H, 0 D) OR LatestValidity OR LatestValCover(0 D, 0 D) MANDATORY"
    )


def test_a_repeated_policy_widens_the_first_of_its_name() -> None:
    merged = m(
        "FOR A SELECT ValIntersect(0, 0) OR LastCreated OR ValIntersect(2 d, 2 d)",
        "FOR A SELECT ValIntersect(1 d, 0)",
    )
    assert merged == (
        "FOR A SELECT ValIntersect(1 D, 0 D) OR LastCreated OR ValIntersect(2 D, 2 D) MANDATORY"
    )


@pytest.mark.parametrize(
    ("a", "b", "merged"),
    [
        ("MANDATORY", "MANDATORY", "MANDATORY"),
        ("MANDATORY", "OPTIONAL", "MANDATORY"),
        ("OPTIONAL", "MANDATORY", "MANDATORY"),
        ("OPTIONAL", "OPTIONAL", "OPTIONAL"),
        ("MINCOVER(40)", "OPTIONAL", "MINCOVER(40)"),
        ("MANDATORY", "MINCOVER(40)", "MINCOVER(40)"),
        ("MINCOVER(40)", "MINCOVER(90)", "MINCOVER(90)"),
        ("MINCOVER(90)", "MINCOVER(0)", "MINCOVER(90)"),
        ("MINCOVER(0)", "OPTIONAL", "MINCOVER(0)"),
    ],
)
def test_qualifiers_merge_to_the_stricter(a: str, b: str, merged: str) -> None:
    result = m(f"FOR A SELECT LastCreated {a}", f"FOR A SELECT LastCreated {b}")
    assert result == f"FOR A SELECT LastCreated {merged}"
    qa, qb = (
        parse_simple(f"FOR A SELECT LastCreated {a}").qualifier,
        parse_simple(f"FOR A SELECT LastCreated {b}").qualifier,
    )
    assert merge_qualifiers(qa, qb) == merge_qualifiers(qb, qa)  # commutative


def test_else_rules_merge_alternative_by_alternative() -> None:
    merged = m(
        "FOR A SELECT ValIntersect(0, 0) ELSE FOR B SELECT LatestValidity OPTIONAL",
        "FOR A SELECT ValIntersect(1 h, 0) ELSE FOR B SELECT LastCreated",
    )
    assert merged == (
        "FOR A SELECT ValIntersect(1 H, 0 D) ELSE FOR B SELECT LatestValidity OR LastCreated MANDATORY"
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("FOR A SELECT LastCreated", "FOR B SELECT LastCreated"),
        ("FOR A/x:1 SELECT LastCreated", "FOR A/x:2 SELECT LastCreated"),
        ("FOR A/x:1,y:2 SELECT LastCreated", "FOR A/y:2,x:1 SELECT LastCreated"),  # filters in order
        ("FOR A SELECT LastCreated", "FOR A SELECT LastCreated ELSE FOR B SELECT LastCreated"),
        (
            "FOR A SELECT LastCreated ELSE FOR B SELECT LastCreated",
            "FOR B SELECT LastCreated ELSE FOR A SELECT LastCreated",
        ),
    ],
)
def test_rules_for_different_inputs_do_not_merge(a: str, b: str) -> None:
    assert source_key(parse_simple(a)) != source_key(parse_simple(b))
    with pytest.raises(ValueError, match="different inputs"):
        merge(parse_simple(a), parse_simple(b))


def test_a_merged_rule_round_trips_and_selects_what_both_would() -> None:
    a = parse_simple("FOR X SELECT ValIntersect(0, 0)")
    b = parse_simple("FOR X SELECT ValIntersect(0, 1 d)")
    merged = merge(a, b)
    assert parse_simple(str(merged)) == merged
    t0 = datetime(2025, 1, 3, tzinfo=UTC)
    cands = {
        "X": [
            Candidate(1, t0, t0 + timedelta(hours=1), t0),
            Candidate(2, t0 + timedelta(days=1, hours=2), t0 + timedelta(days=2), t0),
        ]
    }
    assert evaluate(a, cands, t0, t0 + timedelta(days=1)).ids == [1]
    assert evaluate(merged, cands, t0, t0 + timedelta(days=1)).ids == [1, 2]


# --- applicable_rules ----------------------------------------------------------------


def scoped(text: str, mode: str | None = None, cps: tuple[str, ...] = (), origin: str = "") -> ScopedRule:
    return ScopedRule(parse_simple(text), mode, cps, origin or text.split(" SELECT")[0])


RULES = [
    scoped("FOR L1 SELECT ValIntersect(0, 0)", origin="r0"),
    scoped("FOR AUX SELECT LatestValCover(0, 0) OR LatestValIntersect(1 d, 1 d)", origin="r1"),
    scoped("FOR AUX SELECT LatestValidity", mode="NRTI", origin="r2"),
    scoped("FOR CLOUD SELECT ValIntersect(0, 0)", cps=("NO2_1.0_A",), origin="r3"),
    scoped("FOR L1 SELECT ValIntersect(1 h, 1 h) OPTIONAL", origin="r4"),
    scoped("FOR MET SELECT ValIntersect(3 h, 3 h)", mode="OFFL", origin="r5"),
    scoped("FOR MET SELECT ValIntersect(6 h, 0) MINCOVER(100)", mode="OFFL", origin="r6"),
    scoped("FOR MET SELECT ValIntersect(0, 0)", origin="r7"),
]


def origins(rules: list[ScopedRule]) -> list[str]:
    return [r.origin for r in rules]


def test_a_rule_for_the_mode_wins_over_mode_less_ones() -> None:
    nrti = applicable_rules(RULES, "NRTI", None)
    assert origins(nrti) == ["r0 + r4", "r2", "r7"]
    aux = nrti[1]
    assert str(aux.rule) == "FOR AUX SELECT LatestValidity MANDATORY" and aux.mode == "NRTI"


def test_without_a_matching_mode_the_mode_less_rules_apply() -> None:
    assert origins(applicable_rules(RULES, "OPER", None)) == ["r0 + r4", "r1", "r7"]
    assert origins(applicable_rules(RULES, None, None)) == ["r0 + r4", "r1", "r7"]


def test_rules_of_the_mode_merge_among_themselves() -> None:
    offl = applicable_rules(RULES, "OFFL", None)
    assert origins(offl) == ["r0 + r4", "r1", "r5 + r6"]
    assert str(offl[2].rule) == "FOR MET SELECT ValIntersect(6 H, 3 H) MINCOVER(100)"
    assert offl[2].mode == "OFFL"


def test_mode_less_rules_for_one_input_are_merged() -> None:
    (l1,) = [r for r in applicable_rules(RULES, None, None) if r.rule.source.product_type == "L1"]
    assert str(l1.rule) == "FOR L1 SELECT ValIntersect(1 H, 1 H) MANDATORY"
    assert l1.mode is None and l1.configured_processors == ()


def test_configured_processor_scoping() -> None:
    with_cp = applicable_rules(RULES, "NRTI", "NO2_1.0_A")
    assert origins(with_cp) == ["r0 + r4", "r2", "r3", "r7"]
    assert with_cp[2].configured_processors == ("NO2_1.0_A",)
    assert with_cp[0].configured_processors == ()
    assert "r3" not in origins(applicable_rules(RULES, "NRTI", "NO2_2.0_B"))
    assert "r3" not in origins(applicable_rules(RULES, "NRTI", None))


def test_results_follow_the_first_written_rule_of_each_input() -> None:
    rules = [
        scoped("FOR B SELECT LastCreated", origin="b"),
        scoped("FOR A SELECT LastCreated", origin="a"),
        scoped("FOR B SELECT LatestValidity", mode="M", origin="b_for_m"),
        scoped("FOR A SELECT LatestValidity", origin="a2"),
    ]
    assert origins(applicable_rules(rules, "M", None)) == ["b_for_m", "a + a2"]
    assert origins(applicable_rules(rules, None, None)) == ["b", "a + a2"]
    assert applicable_rules([], "M", "cp") == []


def test_else_rules_are_scoped_by_their_whole_source_key() -> None:
    rules = [
        scoped("FOR A SELECT LastCreated ELSE FOR B SELECT LastCreated", origin="ab"),
        scoped("FOR A SELECT LatestValidity", mode="M", origin="a_for_m"),
        scoped("FOR A SELECT ValIntersect(0, 0) ELSE FOR B SELECT LatestValidity", origin="ab2"),
    ]
    result = applicable_rules(rules, "M", None)
    assert origins(result) == ["ab + ab2", "a_for_m"]
    assert str(result[0].rule) == (
        "FOR A SELECT LastCreated OR ValIntersect(0 D, 0 D) "
        "ELSE FOR B SELECT LastCreated OR LatestValidity MANDATORY"
    )


# --- scoped_rules ----------------------------------------------------------------------


def test_scoped_rules_parse_each_text_with_its_scope() -> None:
    result = scoped_rules(
        [
            ("FOR A SELECT LastCreated", None, [], "X.selection_rules[0]"),
            (
                "FOR B SELECT LastCreated; FOR C SELECT LatestValidity OPTIONAL",
                "NRTI",
                ["cp1", "cp2"],
                "X.selection_rules[1]",
            ),
        ]
    )
    assert [(str(r.rule), r.mode, r.configured_processors, r.origin) for r in result] == [
        ("FOR A SELECT LastCreated MANDATORY", None, (), "X.selection_rules[0]"),
        ("FOR B SELECT LastCreated MANDATORY", "NRTI", ("cp1", "cp2"), "X.selection_rules[1]#1"),
        ("FOR C SELECT LatestValidity OPTIONAL", "NRTI", ("cp1", "cp2"), "X.selection_rules[1]#2"),
    ]


def test_scoped_rules_let_a_syntax_error_through_with_its_origin() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        scoped_rules([("FOR A SELECT LastCreated", None, [], "X[0]"), ("FOR B SELECT", None, [], "X[1]")])
    assert info.value.offset == 12
    assert "in X[1]" in (info.value.__notes__ or [])


def test_the_sample_mission_nrti_rule_replaces_the_offline_one() -> None:
    cfg = load_mission(MISSION_DIR / "s5p.yaml").config
    specs = [
        (s.rule, s.mode, s.configured_processors, f"L2__NO2___.selection_rules[{i}]")
        for i, s in enumerate(cfg.product_classes["L2__NO2___"].selection_rules)
    ]
    rules = scoped_rules(specs)

    def ctm(mode: str | None) -> ScopedRule:
        (found,) = [
            r for r in applicable_rules(rules, mode, None) if r.rule.source.product_type == "AUX_CTMFCT"
        ]
        return found

    assert ctm("NRTI").origin == "L2__NO2___.selection_rules[5]"
    assert str(ctm("NRTI").rule) == "FOR AUX_CTMFCT SELECT LatestValidity MANDATORY"
    assert ctm("OFFL").origin == "L2__NO2___.selection_rules[4]"
    assert len(applicable_rules(rules, "NRTI", None)) == len(applicable_rules(rules, "OFFL", None)) == 5
    assert parse(str(ctm("OFFL").rule)).rules == (ctm("OFFL").rule,)
