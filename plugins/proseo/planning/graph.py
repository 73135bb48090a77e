"""The job-step graph of an order, rendered as text, Graphviz DOT or standalone SVG.

Operators need to see how an order's job steps feed each other (``proseo order graph``, and a
web page colouring the same picture by state). Rendering is pure Python: the SVG comes from our
own layered layout (:mod:`proseo.planning.layout`), so no Graphviz binary is needed anywhere.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from proseo.planning import layout
from proseo.planning.layout import natural_key

STATES = ("EXISTING", "PLANNED", "WAITING_INPUT", "READY", "RUNNING", "COMPLETED", "FAILED", "SKIPPED")
STATE_COLOURS: dict[str, str] = {
    "EXISTING": "#d8cbbb",
    "PLANNED": "#e9edf2",
    "WAITING_INPUT": "#fde58a",
    "READY": "#b4dcff",
    "RUNNING": "#5eb1f7",
    "COMPLETED": "#93e3a0",
    "FAILED": "#ff9090",
    "SKIPPED": "#d9ccff",
}
UNKNOWN_COLOUR = "#ffffff"


@dataclass(frozen=True)
class Node:
    """One job step (``kind="step"``) or one external input such as L0, AUX or another order's product."""

    id: str
    label: str
    state: str
    group: str = ""
    detail: str = ""
    kind: str = "step"


@dataclass(frozen=True)
class Graph:
    """Nodes and (upstream id, downstream id) edges; checked on construction so renderers can trust it."""

    title: str
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        edges = sorted({(a, b) for a, b in self.edges}, key=lambda e: (natural_key(e[0]), natural_key(e[1])))
        object.__setattr__(self, "edges", tuple(edges))  # a set, kept sorted: output ignores input order
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                raise ValueError(f"duplicate node id {node.id!r}")
            seen.add(node.id)
        for a, b in self.edges:
            for end in (a, b):
                if end not in seen:
                    raise ValueError(f"edge {a!r} -> {b!r} names unknown node {end!r}")
        layout.rank(self.ids, self.edges)  # raises on a cycle, naming its ids

    @property
    def ids(self) -> list[str]:
        """Ids grouped by slice, then in natural order: the layout's tie-break, so output is stable."""
        nodes = sorted(self.nodes, key=lambda n: (natural_key(n.group), natural_key(n.id)))
        return [n.id for n in nodes]

    def upstream(self) -> dict[str, list[str]]:
        ups: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        for a, b in self.edges:
            ups[b].append(a)
        return {k: sorted(v, key=natural_key) for k, v in ups.items()}


def colour(state: str) -> str:
    return STATE_COLOURS.get(state, UNKNOWN_COLOUR)


def state_counts(graph: Graph) -> list[tuple[str, int]]:
    """Counts in pipeline order (known states first), so summaries read the same every time."""
    counts = Counter(n.state for n in graph.nodes)
    order = [s for s in STATES if s in counts] + sorted(s for s in counts if s not in STATES)
    return [(s, counts[s]) for s in order]


def _summary(graph: Graph) -> list[str]:
    steps = sum(n.kind == "step" for n in graph.nodes)
    counts = ((steps, "job step"), (len(graph.nodes) - steps, "input"), (len(graph.edges), "edge"))
    return [f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts]


def layers(graph: Graph) -> list[list[str]]:
    """Node ids per layer (sources first), each layer ordered to reduce edge crossings."""
    return layout.ordered_layers(graph.ids, graph.edges)


def to_text(graph: Graph) -> str:
    """A terminal listing: every node by layer with state, slice and upstream ids, then state counts."""
    by_id = {n.id: n for n in graph.nodes}
    ups = graph.upstream()
    out = [graph.title, ", ".join(_summary(graph))]
    id_w = max((len(n.id) for n in graph.nodes), default=0)
    state_w = max((len(n.state) for n in graph.nodes), default=0)
    label_w = max((len(n.label) for n in graph.nodes), default=0)
    group_w = max((len(n.group) for n in graph.nodes), default=0)
    for k, layer in enumerate(layers(graph), start=1):
        out += ["", f"layer {k}"]
        for node_id in layer:
            node = by_id[node_id]
            kind = "input" if node.kind == "input" else ""
            line = f"  {node.state:<{state_w}}  {node.id:<{id_w}}  {node.label:<{label_w}}  {kind:<5}"
            line += f"  {node.group:<{group_w}}"
            line += f"  <- {', '.join(ups[node_id])}" if ups[node_id] else ""
            out.append(line.rstrip())
    out += ["", "states: " + ", ".join(f"{s} {c}" for s, c in state_counts(graph))]
    return "\n".join(out) + "\n"


