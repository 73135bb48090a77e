"""Which products a page reads first: a bounded walk in the page's order, or filter-then-sort.

A page in publication order (``$orderby=PublicationDate desc``) can be made two ways:
walk the ``created_at`` index and test each product until the page is full, or find
every match through other indexes and sort them. PostgreSQL picks by its estimate of
how many products match, and for the PRIP's filters that estimate is poor both ways:

* PostGIS estimates an area's matches from how much of each footprint's box lies
  inside it, so for tall orbit swaths and a small area it expects a hundred where a
  hundred thousand match (8 % of a catalogue) and sorts them all (0.6 s at a million);
* a product type, a sensing window and an attribute are estimated as independent, so
  it expects thousands where a dozen match and walks the whole index (2 s).

So the choice is made in the statement, not by the estimate:

* A filter with an area (``OData.CSC.Intersects`` as a conjunct of the whole filter)
  first counts the candidates of its other conditions, up to ``limit``. **Few** (a
  product type and a window, say): each is tested for the area, and sorted. Otherwise it
  **walks**: at most ``limit`` products in the page's order (within the filter's bounds on
  the ordering column, if any) are read, the whole filter is tested on them, and if
  ``skip + top + 1`` of them match, or the walk read every product, those are exactly the
  page's rows (they are the first matches in the page's order). Otherwise matches are
  sparse and the plain statement runs, cheap precisely because few products match.
  PostgreSQL decides once (InitPlans) and never starts a branch not taken; the walk's
  row count is only taken when it came up short.
* Any other filter never walks the index unbounded: the ordering column is sorted as an
  expression (:func:`unindexed`) unless the filter bounds it (``PublicationDate gt
  <cursor>``, a pull client's page, where the walk starts at the cursor).

Walkable orderings: none (Id order, the primary key) or one led by PublicationDate or
ModificationDate (index ``ix_product_created``), with every key a product column.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, case, false, func, not_, select, true, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.util import ClauseAdapter

from proseo.catalog.model_product import Product
from proseo.interfaces.odata_ast import And, Compare, CompareOp, Expr, Intersects, Property
from proseo.interfaces.odata_options import QueryOptions
from proseo.interfaces.prip_order import SortKey, sorted_by

#: Orderings whose first key an index serves, and the column it walks.
WALKABLE = {"PublicationDate": Product.created_at, "ModificationDate": Product.created_at}
_PRODUCT_KEYS = {
    "PublicationDate",
    "ModificationDate",
    "EvictionDate",
    "ContentDate/Start",
    "ContentDate/End",
}
_BOUNDS = {CompareOp.GT, CompareOp.GE, CompareOp.LT, CompareOp.LE}
#: Rows a walk may read: enough for pages where a few % of the products match.
WALK_PER_ROW, WALK_MIN, WALK_MAX = 25, 5_000, 50_000


def conjuncts(expr: Expr) -> list[Expr]:
    """The filter's top-level ``and`` terms, left to right."""
    if isinstance(expr, And):
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]


def indexed_lead(options: QueryOptions) -> bool:
    """The page's order starts with an indexed column: Id order, or the publication date."""
    return not options.orderby or options.orderby[0].property in WALKABLE


def walkable(options: QueryOptions) -> bool:
    """The page's order can be walked: an indexed lead and only the product's own columns."""
    return indexed_lead(options) and all(key.property in _PRODUCT_KEYS for key in options.orderby)


def bounds(options: QueryOptions) -> list[Expr]:
    """Top-level comparisons of the walked column with a value (where a walk may start)."""
    if options.filter is None or not options.orderby or not indexed_lead(options):
        return []
    names = {n for n, c in WALKABLE.items() if c is WALKABLE[options.orderby[0].property]}
    return [
        term
        for term in conjuncts(options.filter)
        if isinstance(term, Compare)
        and term.op in _BOUNDS
        and any(isinstance(side, Property) and side.name in names for side in (term.left, term.right))
    ]


