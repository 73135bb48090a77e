"""The order graph as operators see it: layering, validation, text, DOT and SVG output."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET

import pytest

from proseo.catalog.model_order import StepState
from proseo.planning.graph import (
    STATE_COLOURS,
    Graph,
    Node,
    layers,
    to_dot,
    to_svg,
    to_text,
)

SVG = "{http://www.w3.org/2000/svg}"
ORBITS = [str(37012 + i) for i in range(24)]


def diamond() -> Graph:
    nodes = (
        Node("a", "L0__ODB___", "EXISTING", kind="input"),
        Node("b", "L1B_RA_BD1", "COMPLETED"),
        Node("c", "L1B_RA_BD2", "RUNNING"),
        Node("d", "L2__NO2___", "PLANNED"),
    )
    return Graph("diamond", nodes, (("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")))


def fan_in() -> Graph:
    """24 orbit steps, each on its own L0 input, all feeding one daily step."""
    nodes = [Node(f"l0-{o}", "L0__ODB___", "EXISTING", f"orbit {o}", kind="input") for o in ORBITS]
    nodes += [Node(f"step-{o}", "L2__NO2___", "COMPLETED", f"orbit {o}", "L2_NO2 01.04.00") for o in ORBITS]
    nodes.append(Node("daily", "L3__NO2_DAY", "WAITING_INPUT", "2025-03-01"))
    edges = [(f"l0-{o}", f"step-{o}") for o in ORBITS] + [(f"step-{o}", "daily") for o in ORBITS]
    return Graph("S5P daily NO2", tuple(nodes), tuple(edges))


def nasty() -> Graph:
    """Quotes, markup and backslashes in every field a user or a mission config can set."""
    nodes = (
        Node("in\"<&>'", 'AUX "met" <b>', "EXISTING", group='grp "1"', detail="a\\b & c", kind="input"),
        Node("step 1", 'L2 <NO2> & "x"', "FAILED", group='grp "1"', detail="line1\nline2"),
    )
    return Graph('order "7" <&>', nodes, (("in\"<&>'", "step 1"),))


def shuffled(graph: Graph, seed: int) -> Graph:
    rnd = random.Random(seed)
    nodes, edges = list(graph.nodes), list(graph.edges)
    rnd.shuffle(nodes)
    rnd.shuffle(edges)
    return Graph(graph.title, tuple(nodes), tuple(edges))


# --- layering ------------------------------------------------------------------------


def test_layers_of_a_diamond() -> None:
    assert layers(diamond()) == [["a"], ["b", "c"], ["d"]]


def test_fan_in_puts_orbits_in_one_layer_in_order_without_crossings() -> None:
    result = layers(fan_in())
    assert result == [[f"l0-{o}" for o in ORBITS], [f"step-{o}" for o in ORBITS], ["daily"]]


def test_an_input_sits_just_before_its_consumer() -> None:
    graph = Graph(
        "aux",
        (Node("l0", "L0", "EXISTING", kind="input"), Node("l1", "L1", "READY"), Node("l2", "L2", "PLANNED"),
         Node("aux", "AUX", "EXISTING", kind="input")),
        (("l0", "l1"), ("l1", "l2"), ("aux", "l2")),
    )  # fmt: skip
    assert [sorted(layer) for layer in layers(graph)] == [["l0"], ["aux", "l1"], ["l2"]]


def test_crossing_reduction_untwists_a_reversed_fan() -> None:
    nodes = tuple(Node(f"in-{i}", "I", "EXISTING", kind="input") for i in range(6))
    nodes += tuple(Node(f"s-{i}", "S", "PLANNED") for i in range(6))
    graph = Graph("twisted", nodes, tuple((f"in-{i}", f"s-{5 - i}") for i in range(6)))
    first, second = layers(graph)
    assert [f"s-{5 - int(n.split('-')[1])}" for n in first] == second


@pytest.mark.parametrize("render", [layers, to_text, to_dot, to_svg])
def test_output_does_not_depend_on_input_order(render: object) -> None:
    graph = fan_in()
    expected = render(graph)  # type: ignore[operator]
    for seed in range(3):
        assert render(shuffled(graph, seed)) == expected  # type: ignore[operator]


# --- validation ----------------------------------------------------------------------


def test_a_cycle_is_refused_naming_its_nodes() -> None:
    nodes = tuple(Node(i, i.upper(), "PLANNED") for i in ("x", "a", "b", "c"))
    with pytest.raises(ValueError, match="cycle") as err:
        Graph("loop", nodes, (("x", "a"), ("a", "b"), ("b", "c"), ("c", "a")))
    assert re.search(r"(\w) -> (\w) -> (\w) -> \1", str(err.value))
    assert {"a", "b", "c"} <= set(re.findall(r"\w", str(err.value).split(":")[1]))
    assert "x" not in str(err.value).split(":")[1]


def test_a_self_loop_is_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle: a -> a"):
        Graph("self", (Node("a", "A", "PLANNED"),), (("a", "a"),))


def test_an_edge_to_an_unknown_node_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="'a' -> 'ghost' names unknown node 'ghost'"):
        Graph("ghost", (Node("a", "A", "PLANNED"),), (("a", "ghost"),))


def test_duplicate_node_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate node id 'a'"):
        Graph("dup", (Node("a", "A", "PLANNED"), Node("a", "B", "READY")), ())


def test_duplicate_edges_collapse() -> None:
    graph = Graph("dup", (Node("a", "A", "PLANNED"), Node("b", "B", "READY")), (("a", "b"), ("a", "b")))
    assert graph.edges == (("a", "b"),)


# --- text ----------------------------------------------------------------------------


def test_text_lists_every_node_with_state_and_upstream_and_counts_states() -> None:
    graph = fan_in()
    text = to_text(graph)
    for node in graph.nodes:
        assert node.id in text
    daily = next(line for line in text.splitlines() if line.startswith("  ") and line.split()[1] == "daily")
    assert "WAITING_INPUT" in daily and "2025-03-01" in daily
    assert "<- " + ", ".join(f"step-{o}" for o in ORBITS) in daily
    assert text.rstrip().splitlines()[-1] == "states: EXISTING 24, WAITING_INPUT 1, COMPLETED 24"
    assert "25 job steps, 24 inputs, 48 edges" in text
    assert [line for line in text.splitlines() if line.startswith("layer")] == [
        "layer 1",
        "layer 2",
        "layer 3",
    ]


# --- DOT -----------------------------------------------------------------------------

DOT_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def test_dot_is_structurally_valid_and_complete() -> None:
    graph = fan_in()
    dot = to_dot(graph)
    assert dot.startswith('digraph "S5P daily NO2" {') and "rankdir=LR" in dot
    bare = DOT_STRING.sub('""', dot)
    assert '"' not in bare.replace('""', "")
    assert bare.count("{") == bare.count("}")
    for node in graph.nodes:
        assert re.search(rf'^\s*"{node.id}" \[label=', dot, re.M)
    for a, b in graph.edges:
        assert f'  "{a}" -> "{b}";' in dot
    assert dot.count('subgraph "cluster_') == len({n.group for n in graph.nodes})
    assert f'fillcolor="{STATE_COLOURS["WAITING_INPUT"]}"' in dot and "shape=note" in dot


def test_dot_escapes_quotes_backslashes_and_newlines() -> None:
    dot = to_dot(nasty())
    assert 'digraph "order \\"7\\" <&>" {' in dot
    assert '"in\\"<&>\'" -> "step 1";' in dot
    assert "a\\\\b & c" in dot and "line1\\nline2" in dot
    bare = DOT_STRING.sub('""', dot)
    assert '"' not in bare.replace('""', "") and bare.count("{") == bare.count("}")


# --- SVG -----------------------------------------------------------------------------


def svg_nodes(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class", "").split()[:1] == ["node"]]


def test_svg_is_standalone_xml_with_one_group_per_node() -> None:
    graph = fan_in()
    root = ET.fromstring(to_svg(graph))
    assert root.tag == f"{SVG}svg" and root.get("version") == "1.1"
    assert float(root.get("width", 0)) > 0 and float(root.get("height", 0)) > 0
    groups = svg_nodes(root)
    assert sorted(g.get("data-id", "") for g in groups) == sorted(n.id for n in graph.nodes)
    for g in groups:
        node = next(n for n in graph.nodes if n.id == g.get("data-id"))
        rect = g.find(f"{SVG}rect")
        assert rect is not None and rect.get("fill") == STATE_COLOURS[node.state]
        title = g.find(f"{SVG}title")
        assert title is not None and node.id in (title.text or "")
        assert g.get("id") == f"node-{node.id}" and g.get("data-state") == node.state


def test_svg_has_a_legend_and_arrowheads_on_every_edge() -> None:
    graph = fan_in()
    root = ET.fromstring(to_svg(graph))
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    texts = [t.text for t in legend.iter(f"{SVG}text")]
    assert {"EXISTING 24", "COMPLETED 24", "WAITING_INPUT 1", "external input"} <= set(texts)
    fills = {r.get("fill") for r in legend.iter(f"{SVG}rect")}
    assert {STATE_COLOURS[s] for s in ("EXISTING", "COMPLETED", "WAITING_INPUT")} <= fills
    markers = {m.get("id") for m in root.iter(f"{SVG}marker")}
    edges = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "edges")
    paths = edges.findall(f"{SVG}path")
    assert len(paths) == len(graph.edges)
    assert {(p.get("data-from"), p.get("data-to")) for p in paths} == set(graph.edges)
    for path in paths:
        assert path.get("marker-end", "")[5:-1] in markers
        assert re.fullmatch(r"M[\d.,-]+( (C[\d.,-]+ [\d.,-]+ [\d.,-]+|L[\d.,-]+))+", path.get("d", ""))


def test_svg_escapes_special_characters() -> None:
    graph = nasty()
    text = to_svg(graph)
    root = ET.fromstring(text)
    assert {g.get("data-id") for g in svg_nodes(root)} == {"in\"<&>'", "step 1"}
    assert root.find(f"{SVG}title").text == 'order "7" <&>'  # type: ignore[union-attr]
    assert not list(root.iter(f"{SVG}b"))
    assert "AUX &quot;met&quot; &lt;b&gt;" in text
    edge = next(root.iter(f"{SVG}path"), None)
    assert any(p.get("data-from") == "in\"<&>'" for p in root.iter(f"{SVG}path")), edge


def test_svg_shows_state_colours_per_state_and_marks_inputs() -> None:
    nodes = tuple(Node(f"s{i}", s, s) for i, s in enumerate(STATE_COLOURS))
    nodes += (Node("odd", "ODD", "MYSTERY"), Node("aux", "AUX", "EXISTING", kind="input"))
    root = ET.fromstring(to_svg(Graph("all", nodes, ())))
    fills = {g.get("data-state"): g.find(f"{SVG}rect").get("fill") for g in svg_nodes(root)}  # type: ignore[union-attr]
    assert {s: fills[s] for s in STATE_COLOURS} == STATE_COLOURS
    assert fills["MYSTERY"] not in STATE_COLOURS.values()
    aux = next(g for g in svg_nodes(root) if g.get("data-id") == "aux")
    assert aux.find(f"{SVG}rect").get("stroke-dasharray")  # type: ignore[union-attr]


def test_every_job_step_state_has_its_own_colour() -> None:
    assert set(STATE_COLOURS) == {s.value for s in StepState} | {"EXISTING"}
    assert len(set(STATE_COLOURS.values())) == len(STATE_COLOURS)


@pytest.mark.parametrize("count", [0, 1])
def test_tiny_graphs_render(count: int) -> None:
    graph = Graph("tiny", tuple(Node(f"n{i}", "L1B", "READY") for i in range(count)), ())
    assert len(svg_nodes(ET.fromstring(to_svg(graph)))) == count
    assert layers(graph) == ([["n0"]] if count else [])
    assert to_text(graph).startswith("tiny\n") and to_dot(graph).rstrip().endswith("}")


def test_a_large_order_renders() -> None:
    """2,000 nodes and 4,000 edges, shaped like an order (timings are measured elsewhere)."""
    rnd = random.Random(7)
    per, depth = 400, 5
    ids = [[f"n{k}-{i}" for i in range(per)] for k in range(depth)]
    nodes = tuple(Node(i, "T", "PLANNED", group=f"g{int(i.split('-')[1]) // 10}") for lay in ids for i in lay)
    edges = {(ids[k - 1][i], ids[k][i]) for k in range(1, depth) for i in range(per)}
    while len(edges) < 4000:
        k, i = rnd.randrange(1, depth), rnd.randrange(per)
        src = ids[max(0, k - rnd.choice([1, 1, 2]))][min(per - 1, max(0, i + rnd.randint(-9, 9)))]
        edges.add((src, ids[k][i]))
    graph = Graph("large", nodes, tuple(sorted(edges)))
    assert len(svg_nodes(ET.fromstring(to_svg(graph)))) == 2000