def _dot(text: str) -> str:
    """A DOT quoted string: quotes and backslashes escaped, line breaks as DOT's ``\\n``."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """Graphviz DOT, left to right, filled by state, one cluster per slice (for ``dot -Tsvg`` users)."""
    out = [
        f"digraph {_dot(graph.title)} {{",
        f"  graph [rankdir=LR, label={_dot(graph.title)}, labelloc=t, fontname=Helvetica];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        '  edge [color="#6b7785", arrowsize=0.7];',
    ]
    groups: dict[str, list[Node]] = {}
    for node in sorted(graph.nodes, key=lambda n: natural_key(n.id)):
        groups.setdefault(node.group, []).append(node)
    for i, group in enumerate(sorted(groups, key=natural_key)):
        indent = "    " if group else "  "
        if group:
            out += [
                f"  subgraph {_dot(f'cluster_{i}')} {{",
                f"    label={_dot(group)}; style=rounded; color=grey;",
            ]
        for n in groups[group]:
            text = "\n".join(t for t in (n.label, n.detail, n.state) if t)
            shape = ", shape=note, style=filled" if n.kind == "input" else ""
            out.append(
                f"{indent}{_dot(n.id)} [label={_dot(text)}, tooltip={_dot(n.id)}, "
                f"fillcolor={_dot(colour(n.state))}{shape}];"
            )
        if group:
            out.append("  }")
    out += [f"  {_dot(a)} -> {_dot(b)};" for a, b in graph.edges]
    return "\n".join([*out, "}"]) + "\n"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml(text: str) -> str:
    """Text safe inside an SVG element or a double-quoted attribute (XML 1.0 forbids control chars)."""
    text = _CONTROL.sub("\ufffd", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return text.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")


MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
SANS = "DejaVu Sans, Helvetica, Arial, sans-serif"
BOX_H, PAD, MARGIN, HEADER = 56.0, 10.0, 24.0, 84.0
EDGE = "#8a94a3"
ARROW = "proseo-arrow"  # prefixed: the web page may inline several pictures
# (text size, weight, colour) of the three lines in a box: label, detail, "STATE · slice"
LINES = ((12.0, "bold", "#1f2933"), (11.0, "normal", "#334155"), (10.0, "normal", "#52606d"))


def _shade(hex_colour: str, factor: float = 0.55) -> str:
    """A darker border of the same hue, so the state still reads where fills are pale."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{int(c * factor):02x}" for c in rgb)


def _fit_text(text: str, size: float, width: float) -> str:
    """Cut with an ellipsis to what fits in ``width`` (monospace: 0.6 em per character)."""
    room = max(int(width / (0.6 * size)), 1)
    return text if len(text) <= room else text[: room - 1] + "…"


def _lines(node: Node) -> list[tuple[str, tuple[float, str, str]]]:
    meta = f"{node.state} · {node.group}" if node.group else node.state
    texts = (node.label, node.detail, meta)
    return [(t, style) for t, style in zip(texts, LINES, strict=True) if t]


def _width(node: Node) -> float:
    need = max(len(t) * 0.6 * size for t, (size, _, _) in _lines(node))
    return min(max(need + 2 * PAD, 120.0), 280.0)


