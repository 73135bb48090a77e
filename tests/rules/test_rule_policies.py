"""Each of the 16 selection policies (and the LatestStartValidity alias) on purposeful data.

Products are built so that every policy has one right answer that a near-miss
implementation would get wrong: boundaries touched but not crossed, equal
distances resolved by generation time and then by id, deltas that move the window.
Rules go through the parser and the evaluator, so the wiring is tested too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from proseo.rules import PolicyName, parse, parse_simple
from proseo.rules.ast import WINDOWLESS
from proseo.rules.evaluate import evaluate
from proseo.rules.policies import POLICIES, Candidate, Window, intersects, overlap

H = timedelta(hours=1)
G0 = datetime(2025, 2, 1, tzinfo=UTC)  # generation times: G0 + n hours


def t(day: int, hour: float = 0) -> datetime:
    return datetime(2025, 1, day, tzinfo=UTC) + hour * H


def p(pid: object, start: datetime, stop: datetime, gen: int = 0, **attributes: object) -> Candidate:
    return Candidate(pid, start, stop, G0 + gen * H, attributes)


def select(rule: str, cands: Sequence[Candidate], start: datetime, stop: datetime) -> list[object]:
    """Ids a rule chooses for ``[start, stop]`` from candidates of class X."""
    return evaluate(parse_simple(rule), {"X": list(cands)}, start, stop).ids


T0, T1 = t(3), t(4)  # the job step's window unless a test says otherwise


def test_every_policy_is_implemented_and_parsable() -> None:
    assert set(POLICIES) == set(PolicyName)
    for name in PolicyName:
        deltas = "" if name in WINDOWLESS else "(0, 0)"
        assert parse_simple(f"FOR X SELECT {name.value}{deltas}").alternatives[0].chain[0].name is name


@pytest.mark.parametrize("name", list(PolicyName))
def test_no_candidates_select_nothing(name: PolicyName) -> None:
    assert POLICIES[name]([], Window(T0, T1)) == []


# --- cover --------------------------------------------------------------------------

COVER = [
    p("wide", t(2), t(5), gen=1),
    p("exact", T0, T1, gen=2),  # boundaries count: start <= W.start and stop >= W.stop
    p("late_start", t(3, 1), t(5), gen=9),
    p("early_stop", t(1), t(3, 23), gen=9),
]


def test_val_cover_takes_all_covering_products_in_validity_order() -> None:
    assert select("FOR X SELECT ValCover(0, 0)", COVER, T0, T1) == ["wide", "exact"]


def test_val_cover_deltas_widen_the_window_that_must_be_covered() -> None:
    assert select("FOR X SELECT ValCover(1 h, 0)", COVER, T0, T1) == ["wide"]
    assert select("FOR X SELECT ValCover(2 d, 0)", COVER, T0, T1) == []


def test_latest_val_cover_takes_the_newest_covering_product() -> None:
    assert select("FOR X SELECT LatestValCover(0, 0)", COVER, T0, T1) == ["exact"]
    twins = [p(1, t(2), t(5), gen=3), p(2, t(1), t(6), gen=3), p(3, t(1), t(9), gen=1)]
    assert select("FOR X SELECT LatestValCover(0, 0)", twins, T0, T1) == [2]  # same generation: higher id


# --- intersect ----------------------------------------------------------------------

INTERSECT = [
    p("ends_at_t0", t(2), T0, gen=5),
    p("starts_at_t1", T1, t(5), gen=5),
    p("one_ms_in", t(2), T0 + timedelta(milliseconds=1), gen=1),
    p("inside", t(3, 6), t(3, 7), gen=2),
    p("around", t(2), t(5), gen=3),
    p("far", t(8), t(9), gen=9),
]


def test_val_intersect_is_strict_touching_a_boundary_does_not_count() -> None:
    chosen = select("FOR X SELECT ValIntersect(0, 0)", INTERSECT, T0, T1)
    assert chosen == ["one_ms_in", "around", "inside"]  # by start, then stop


def test_val_intersect_zero_length_window_takes_products_touching_the_instant() -> None:
    chosen = select("FOR X SELECT ValIntersect(0, 0)", INTERSECT, T0, T0)
    assert chosen == ["ends_at_t0", "one_ms_in", "around"]
    assert select("FOR X SELECT ValIntersect(0, 0)", INTERSECT, T1, T1) == ["around", "starts_at_t1"]


def test_a_widened_zero_length_window_is_strict_again() -> None:
    # t0 == t1 but W = [t0 - 1 s, t1] is not empty: a product starting at W.stop touches only.
    chosen = select("FOR X SELECT ValIntersect(1 s, 0)", INTERSECT, T1, T1)
    assert chosen == ["around"]


def test_intersects_and_overlap_helpers() -> None:
    w = Window(T0, T1)
    assert not intersects(p(1, t(2), T0), w) and intersects(p(1, t(2), T0), Window(T0, T0))
    assert overlap(p(1, t(2), t(3, 6)), w) == 6 * H
    assert overlap(p(1, t(5), t(6)), w) == timedelta(0)


def test_val_intersect_without_duplicates_keeps_the_newest_of_equal_validities() -> None:
    cands = [
        p("old", t(3, 1), t(3, 2), gen=1),
        p("new", t(3, 1), t(3, 2), gen=4),
        p("other", t(3, 1), t(3, 3), gen=0),
        p(7, t(3, 5), t(3, 6), gen=2),
        p(9, t(3, 5), t(3, 6), gen=2),  # same validity and generation: the higher id
        p("touching", T1, t(5), gen=9),
    ]
    chosen = select("FOR X SELECT ValIntersectWithoutDuplicates(0, 0)", cands, T0, T1)
    assert chosen == ["new", "other", 9]
    assert select("FOR X SELECT ValIntersect(0, 0)", cands, T0, T1) == ["new", "old", "other", 7, 9]


def test_latest_val_intersect_takes_the_newest_intersecting_product() -> None:
    assert select("FOR X SELECT LatestValIntersect(0, 0)", INTERSECT, T0, T1) == ["around"]
    # Widening by a day reaches the touching products, which are newer.
    assert select("FOR X SELECT LatestValIntersect(1 d, 0)", INTERSECT, T0, T1) == ["ends_at_t0"]


# --- window-less --------------------------------------------------------------------

VALIDITY = [
    p(1, t(20), t(21), gen=1),
    p(2, t(20), t(22), gen=3),
    p(3, t(19), t(22), gen=2),
    p(4, t(20), t(21), gen=3),
    p(5, t(1), t(2), gen=8),
]


@pytest.mark.parametrize("spelling", ["LatestValidity", "LatestStartValidity", "lateststartvalidity"])
def test_latest_validity_takes_the_latest_start_ignoring_the_window(spelling: str) -> None:
    # Starts 20 tie between 1, 2, 4; generations 3 tie between 2 and 4; the higher id wins.
    assert select(f"FOR X SELECT {spelling}", VALIDITY, T0, T1) == [4]
    assert select(f"FOR X SELECT {spelling}", VALIDITY[:3], T0, T1) == [2]


def test_latest_start_validity_is_an_alias_printed_canonically() -> None:
    assert parse("FOR X SELECT LatestStartValidity") == parse("FOR X SELECT LatestValidity")
    assert str(parse("FOR X SELECT LatestStartValidity")) == "FOR X SELECT LatestValidity MANDATORY"


def test_latest_stop_validity_takes_the_latest_stop() -> None:
    # Stops 22 tie between 2 (gen 3) and 3 (gen 2): generation decides.
    assert select("FOR X SELECT LatestStopValidity", VALIDITY, T0, T1) == [2]


def test_last_created_takes_the_newest_generation_anywhere() -> None:
    assert select("FOR X SELECT LastCreated", VALIDITY, T0, T1) == [5]
    assert select("FOR X SELECT LastCreated", VALIDITY[:4], T0, T1) == [4]  # gen 3 tie: higher id


# --- closest ------------------------------------------------------------------------


def test_latest_validity_closest_aims_at_the_centre_of_the_widened_window() -> None:
    cands = [p("a", t(3, 12), t(9), gen=1), p("b", t(4, 6), t(9), gen=0), p("c", t(1), t(2), gen=9)]
    assert select("FOR X SELECT LatestValidityClosest(0, 0)", cands, T0, T1) == ["a"]  # centre 03 12:00
    assert select("FOR X SELECT LatestValidityClosest(0, 1 d)", cands, T0, T1) == ["b"]  # centre 04 00:00
    tie = [p("before", t(3, 10), t(9), gen=1), p("after", t(3, 14), t(9), gen=2)]
    assert select("FOR X SELECT LatestValidityClosest(0, 0)", tie, T0, T1) == ["after"]


def test_closest_start_validity_aims_at_t0_minus_the_first_delta() -> None:
    cands = [p("a", t(2, 23), t(9), gen=1), p("b", t(2, 1), t(9), gen=1), p("c", t(3, 2), t(9), gen=0)]
    assert select("FOR X SELECT ClosestStartValidity(0, 0)", cands, T0, T1) == ["a"]
    assert select("FOR X SELECT ClosestStartValidity(1 d, 0)", cands, T0, T1) == ["b"]
    tie = [p(1, t(2, 22), t(9), gen=4), p(2, t(3, 2), t(9), gen=4), p(3, t(2, 22), t(9), gen=1)]
    # Starts 2 h either side of t0, same generation: the validity centred nearer the
    # window's centre wins (1: centre 5d23h, 2: centre 6d01h, window centre 3d12h).
    assert select("FOR X SELECT ClosestStartValidity(0, 0)", tie, T0, T1) == [1]


def test_equally_new_products_go_to_the_one_centred_nearest_the_window() -> None:
    # What keeps a planned orbit's own run preferred over the next orbit's run.
    same_gen = [p(1, t(2, 18), t(3, 18), gen=5), p(2, t(3), t(4), gen=5), p(3, t(3, 6), t(4, 6), gen=5)]
    assert select("FOR X SELECT LatestValIntersect(1 d, 1 d)", same_gen, T0, T1) == [2]
    assert select("FOR X SELECT LastCreated", same_gen, T0, T1) == [2]
    newer = [*same_gen, p(4, t(1), t(2, 1), gen=6)]
    assert select("FOR X SELECT LatestValIntersect(1 d, 1 d)", newer, T0, T1) == [4]  # newest first


def test_closest_stop_validity_aims_at_t1_plus_the_second_delta() -> None:
    cands = [p("a", t(1), t(4, 1), gen=1), p("b", t(1), t(5, 3), gen=1), p("c", t(1), t(3, 20), gen=9)]
    assert select("FOR X SELECT ClosestStopValidity(0, 0)", cands, T0, T1) == ["a"]
    assert select("FOR X SELECT ClosestStopValidity(0, 1 d)", cands, T0, T1) == ["b"]
    tie = [p("earlier", t(1), t(3, 23), gen=2), p("later", t(1), t(4, 1), gen=1)]
    assert select("FOR X SELECT ClosestStopValidity(0, 0)", tie, T0, T1) == ["earlier"]


# --- among covering products -------------------------------------------------------


def test_best_centered_cover_maximises_the_smaller_margin() -> None:
    cands = [
        p("lopsided", t(2), t(9), gen=5),  # margins 24 h and 120 h: min 24 h
        p("centred", t(1, 12), t(5, 12), gen=1),  # margins 36 h and 36 h
        p("huge_but_not_covering", t(3, 1), t(20), gen=9),
    ]
    assert select("FOR X SELECT BestCenteredCover(0, 0)", cands, T0, T1) == ["centred"]
    # Widening by 1 d each side: margins 0/96 h and 12/12 h: still the centred one.
    assert select("FOR X SELECT BestCenteredCover(1 d, 1 d)", cands, T0, T1) == ["centred"]
    tie = [p(1, t(2), t(5), gen=1), p(2, t(1), t(6), gen=0), p(3, t(1), t(6), gen=2)]
    assert select("FOR X SELECT BestCenteredCover(0, 0)", tie, T0, T1) == [3]


def test_latest_val_cover_closest_prefers_the_cover_starting_nearest_to_the_window() -> None:
    cands = [
        p("near", t(2, 20), t(5), gen=1),
        p("far_but_new", t(1), t(5), gen=7),
        p("nearer_not_covering", t(3, 1), t(5), gen=9),
    ]
    assert select("FOR X SELECT LatestValCoverClosest(0, 0)", cands, T0, T1) == ["near"]
    tie = [p("a", T0, t(5), gen=1), p("b", T0, t(6), gen=2)]
    assert select("FOR X SELECT LatestValCoverClosest(0, 0)", tie, T0, T1) == ["b"]


def test_latest_val_cover_newest_validity_falls_back_to_latest_validity() -> None:
    covering = [p("cover_old", t(1), t(5), gen=1), p("cover_new", t(2), t(5), gen=2), p("late", t(9), t(10))]
    assert select("FOR X SELECT LatestValCoverNewestValidity(0, 0)", covering, T0, T1) == ["cover_new"]
    none_cover = [p("early", t(1), t(2), gen=5), p("late", t(9), t(10), gen=0), p("mid", t(3, 5), t(5))]
    assert select("FOR X SELECT LatestValCoverNewestValidity(0, 0)", none_cover, T0, T1) == ["late"]


# --- overlap ------------------------------------------------------------------------


def test_largest_overlap_takes_the_product_overlapping_most() -> None:
    cands = [
        p("ten_hours", t(3, 14), t(6), gen=1),
        p("twelve_hours", t(2), t(3, 12), gen=0),
        p("touching", t(1), T0, gen=9),
    ]
    assert select("FOR X SELECT LargestOverlap(0, 0)", cands, T0, T1) == ["twelve_hours"]


def test_largest_overlap_ties_go_to_the_start_nearest_w_start_then_the_newest() -> None:
    cands = [p("late_start", t(3, 12), t(5), gen=9), p("early_start", t(2, 18), t(3, 12), gen=0)]
    assert select("FOR X SELECT LargestOverlap(0, 0)", cands, T0, T1) == ["early_start"]  # 6 h vs 12 h away
    same = [p(1, t(2, 18), t(3, 12), gen=1), p(2, t(3, 6), t(3, 18), gen=1), p(3, t(3, 18), t(5), gen=1)]
    # 1 and 2 overlap 12 h and both start 6 h from W.start; same generation: higher id.
    assert select("FOR X SELECT LargestOverlap(0, 0)", same, T0, T1) == [2]
    newer = [p(1, t(2, 18), t(3, 12), gen=3), p(2, t(3, 6), t(3, 18), gen=1)]
    assert select("FOR X SELECT LargestOverlap(0, 0)", newer, T0, T1) == [1]


def test_largest_overlap_85_needs_85_percent_of_the_widened_window() -> None:
    exactly = p("85", t(2, 22), T0 + timedelta(hours=20.4), gen=1)  # 20.4 h of 24 h
    short = p("short", t(2, 22), T0 + timedelta(hours=20.4) - timedelta(seconds=1), gen=1)
    assert select("FOR X SELECT LargestOverlap85(0, 0)", [exactly], T0, T1) == ["85"]
    assert select("FOR X SELECT LargestOverlap85(0, 0)", [short], T0, T1) == []
    assert select("FOR X SELECT LargestOverlap(0, 0)", [short], T0, T1) == ["short"]
    # The threshold applies to the widened window: 22.4 h of 48 h is too little.
    assert select("FOR X SELECT LargestOverlap85(1 d, 0)", [exactly], T0, T1) == []


def test_largest_overlap_85_on_a_zero_length_window_takes_a_product_holding_the_instant() -> None:
    holder = p("holder", t(2), t(5))
    assert select("FOR X SELECT LargestOverlap85(0, 0)", [holder], T0, T0) == ["holder"]
    assert select("FOR X SELECT LargestOverlap85(0, 0)", [p("away", t(5), t(6))], T0, T0) == []


def test_policies_return_their_result_in_a_deterministic_order() -> None:
    shuffled = list(reversed(INTERSECT))
    assert select("FOR X SELECT ValIntersect(0, 0)", shuffled, T0, T1) == select(
        "FOR X SELECT ValIntersect(0, 0)", INTERSECT, T0, T1
    )
    for name in PolicyName:
        policy = POLICIES[name]
        assert policy(INTERSECT, Window(T0, T1)) == policy(shuffled, Window(T0, T1)), name
