"""The layered layout behind the SVG picture: ranks, order, coordinates and edge routes."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proseo.planning.layout import _fit, natural_key, ordered_layers, place, rank

H = 56.0


def test_natural_key_sorts_numbers_by_value() -> None:
    ids = ["step-10", "step-2", "Step-1", "orbit 37012", "aux", "step-2a"]
    assert sorted(ids, key=natural_key) == ["aux", "orbit 37012", "Step-1", "step-2", "step-2a", "step-10"]


def test_rank_is_the_longest_path_from_the_sources() -> None:
    ids = ["a", "b", "c", "lonely"]
    assert rank(ids, [("a", "b"), ("b", "c"), ("a", "c")]) == {"a": 0, "b": 1, "c": 2, "lonely": 0}


def test_a_source_is_ranked_just_before_its_first_consumer() -> None:
    edges = [("l0", "l1"), ("l1", "l2"), ("l2", "l3"), ("aux", "l3"), ("aux2", "l1"), ("aux2", "l3")]
    ranks = rank(["l0", "l1", "l2", "l3", "aux", "aux2"], edges)
    assert ranks["aux"] == 2 and ranks["aux2"] == 0


def test_rank_names_the_ids_of_a_cycle() -> None:
    with pytest.raises(ValueError, match=r"cycle: b -> c -> b"):
        rank(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "b"), ("c", "d")])


def test_long_edges_leave_no_dummies_in_the_layers() -> None:
    assert ordered_layers(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")]) == [["a"], ["b"], ["c"]]


def test_fit_keeps_feasible_positions_and_spreads_crowded_ones_around_their_mean() -> None:
    assert _fit([0.0, 50.0, 100.0], [1.0, 1.0, 1.0], [0.0, 20.0, 40.0]) == [0.0, 50.0, 100.0]
    crowded = _fit([10.0, 10.0, 10.0], [1.0, 1.0, 1.0], [0.0, 20.0, 40.0])
    assert crowded == pytest.approx([-10.0, 10.0, 30.0])
    heavy = _fit([0.0, 0.0], [3.0, 1.0], [0.0, 40.0])
    assert heavy == pytest.approx([-10.0, 30.0])


def test_a_chain_is_drawn_straight_and_a_fan_in_target_is_centred() -> None:
    orbits = [f"o{i}" for i in range(24)]
    ids = [f"l0-{o}" for o in orbits] + orbits + ["daily"]
    edges = [(f"l0-{o}", o) for o in orbits] + [(o, "daily") for o in orbits]
    result = place(ids, edges, dict.fromkeys(ids, 150.0), H)
    for o in orbits:
        assert result.boxes[o].y == pytest.approx(result.boxes[f"l0-{o}"].y)
    ys = [result.boxes[o].y for o in orbits]
    assert result.boxes["daily"].y == pytest.approx(sum(ys) / len(ys), abs=1.0)
    assert ys == sorted(ys)


def test_columns_take_the_widest_box_of_their_layer() -> None:
    widths = {"a": 100.0, "b": 200.0, "c": 120.0}
    result = place(["a", "b", "c"], [("a", "b"), ("a", "c")], widths, H, layer_gap=50.0)
    assert result.boxes["b"].w == result.boxes["c"].w == 200.0
    assert result.boxes["b"].x == pytest.approx(150.0)
    assert result.width == pytest.approx(350.0)


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]]]:
    n = draw(st.integers(min_value=1, max_value=30))
    ids = [f"n{i}" for i in draw(st.permutations(range(n)))]
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1])
    edges = draw(st.lists(pairs, max_size=3 * n, unique=True)) if n > 1 else []
    return ids, [(f"n{a}", f"n{b}") for a, b in edges]


@settings(max_examples=60, deadline=None)
@given(dags())
def test_layout_invariants(dag: tuple[list[str], list[tuple[str, str]]]) -> None:
    ids, edges = dag
    result = place(ids, edges, {i: 100.0 + 7 * (len(i) % 3) for i in ids}, H)
    layer_of = {i: k for k, layer in enumerate(result.layers) for i in layer}
    assert sorted(layer_of) == sorted(ids)
    assert [list(layer) for layer in result.layers] == ordered_layers(ids, edges)
    for layer in result.layers:  # boxes of a layer keep their order and never overlap
        tops = [result.boxes[i].y for i in layer]
        assert all(b - a >= H + 14.0 - 1e-6 for a, b in pairwise(tops))
    for box in result.boxes.values():
        assert box.x >= -1e-6 and box.y >= -1e-6
        assert box.x + box.w <= result.width + 1e-6 and box.y + box.h <= result.height + 1e-6
    assert len(result.routes) == len(edges)
    for a, b, pts in result.routes:
        assert layer_of[a] < layer_of[b]
        assert len(pts) == 2 * (layer_of[b] - layer_of[a])
        src, dst = result.boxes[a], result.boxes[b]
        assert pts[0][0] == pytest.approx(src.x + src.w) and src.y < pts[0][1] < src.y + src.h
        assert pts[-1][0] == pytest.approx(dst.x) and dst.y < pts[-1][1] < dst.y + dst.h
        assert all(p[0] <= q[0] for p, q in pairwise(pts))