def _path(points: tuple[layout.Point, ...]) -> str:
    """Cubic curves between layers, straight runs through the columns a long edge passes."""
    parts = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for j, ((x0, y0), (x1, y1)) in enumerate(pairwise(points)):
        if j % 2:
            parts.append(f"L{x1:.1f},{y1:.1f}")
        else:
            dx = (x1 - x0) / 2
            parts.append(f"C{x0 + dx:.1f},{y0:.1f} {x1 - dx:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
    return " ".join(parts)


def _node_svg(node: Node, box: layout.Box, ups: list[str]) -> str:
    fill = colour(node.state)
    wide = 2.0 if node.state in ("RUNNING", "FAILED") else 1.0
    dash = ' stroke-dasharray="4 3"' if node.kind == "input" else ""
    upstream = "from " + ", ".join(ups) if ups else ""
    tip = "\n".join(
        t for t in (f"{node.id}: {node.label}", node.detail, node.state, node.group, upstream) if t
    )
    css = re.sub(r"[^A-Za-z0-9_-]", "_", node.state)
    rx = 12 if node.kind == "input" else 4
    out = [
        f'<g class="node state-{css}" id="node-{xml(node.id)}" data-id="{xml(node.id)}" '
        f'data-state="{xml(node.state)}" transform="translate({box.x:.1f},{box.y:.1f})">',
        f"<title>{xml(tip)}</title>",
        f'<rect width="{box.w:.0f}" height="{box.h:.0f}" rx="{rx}" fill="{fill}" '
        f'stroke="{_shade(fill)}" stroke-width="{wide}"{dash}/>',
    ]
    lines = _lines(node)
    base = (box.h - 15 * (len(lines) - 1)) / 2 + 4
    for i, (text, (size, weight, ink)) in enumerate(lines):
        out.append(
            f'<text x="{PAD:.0f}" y="{base + 15 * i:.1f}" font-size="{size:g}" font-weight="{weight}" '
            f'fill="{ink}">{xml(_fit_text(text, size, box.w - 2 * PAD))}</text>'
        )
    return "\n".join([*out, "</g>"])


def _legend(graph: Graph, width: float) -> tuple[list[str], float]:
    """Swatches with counts for the states present, and the two node kinds; wraps to ``width``."""
    items = [(f"{s} {c}", colour(s), 3, "") for s, c in state_counts(graph)]
    items += [("job step", "#ffffff", 3, ""), ("external input", "#ffffff", 7, ' stroke-dasharray="3 2"')]
    out, x, y = ['<g class="legend" font-size="11">'], MARGIN, 62.0
    for text, fill, rx, dash in items:
        step = 26 + len(text) * 0.6 * 11 + 12
        if x > MARGIN and x + step > width - MARGIN:
            x, y = MARGIN, y + 20
        out.append(
            f'<rect x="{x:.0f}" y="{y - 10:.0f}" width="20" height="13" rx="{rx}" fill="{fill}" '
            f'stroke="{_shade(fill) if fill != "#ffffff" else "#52606d"}"{dash}/>'
            f'<text x="{x + 26:.0f}" y="{y:.0f}" fill="#334155">{xml(text)}</text>'
        )
        x += step
    return [*out, "</g>"], y + 22


def to_svg(graph: Graph) -> str:
    """A standalone SVG 1.1 picture from our own layered layout: state colours, legend, tooltips."""
    by_id = {n.id: n for n in graph.nodes}
    ups = graph.upstream()
    ids = graph.ids
    place = layout.place(ids, graph.edges, {i: _width(by_id[i]) for i in ids}, BOX_H)
    subtitle = " · ".join(_summary(graph))
    width = max(place.width + 2 * MARGIN, len(graph.title) * 0.62 * 16 + 2 * MARGIN, 560.0)
    legend, top = _legend(graph, width)
    top = max(top, HEADER)
    height = top + place.height + MARGIN
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{SANS}">',
        f"<title>{xml(graph.title)}</title>",
        f'<defs><marker id="{ARROW}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        f'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE}"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{MARGIN:.0f}" y="30" font-size="16" font-weight="bold" fill="#1f2933">'
        f"{xml(graph.title)}</text>",
        f'<text x="{MARGIN:.0f}" y="46" font-size="11" fill="#52606d">{xml(subtitle)}</text>',
        *legend,
        f'<g class="edges" fill="none" stroke="{EDGE}" stroke-width="1.2" '
        f'transform="translate({MARGIN:.0f},{top:.0f})">',
    ]
    for a, b, pts in place.routes:
        ends = f'data-from="{xml(a)}" data-to="{xml(b)}"'
        tip = f"<title>{xml(a)} → {xml(b)}</title>"
        out.append(f'<path d="{_path(pts)}" marker-end="url(#{ARROW})" {ends}>{tip}</path>')
    out += ["</g>", f'<g class="nodes" font-family="{MONO}" transform="translate({MARGIN:.0f},{top:.0f})">']
    out += [_node_svg(by_id[i], place.boxes[i], ups[i]) for i in ids]
    return "\n".join([*out, "</g>", "</svg>"]) + "\n"
