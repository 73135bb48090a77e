"""Layered (Sugiyama-style) layout of a DAG, left to right, in pure Python.

Operators must see an order's job-step graph on machines without Graphviz, so this module does
the classic four steps itself: longest-path ranking, dummy vertices on long edges, barycentre
crossing reduction, and coordinates by ordered least squares (pool-adjacent-violators). Every step
is linear in vertices + edges (+ dummies) per sweep and fully deterministic: ties fall back to the
order in which the caller lists the ids. It knows nothing about states or drawing styles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

Point = tuple[float, float]

ORDER_SWEEPS = 8
PLACE_SWEEPS = 6


def natural_key(text: str) -> tuple[tuple[int | str, ...], str]:
    """Sort ``step-2`` before ``step-10`` (digits compare as numbers)."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), text


def rank(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer per id, sources first; a source sits just left of its first consumer.

    Raises ``ValueError`` naming the ids of one cycle if the edges are not acyclic.
    """
    preds: dict[str, list[str]] = {i: [] for i in ids}
    succs: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        succs[a].append(b)
        preds[b].append(a)
    indeg = {i: len(preds[i]) for i in ids}
    queue = [i for i in ids if indeg[i] == 0]
    layer = dict.fromkeys(queue, 0)
    for node in queue:  # the list grows while iterated: Kahn's algorithm
        for nxt in succs[node]:
            layer[nxt] = max(layer.get(nxt, 0), layer[node] + 1)
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                queue.append(nxt)
    if len(queue) < len(ids):
        raise ValueError(f"the graph has a cycle: {' -> '.join(_cycle(ids, preds, set(queue)))}")
    for node in ids:  # pull external inputs next to their consumers: shorter edges, fewer dummies
        if not preds[node] and succs[node]:
            layer[node] = min(layer[s] for s in succs[node]) - 1
    return layer


def _cycle(ids: Sequence[str], preds: Mapping[str, list[str]], done: set[str]) -> list[str]:
    """One cycle among the unsorted nodes: each still has an unsorted predecessor, so walk back."""
    node = next(i for i in ids if i not in done)
    seen: dict[str, int] = {}
    path: list[str] = []
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(p for p in preds[node] if p not in done)
    loop = path[seen[node] :][::-1]
    order = {n: i for i, n in enumerate(ids)}
    start = min(range(len(loop)), key=lambda i: order[loop[i]])  # same text however it was found
    loop = loop[start:] + loop[:start]
    return [*loop, loop[0]]


@dataclass
class _Net:
    """The proper layered graph: every edge spans one layer; vertices >= ``real`` are dummies."""

    real: int
    up: list[list[int]]
    down: list[list[int]]
    layers: list[list[int]]
    chains: list[list[int]]


def _build(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> _Net:
    ranks = rank(ids, edges)
    index = {n: i for i, n in enumerate(ids)}
    depth = max(ranks.values(), default=-1) + 1
    layers: list[list[int]] = [[] for _ in range(depth)]
    for i, node in enumerate(ids):
        layers[ranks[node]].append(i)
    up: list[list[int]] = [[] for _ in ids]
    down: list[list[int]] = [[] for _ in ids]
    chains = []
    for a, b in dict.fromkeys(edges):
        chain = [index[a]]
        for lay in range(ranks[a] + 1, ranks[b]):
            up.append([])
            down.append([])
            layers[lay].append(len(up) - 1)
            chain.append(len(up) - 1)
        chain.append(index[b])
        for u, v in pairwise(chain):
            down[u].append(v)
            up[v].append(u)
        chains.append(chain)
    return _Net(len(ids), up, down, layers, chains)


def _crossings(top: list[int], adj: list[list[int]], pos: list[int], size: int) -> int:
    """Crossings between two adjacent layers: inversions counted with a Fenwick tree."""
    tree = [0] * (size + 1)
    count = seen = 0
    for u in top:
        for p in sorted(pos[v] for v in adj[u]):
            i = p + 1
            below = 0
            while i > 0:
                below += tree[i]
                i -= i & -i
            count += seen - below
            seen += 1
            i = p + 1
            while i <= size:
                tree[i] += 1
                i += i & -i
    return count


def _order(net: _Net) -> None:
    """Reorder each layer in place by barycentre sweeps, keeping the order with fewest crossings."""
    pos = [0] * len(net.up)

    def index(layer: list[int]) -> None:
        for i, v in enumerate(layer):
            pos[v] = i

    def total() -> int:
        lays = net.layers
        return sum(_crossings(lays[k], net.down, pos, len(lays[k + 1])) for k in range(len(lays) - 1))

    def sweep(k: int, adj: list[list[int]], back: list[list[int]], fixed: int) -> None:
        free, n = net.layers[k], len(net.layers[fixed])
        own = len(free)

        def bary(v: int) -> tuple[float, int]:
            # hubs (an AUX file read by every step) pull weakly, so slices stay together
            nbrs = adj[v]
            if not nbrs:
                return (pos[v] + 0.5) / own, pos[v]
            weights = [1.0 / len(back[u]) for u in nbrs]
            return (
                sum(w * pos[u] for w, u in zip(weights, nbrs, strict=True)) / sum(weights) + 0.5
            ) / n, pos[v]

        free.sort(key=bary)
        index(free)

    for layer in net.layers:
        index(layer)
    depth = len(net.layers)
    for k in range(1, depth):
        sweep(k, net.up, net.down, k - 1)
    best, best_count, stale = [list(x) for x in net.layers], total(), 0
    for _ in range(ORDER_SWEEPS):
        if best_count == 0 or stale >= 2:
            break
        for k in range(depth - 2, -1, -1):
            sweep(k, net.down, net.up, k + 1)
        for k in range(1, depth):
            sweep(k, net.up, net.down, k - 1)
        count = total()
        if count < best_count:
            best, best_count, stale = [list(x) for x in net.layers], count, 0
        else:
            stale += 1
    net.layers[:] = best


def _fit(desired: list[float], weights: list[float], offsets: list[float]) -> list[float]:
    """Positions closest (weighted L2) to ``desired`` that keep order and the minimum offsets."""
    blocks: list[list[float]] = []  # [weight, weighted sum, length]
    for d, w, o in zip(desired, weights, offsets, strict=True):
        blocks.append([w, w * (d - o), 1])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] > blocks[-1][1] / blocks[-1][0]:
            w2, s2, n2 = blocks.pop()
            blocks[-1][0] += w2
            blocks[-1][1] += s2
            blocks[-1][2] += n2
    out: list[float] = []
    for w, s, n in blocks:
        out.extend([s / w] * int(n))
    return [f + o for f, o in zip(out, offsets, strict=True)]


def _place(net: _Net, height: float, gap: float, dummy_gap: float) -> list[float]:
    """Centre y per vertex: each layer pulled towards its neighbours, alternately down and up."""
    size = [height if v < net.real else 0.0 for v in range(len(net.up))]
    y = [0.0] * len(net.up)
    offsets: list[list[float]] = []
    for layer in net.layers:
        off, acc = [], 0.0
        for i, v in enumerate(layer):
            if i:
                prev = layer[i - 1]
                both_real = prev < net.real and v < net.real
                acc += (size[prev] + size[v]) / 2 + (gap if both_real else dummy_gap)
            off.append(acc)
        offsets.append(off)
        for v, o in zip(layer, off, strict=True):
            y[v] = o - acc / 2

    def pull(k: int, adjs: Sequence[list[list[int]]]) -> None:
        layer, desired, weights = net.layers[k], [], []
        for v in layer:
            nbrs = [u for adj in adjs for u in adj[v]]
            desired.append(sum(y[u] for u in nbrs) / len(nbrs) if nbrs else y[v])
            weights.append(0.25 if not nbrs else 4.0 if v >= net.real else float(len(nbrs)))
        for v, value in zip(layer, _fit(desired, weights, offsets[k]), strict=True):
            y[v] = value

    depth = len(net.layers)
    for _ in range(PLACE_SWEEPS):
        for k in range(1, depth):
            pull(k, [net.up])
        for k in range(depth - 2, -1, -1):
            pull(k, [net.down])
    for k in range(depth):
        pull(k, [net.up, net.down])
    return y


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Placement:
    """Where everything goes; coordinates start at (0, 0) and end at (width, height)."""

    layers: tuple[tuple[str, ...], ...]
    boxes: dict[str, Box]
    routes: tuple[tuple[str, str, tuple[Point, ...]], ...]
    width: float
    height: float


def ordered_layers(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Ids per layer, sources first, each layer in crossing-reduced order."""
    net = _build(ids, edges)
    _order(net)
    return [[ids[v] for v in layer if v < net.real] for layer in net.layers]


def place(
    ids: Sequence[str],
    edges: Sequence[tuple[str, str]],
    widths: Mapping[str, float],
    height: float,
    *,
    layer_gap: float = 64.0,
    gap: float = 14.0,
    dummy_gap: float = 10.0,
) -> Placement:
    """Boxes (as wide as the widest in their layer, all ``height`` high) and a polyline route per edge."""
    net = _build(ids, edges)
    _order(net)
    y = _place(net, height, gap, dummy_gap)
    top = min((y[v] - (height if v < net.real else 0) / 2 for v in range(len(y))), default=0.0)
    y = [value - top for value in y]
    col_x, x = [], 0.0
    col_w = [max((widths[ids[v]] for v in layer if v < net.real), default=20.0) for layer in net.layers]
    for w in col_w:
        col_x.append(x)
        x += w + layer_gap
    layer_of = {v: k for k, layer in enumerate(net.layers) for v in layer}
    boxes: dict[str, Box] = {}
    for v in range(net.real):  # one width per column: tidy edges and aligned text
        k = layer_of[v]
        boxes[ids[v]] = Box(col_x[k], y[v] - height / 2, col_w[k], height)
    ports = _ports(net, y, height)
    routes = []
    for chain in net.chains:
        a, b = chain[0], chain[-1]
        pts: list[Point] = [(boxes[ids[a]].x + boxes[ids[a]].w, ports[(a, chain[1])])]
        for d in chain[1:-1]:
            k = layer_of[d]
            pts += [(col_x[k], y[d]), (col_x[k] + col_w[k], y[d])]
        pts.append((boxes[ids[b]].x, ports[(b, chain[-2])]))
        routes.append((ids[a], ids[b], tuple(pts)))
    bottom = max((y[v] + (height if v < net.real else 0) / 2 for v in range(len(y))), default=0.0)
    return Placement(
        tuple(tuple(ids[v] for v in layer if v < net.real) for layer in net.layers),
        boxes,
        tuple(routes),
        max(x - layer_gap, 0.0),
        bottom,
    )


def _ports(net: _Net, y: list[float], height: float) -> dict[tuple[int, int], float]:
    """Spread the edge ends along a box side, in the order of the far ends, so they do not cross."""
    ports: dict[tuple[int, int], float] = {}
    for v in range(net.real):
        for adj in (net.up[v], net.down[v]):
            ends = sorted(adj, key=lambda u: y[u])
            step = min(8.0, 0.7 * height / max(len(ends), 1))
            for i, u in enumerate(ends):
                ports[(v, u)] = y[v] + (i - (len(ends) - 1) / 2) * step
    return ports
