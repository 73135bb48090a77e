"""Product lineage: what a product was made from, or what was made from it.

Registration records one ``product_input`` row per (product, input product) pair
(:mod:`proseo.catalog.register`). :func:`lineage` walks those edges breadth-first,
*backwards* (inputs, their inputs, ... down to the ingested products) or *forwards*
(products made from it, products made from those, ...), level by level:

- **One statement per level.** Each level is a single SELECT over ``product_input``
  joined to the products found (class, mission, configured processor, file names),
  restricted to the current frontier with an ``IN`` list, so the number of
  statements grows with the depth, never with the number of products. (A frontier
  larger than :data:`CHUNK` products is split into chunks of that size, to stay
  under the databases' bind-parameter limits.) Finding the root is one more
  statement, and a walk stopped by ``depth`` costs one last probe for whether it
  was cut short (:attr:`Lineage.truncated`).
- **Bounded and cycle-safe.** ``depth`` limits the number of levels (``None``: to
  the end); a product is expanded once however many paths reach it, so a cyclic or
  diamond-shaped catalogue terminates and each product appears once, at its
  shortest distance from the root.

Components (the bands of an L1B product set) are made by their enclosing product's
run, so the decision is:

- backwards, a component's inputs are its own edges *plus its enclosing product's
  inputs* (registration already gives components the same inputs; the fallback
  covers components registered otherwise, e.g. ingested product sets); such an edge
  carries ``via`` = the enclosing product's id;
- forwards, what was made from a component includes what was made from its
  enclosing product (a consumer of the whole set read the band too), and what was
  made from an enclosing product includes what was made from any of its components;
  again ``via`` names the product the edge really starts from.

The enclosing product itself is not added as a node: it is a sibling made by the
same run, not an input; nodes carry ``enclosing_id`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from sqlalchemy import Select, null, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.util import AliasedClass

from proseo.catalog.mission_sync import get_mission
from proseo.catalog.model_mission import ConfiguredProcessor, Mission, ProductClass
from proseo.catalog.model_product import Product, ProductFile, ProductInput, ProductStatus
from proseo.errors import CatalogError, NotFoundError, ProseoError
from proseo.missions.types import format_utc
from proseo.planning.graph import Graph, Node

#: Most products of a frontier bound into one statement (bind-parameter limits).
CHUNK = 5_000

_MAX_ID = 2**63 - 1  # larger numbers cannot be ids (and PostgreSQL would refuse the comparison)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --- finding a product -----------------------------------------------------------------


def find_product(session: Session, ref: str, *, mission: str | None = None) -> Product:
    """A product by id (``123``), UUID or file name (a path is reduced to its file name).

    ``mission`` checks an id or UUID against the mission and disambiguates a file
    name registered in several missions. Raises :class:`NotFoundError` naming what
    was looked for, and :class:`CatalogError` when a file name is ambiguous.
    """
    text = ref.strip()
    if not text:
        raise NotFoundError("no product given: name one by id, UUID or file name")
    mission_id = get_mission(session, mission).id if mission else None
    where = f" in mission {mission}" if mission else ""
    hint = "give a product id, a UUID or a file name; 'proseo product query' lists products"
    if text.isascii() and text.isdigit():
        number = int(text)
        product = session.get(Product, number) if number <= _MAX_ID else None
        what = f"no product with id {number}"
    elif _UUID.match(text):
        product = session.scalar(select(Product).where(Product.uuid == text.lower()))
        what = f"no product with UUID {text.lower()}"
    else:
        name = PureWindowsPath(PurePosixPath(text).name).name or text
        stmt = select(Product).where(
            Product.id.in_(select(ProductFile.product_id).where(ProductFile.file_name == name))
        )
        if mission_id is not None:
            stmt = stmt.where(Product.mission_id == mission_id)
        found = session.scalars(stmt.order_by(Product.id)).unique().all()
        if len(found) > 1:
            ids = ", ".join(str(p.id) for p in found)
            raise CatalogError(
                f"the file name {name!r} belongs to {len(found)} products ({ids}); "
                "name the mission (--mission) or use the product id"
            )
        product = found[0] if found else None
        what = f"no product has a file named {name!r}"
    if product is None:
        raise NotFoundError(f"{what}{where}: {hint}")
    if mission_id is not None and product.mission_id != mission_id:
        raise NotFoundError(f"product {product.id} is not a product of mission {mission}: {hint}")
    return product


# --- the result --------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageNode:
    """One product of a lineage, with what an operator needs to recognise it."""

    id: int
    uuid: str
    mission: str
    product_type: str
    level: str | None  # the product class's processing level (L1, L2 ...), if it has one
    start: datetime
    stop: datetime
    generation_time: datetime
    file_class: str
    mode: str | None
    status: str
    job_step_id: int | None
    processor: str | None  # configured processor identifier, None for ingested products
    enclosing_id: int | None
    files: tuple[str, ...]
    distance: int  # levels from the root (0 = the root)

    @property
    def produced(self) -> bool:
        """Made by a processor run here (an ingested product has neither a step nor a processor)."""
        return self.job_step_id is not None or self.processor is not None

    @property
    def validity(self) -> str:
        return validity_text(self.start, self.stop)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uuid": self.uuid,
            "mission": self.mission,
            "product_type": self.product_type,
            "level": self.level,
            "start": format_utc(self.start),
            "stop": format_utc(self.stop),
            "generation_time": format_utc(self.generation_time),
            "file_class": self.file_class,
            "mode": self.mode,
            "status": self.status,
            "origin": "produced" if self.produced else "ingested",
            "job_step_id": self.job_step_id,
            "processor": self.processor,
            "enclosing_id": self.enclosing_id,
            "files": list(self.files),
            "distance": self.distance,
        }


@dataclass(frozen=True, order=True)
class LineageEdge:
    """``product`` was made from ``input`` (data-flow direction, whichever way the walk went).

    ``via`` is set when the edge was found through a component/enclosing link: the id of
    the product the recorded ``product_input`` row really names.
    """

    product: int
    input: int
    via: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "product": self.product, "via": self.via}


@dataclass
class Lineage:
    """The products reached from ``root`` and the edges between them."""

    root: int
    forward: bool
    depth: int | None
    nodes: dict[int, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)
    truncated: bool = False  # the depth bound stopped the walk before its end

    @property
    def direction(self) -> str:
        return "forward" if self.forward else "backward"

    @property
    def root_node(self) -> LineageNode:
        return self.nodes[self.root]

    @property
    def title(self) -> str:
        r = self.root_node
        what = "products made from" if self.forward else "lineage of"
        bound = "" if self.depth is None else f", depth {self.depth}"
        return f"{r.mission} {what} {r.product_type} {r.id} ({self.direction}{bound})"

    def children(self, node_id: int) -> list[tuple[LineageNode, LineageEdge]]:
        """The next products from ``node_id`` in the walk's direction, by type, validity, id."""
        return self._child_map().get(node_id, [])

    def _child_map(self) -> dict[int, list[tuple[LineageNode, LineageEdge]]]:
        out: dict[int, list[tuple[LineageNode, LineageEdge]]] = {}
        for e in self.edges:
            parent, child = (e.input, e.product) if self.forward else (e.product, e.input)
            out.setdefault(parent, []).append((self.nodes[child], e))
        for items in out.values():
            items.sort(key=lambda ne: (ne[0].product_type, ne[0].start, ne[0].id))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "truncated": self.truncated,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [e.to_dict() for e in self.edges],
        }

    def to_graph(self) -> Graph:
        """The lineage as a :class:`Graph` for ``to_text``/``to_dot``/``to_svg``.

        Nodes are labelled by product type with validity / processor as detail; ingested
        products are inputs in state EXISTING, produced ones steps in state COMPLETED
        (PLANNED while a planned product has no file yet); groups are the classes'
        processing levels ("input" for ingested classes without one). Edges point along
        the data flow; an edge that would close a cycle (a corrupt catalogue) is left out.
        """
        nodes = []
        for n in self.nodes.values():
            if n.status == ProductStatus.PLANNED.value:
                state = "PLANNED"
            else:
                state = "COMPLETED" if n.produced else "EXISTING"
            detail = f"{n.validity} / {n.processor}" if n.processor else n.validity
            group = n.level or ("input" if not n.produced else n.product_type)
            nodes.append(
                Node(_gid(n.id), n.product_type, state, group, detail, "step" if n.produced else "input")
            )
        pairs = [(_gid(e.input), _gid(e.product)) for e in self.edges]
        return Graph(self.title, tuple(nodes), tuple(_acyclic(pairs)))

    def to_text(self) -> str:
        """A readable tree from the root; a product reached again is listed without its subtree."""
        r = self.root_node
        arrow = "made from it" if self.forward else "inputs"
        out = [
            f"{self.title}: {len(self.nodes)} product{'s' if len(self.nodes) != 1 else ''}, "
            f"{len(self.edges)} edge{'s' if len(self.edges) != 1 else ''} (children: {arrow})",
            _line(r, None),
        ]
        shown = {r.id}
        kids = self._child_map()
        # Iterative depth-first walk: (node, edge, prefix of its line, is last sibling).
        stack: list[tuple[LineageNode, LineageEdge, str, bool]] = [
            (child, edge, "", last) for child, edge, last in _reversed_marked(kids.get(r.id, []))
        ]
        while stack:
            node, edge, prefix, last = stack.pop()
            again = node.id in shown
            out.append(
                f"{prefix}{'└── ' if last else '├── '}{_line(node, edge)}{'  (see above)' if again else ''}"
            )
            if again:
                continue
            shown.add(node.id)
            inner = prefix + ("    " if last else "│   ")
            stack += [(c, e, inner, lst) for c, e, lst in _reversed_marked(kids.get(node.id, []))]
        if self.truncated:
            out.append(f"... more beyond depth {self.depth} (raise --depth, or leave it out for all)")
        return "\n".join(out) + "\n"