def walks(options: QueryOptions) -> bool:
    """Whether the page is walked (a filter with an area, in a walkable order)."""
    if options.filter is None or not walkable(options):
        return False
    return any(isinstance(term, Intersects) for term in conjuncts(options.filter))


def index_walk_allowed(options: QueryOptions) -> bool:
    """Whether the plain statement may let the planner walk the ordering index."""
    return options.filter is None or not indexed_lead(options) or bool(bounds(options))


class unindexed(FunctionElement[Any]):
    """The value of a column, in a form no index serves (ordering by it sorts the matches)."""

    inherit_cache = True
    name = "unindexed"

    @property
    def type(self) -> Any:  # type: ignore[override]
        return self.clauses.clauses[0].type


@compiles(unindexed, "postgresql")
def _unindexed_postgresql(element: unindexed, compiler: Any, **kw: Any) -> str:
    column = element.clauses.clauses[0]
    if column.type.python_type is int:
        return f"({compiler.process(column, **kw)} + 0)"
    return f"({compiler.process(column, **kw)} + interval '0 seconds')"


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler: Any, **kw: Any) -> str:
    return f"(+{compiler.process(element.clauses.clauses[0], **kw)})"  # SQLite's own idiom


def unindexed_keys(keys: list[SortKey]) -> list[SortKey]:
    """``keys`` with the leading one sorted as an expression (never an index walk)."""
    first = keys[0]
    return [SortKey(unindexed(first.expr), first.descending, first.nullable), *keys[1:]]


def walk_limit(needed: int) -> int:
    return max(WALK_MIN, min(WALK_MAX, WALK_PER_ROW * needed))


def walked_ids(
    options: QueryOptions,
    keys: list[SortKey],
    matching: Select[Any],
    candidates: Select[Any],
    walk_from: list[ColumnElement[bool]],
    plain: Select[Any],
    *,
    limit: int | None = None,
) -> Subquery:
    """The page's product ids (``id``): from few candidates, walked, or from ``plain``.

    ``matching`` selects ``Product.id`` under the whole filter, ``candidates`` under all
    of it but the areas, both joined as they need; ``walk_from`` are the conditions a
    walk applies as it reads; ``plain`` is the page select, unwalked.
    """
    needed = options.skip + options.top + 1
    limit = limit or walk_limit(needed)
    first_keys = sorted_by(keys)
    # Few candidates (a product type and a window, say): test the areas on each of them.
    probe = select(func.count()).select_from(candidates.limit(limit).subquery("probe")).scalar_subquery()
    few = probe < limit
    # Its own LIMIT keeps PostgreSQL from merging it into the page (and the areas into a GiST scan).
    listed = (
        select(Product).where(Product.id.in_(candidates.limit(limit))).limit(limit).subquery("candidates")
    )
    page = matching.order_by(*first_keys).limit(options.top + 1).offset(options.skip)
    small = ClauseAdapter(listed).traverse(page).where(few).subquery("small")

    def walk(name: str) -> Any:
        return select(Product).where(*walk_from).order_by(*first_keys).limit(limit).subquery(name)

    labelled = [key.expr.label(f"k{i}") for i, key in enumerate(keys)]
    first = matching.add_columns(*labelled).order_by(*first_keys).limit(needed)
    hits = ClauseAdapter(walk("walk")).traverse(first).cte("walk_hits")
    hit_count = select(func.count()).select_from(hits).scalar_subquery()
    read_count = select(func.count()).select_from(walk("walk_read")).scalar_subquery()
    walked = case((hit_count >= needed, true()), else_=read_count < limit)
    fast = (
        select(hits.c.id)
        .where(case((few, false()), else_=walked))
        .order_by(*sorted_by(keys, [hits.c[f"k{i}"] for i in range(len(keys))]))
        .offset(options.skip)
        .subquery("fast")
    )
    slow = plain.where(case((few, false()), else_=not_(walked))).subquery("slow")
    return union_all(select(small.c.id), select(fast.c.id), select(slow.c.id)).subquery("page")
