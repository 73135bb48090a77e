"""``$orderby`` as sort keys, so one ordering can be applied to the product table or to a subquery.

Nulls sort last (OData puts them where the client does not look first) except on columns
that cannot be null: ``created_at DESC NULLS LAST`` would not match a backward walk of a
plain ascending index, and a walk is what makes a newest-first page cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement

from proseo.catalog.model_product import Product
from proseo.interfaces.odata_options import QueryOptions
from proseo.interfaces.prip_model import property_columns


@dataclass(frozen=True)
class SortKey:
    expr: Any  # a column expression of the product's statement
    descending: bool
    nullable: bool


def _nullable(expr: Any) -> bool:
    column = getattr(expr, "expression", expr)
    return bool(getattr(column, "nullable", True))


def sort_keys(options: QueryOptions) -> list[SortKey]:
    """The ``$orderby`` keys, then the product id for a stable order across pages."""
    columns = property_columns()
    keys = [
        SortKey(columns[key.property].expr, key.descending, _nullable(columns[key.property].expr))
        for key in options.orderby
    ]
    return [*keys, SortKey(Product.id, False, False)]


def sorted_by(keys: Sequence[SortKey], exprs: Sequence[Any] | None = None) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for ``keys``, over ``exprs`` in place of the keys' own expressions."""
    out = []
    for i, key in enumerate(keys):
        expr = key.expr if exprs is None else exprs[i]
        clause = expr.desc() if key.descending else expr.asc()
        out.append(clause.nulls_last() if key.nullable else clause)
    return out