def validity_text(start: datetime, stop: datetime) -> str:
    """``2025-03-01 08:00–19:00`` (seconds only when present; both dates when they differ)."""

    def clock(t: datetime) -> str:
        return f"{t:%H:%M:%S}" if t.second or t.microsecond else f"{t:%H:%M}"

    if start.date() == stop.date():
        return f"{start:%Y-%m-%d} {clock(start)}–{clock(stop)}"
    return f"{start:%Y-%m-%d} {clock(start)}–{stop:%Y-%m-%d} {clock(stop)}"


def _line(node: LineageNode, edge: LineageEdge | None) -> str:
    origin = node.processor or "ingested"
    status = "" if node.status == ProductStatus.AVAILABLE.value else f"  [{node.status}]"
    via = f"  (via {edge.via})" if edge is not None and edge.via is not None else ""
    return f"{node.product_type} {node.id}  {node.validity}  {origin}{status}{via}"


def _reversed_marked(
    items: Sequence[tuple[LineageNode, LineageEdge]],
) -> Iterator[tuple[LineageNode, LineageEdge, bool]]:
    """Siblings in reverse (for a stack) with a flag on the one listed last."""
    for i in range(len(items) - 1, -1, -1):
        yield items[i][0], items[i][1], i == len(items) - 1


def _gid(product_id: int) -> str:
    return f"product-{product_id}"


def _acyclic(edges: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The edges without those closing a cycle (depth-first back edges), deterministically."""
    succ: dict[str, list[str]] = {}
    for a, b in sorted(set(edges)):
        succ.setdefault(a, []).append(b)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    back: set[tuple[str, str]] = set()
    for start in sorted(succ):
        if start in state:
            continue
        state[start] = 1
        path: list[tuple[str, Iterator[str]]] = [(start, iter(succ.get(start, ())))]
        while path:
            node, it = path[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                path.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                path.append((nxt, iter(succ.get(nxt, ()))))
    return [e for e in edges if e not in back]


# --- the walk -----------------------------------------------------------------------------


def _node_select(
    p: AliasedClass[Product] | type[Product], leading: Sequence[Any], joins: Sequence[tuple[Any, Any]]
) -> Select[Any]:
    """``leading`` columns plus everything a node shows of product ``p``, one row per file.

    The FROM clause starts at ``joins[0][0]`` and follows the remaining (target, onclause)
    joins, which must bring in ``p``; class, mission, processor and files join onto ``p``.
    """
    (first, _), *rest = joins
    stmt = select(
        *leading,
        p.id,
        p.uuid,
        Mission.code,
        ProductClass.product_type,
        ProductClass.level,
        p.sensing_start,
        p.sensing_stop,
        p.generation_time,
        p.file_class,
        p.mode,
        p.status,
        p.job_step_id,
        ConfiguredProcessor.identifier,
        p.enclosing_product_id,
        ProductFile.file_name,
    ).select_from(first)
    for target, onclause in rest:
        stmt = stmt.join(target, onclause)
    return (
        stmt.join(ProductClass, ProductClass.id == p.product_class_id)
        .join(Mission, Mission.id == p.mission_id)
        .outerjoin(ConfiguredProcessor, ConfiguredProcessor.id == p.configured_processor_id)
        .outerjoin(ProductFile, ProductFile.product_id == p.id)
    )


def _collect(row: Sequence[Any], distance: int, into: dict[int, dict[str, Any]]) -> None:
    """Fold one (product columns..., file name) row into node fields, one entry per product."""
    (pid, uuid, mission, ptype, level, start, stop, gen, fclass, mode, status, step, proc, encl, fname) = row
    entry = into.get(pid)
    if entry is None:
        entry = into[pid] = {
            "id": pid,
            "uuid": uuid,
            "mission": mission,
            "product_type": ptype,
            "level": level,
            "start": start,
            "stop": stop,
            "generation_time": gen,
            "file_class": fclass,
            "mode": mode,
            "status": status,
            "job_step_id": step,
            "processor": proc,
            "enclosing_id": encl,
            "files": [],
            "distance": distance,
        }
    if fname is not None and fname not in entry["files"]:
        entry["files"].append(fname)


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), CHUNK):
        yield ordered[i : i + CHUNK]


def _level_statements(frontier: set[int], enclosing: dict[int, int], forward: bool) -> Iterator[Select[Any]]:
    """The statement of one level (one per :data:`CHUNK` frontier products).

    Rows are (edge product, edge input, enclosing id of the edge input (forward only),
    node columns of the product on the far side). Backwards: edges *into* the frontier
    products or their enclosing products. Forwards: edges *out of* the frontier products,
    their enclosing products, or their components.
    """
    p = aliased(Product)
    for chunk in _chunks(frontier):
        with_sets = sorted(set(chunk) | {enclosing[i] for i in chunk if i in enclosing})
        if forward:
            src = aliased(Product)
            yield (
                _node_select(
                    p,
                    (ProductInput.product_id, ProductInput.input_product_id, src.enclosing_product_id),
                    (
                        (ProductInput, None),
                        (src, src.id == ProductInput.input_product_id),
                        (p, p.id == ProductInput.product_id),
                    ),
                )
                .where(or_(ProductInput.input_product_id.in_(with_sets), src.enclosing_product_id.in_(chunk)))
                .order_by(p.id, ProductFile.id)
            )
        else:
            yield (
                _node_select(
                    p,
                    (ProductInput.product_id, ProductInput.input_product_id, null()),
                    ((ProductInput, None), (p, p.id == ProductInput.input_product_id)),
                )
                .where(ProductInput.product_id.in_(with_sets))
                .order_by(p.id, ProductFile.id)
            )


def _more_beyond(session: Session, frontier: set[int], enclosing: dict[int, int], forward: bool) -> bool:
    """Whether any edge leaves the last level (one probe, after a depth-bounded walk)."""
    for chunk in _chunks(frontier):
        with_sets = sorted(set(chunk) | {enclosing[i] for i in chunk if i in enclosing})
        if forward:
            src = aliased(Product)
            stmt = (
                select(ProductInput.product_id)
                .join(src, src.id == ProductInput.input_product_id)
                .where(or_(ProductInput.input_product_id.in_(with_sets), src.enclosing_product_id.in_(chunk)))
            )
        else:
            stmt = select(ProductInput.input_product_id).where(ProductInput.product_id.in_(with_sets))
        if session.execute(stmt.limit(1)).first() is not None:
            return True
    return False


def lineage(session: Session, product_id: int, *, depth: int | None = None, forward: bool = False) -> Lineage:
    """Walk ``product_input`` edges from a product, breadth-first, one statement per level.

    Backwards (default): what the product was made from, then what those were made
    from, and so on. ``forward=True``: the products made from it, and onwards.
    ``depth`` bounds the number of levels (0: the product alone; ``None``: all).
    Components follow their enclosing product (see the module documentation).
    """
    if depth is not None and depth < 0:
        raise ProseoError(f"lineage depth must be 0 or more, got {depth}")
    fields: dict[int, dict[str, Any]] = {}
    p = aliased(Product)
    root = _node_select(p, (), ((p, None),)).where(p.id == product_id).order_by(ProductFile.id)
    for row in session.execute(root):
        _collect(row, 0, fields)
    if product_id not in fields:
        raise NotFoundError(f"product {product_id} does not exist")
    edges: dict[tuple[int, int], int | None] = {}  # (product, input) -> via

    def add_edge(product: int, input_: int, via: int | None) -> bool:
        if product == input_:
            return False
        if (product, input_) not in edges or via is None:
            edges[(product, input_)] = via  # a direct edge wins over one through a component link
        return True

    frontier = {product_id}
    enclosing: dict[int, int] = {}
    distance = 0
    while frontier and (depth is None or distance < depth):
        distance += 1
        enclosing = {i: fields[i]["enclosing_id"] for i in frontier if fields[i]["enclosing_id"] is not None}
        components: dict[int, list[int]] = {}
        for comp, encl in enclosing.items():
            components.setdefault(encl, []).append(comp)
        found: dict[int, dict[str, Any]] = {}
        for stmt in _level_statements(frontier, enclosing, forward):
            for row in session.execute(stmt):
                product, input_, input_enclosing, node = row[0], row[1], row[2], row[3:]
                linked = False
                if forward:
                    if input_ in frontier:
                        linked |= add_edge(product, input_, None)
                    elif input_enclosing in frontier:  # made from a component of a frontier product
                        linked |= add_edge(product, input_enclosing, input_)
                    for comp in components.get(input_, ()):  # made from the set a component is in
                        linked |= add_edge(product, comp, input_)
                else:
                    if product in frontier:
                        linked |= add_edge(product, input_, None)
                    for comp in components.get(product, ()):  # an input of the enclosing product
                        linked |= add_edge(comp, input_, product)
                if linked:
                    _collect(node, distance, found)
        frontier = set(found) - set(fields)
        for pid in frontier:
            fields[pid] = found[pid]
    result = Lineage(root=product_id, forward=forward, depth=depth)
    if frontier and depth is not None:
        enclosing = {i: fields[i]["enclosing_id"] for i in frontier if fields[i]["enclosing_id"] is not None}
        result.truncated = _more_beyond(session, frontier, enclosing, forward)
    ordered = sorted(fields.values(), key=lambda f: (f["distance"], f["product_type"], f["start"], f["id"]))
    result.nodes = {f["id"]: LineageNode(**{**f, "files": tuple(f["files"])}) for f in ordered}
    result.edges = sorted(LineageEdge(prod, inp, via) for (prod, inp), via in edges.items())
    return result
