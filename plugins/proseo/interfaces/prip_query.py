"""PRIP ``Products`` queries: one SQL statement per page, one more for ``$count``.

The page statement selects the product with everything its entity shows (class,
mission, orbit, spacecraft, configured processor, first file) through joins, so
rendering a page loads nothing more. It asks for one row beyond ``$top`` to know
whether a next page exists without counting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, contains_eager

from proseo.catalog.model_mission import ConfiguredProcessor, Mission, Orbit, ProductClass, Spacecraft
from proseo.catalog.model_product import Product, ProductFile, ProductStatus
from proseo.interfaces.odata_ast import Intersects
from proseo.interfaces.odata_options import QueryOptions
from proseo.interfaces.prip_filter_sql import FilterTranslator, Footprint
from proseo.interfaces.prip_model import PrimaryFile, primary_file_id
from proseo.interfaces.prip_order import sort_keys, sorted_by
from proseo.interfaces.prip_walk import (
    bounds,
    conjuncts,
    index_walk_allowed,
    unindexed_keys,
    walked_ids,
    walks,
)

#: A select of several columns (SQLAlchemy 2.1 types a select by its column tuple).
AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class PripRow:
    """One product with the values of the rows its entity draws on."""

    product: Product
    file: ProductFile | None
    mission: str
    spacecraft: str | None
    orbit: int | None
    processor_class: str | None
    processor_version: str | None


@dataclass(frozen=True)
class PripPage:
    rows: list[PripRow]
    more: bool  # another page follows (give @odata.nextLink)
    count: int | None  # all matches, when $count=true


def _joined(stmt: AnySelect) -> AnySelect:
    return (
        stmt.join(ProductClass, ProductClass.id == Product.product_class_id)
        .join(Mission, Mission.id == Product.mission_id)
        .outerjoin(Orbit, Orbit.id == Product.orbit_id)
        .outerjoin(Spacecraft, Spacecraft.id == Orbit.spacecraft_id)
        .outerjoin(ConfiguredProcessor, ConfiguredProcessor.id == Product.configured_processor_id)
        .outerjoin(PrimaryFile, PrimaryFile.id == primary_file_id)
    )


def _conditions(
    options: QueryOptions,
    scope: ColumnElement[bool] | None,
    footprint: Footprint | None,
    parameter_types: Mapping[str, str] | None,
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """The page's WHERE terms; those a walk may apply as it reads (the product's own status
    and the filter's bounds on the walked column: conjuncts, so the walk stays exact); and
    all but the filter's top-level areas (what a candidate must meet before its area test)."""
    listed = Product.status == ProductStatus.AVAILABLE.value
    where: list[ColumnElement[bool]] = [listed]
    walk_from: list[ColumnElement[bool]] = [listed]
    if scope is not None:
        where.append(scope)
    rest = list(where)
    if options.filter is not None:
        translator = FilterTranslator(
            options.filter_text, footprint=footprint, parameter_types=parameter_types
        )
        where.append(translator.condition(options.filter))
        walk_from += [translator.condition(term) for term in bounds(options)]
        rest += [
            translator.condition(term)
            for term in conjuncts(options.filter)
            if not isinstance(term, Intersects)
        ]
    return where, walk_from, rest


def page_statement(
    options: QueryOptions,
    *,
    scope: ColumnElement[bool] | None = None,
    footprint: Footprint | None = None,
    parameter_types: Mapping[str, str] | None = None,
    walk_rows: int | None = None,
) -> AnySelect:
    """The statement of one page (``$top`` + 1 rows from ``$skip``, in ``$orderby`` order).

    ``scope`` restricts the
    products a caller may see (mission, visibility), ``footprint`` turns a geometry into
    the intersection condition, ``parameter_types`` types product parameters
    (:func:`proseo.interfaces.prip_model.parameter_types`).

    The page's Ids are chosen in a subquery, and only those rows are then joined with
    what their entities show: a filter matching 100,000 products (a footprint over a
    busy area) looks up files, orbits and processors for 101 only. PostgreSQL drops the
    subquery's outer joins that neither filter nor order use. Which products are read
    first, a bounded walk in the page's order or every match, is :mod:`.prip_walk`'s
    choice (``walk_rows`` bounds a walk; by default it grows with the page).
    """
    keys = sort_keys(options)
    order = sorted_by(keys)
    where, walk_from, rest = _conditions(options, scope, footprint, parameter_types)
    walked = walks(options)
    plain_keys = keys if index_walk_allowed(options) and not walked else unindexed_keys(keys)
    plain = (
        _joined(select(Product.id))
        .where(*where)
        .order_by(*sorted_by(plain_keys))
        .limit(options.top + 1)
        .offset(options.skip)
    )
    if walked:
        matching = _joined(select(Product.id)).where(*where)
        candidates = _joined(select(Product.id)).where(*rest)
        page = walked_ids(options, keys, matching, candidates, walk_from, plain, limit=walk_rows)
    else:
        page = plain.subquery("page")
    stmt: AnySelect = select(
        Product,
        PrimaryFile,
        Mission.code,
        Spacecraft.code,
        Orbit.number,
        ConfiguredProcessor.processor_class,
        ConfiguredProcessor.version,
    )
    return (
        _joined(stmt.join(page, page.c.id == Product.id))
        .options(contains_eager(Product.product_class))
        .order_by(*order)
    )


def count_statement(
    options: QueryOptions,
    *,
    scope: ColumnElement[bool] | None = None,
    footprint: Footprint | None = None,
    parameter_types: Mapping[str, str] | None = None,
) -> Select[Any]:
    """How many products match the filter (``@odata.count``), whatever ``$top`` and ``$skip``."""
    stmt: AnySelect = select(func.count(Product.id)).select_from(Product)
    return _joined(stmt).where(*_conditions(options, scope, footprint, parameter_types)[0])


def match_statement(
    options: QueryOptions,
    *columns: ColumnElement[Any] | InstrumentedAttribute[Any],
    scope: ColumnElement[bool] | None = None,
    footprint: Footprint | None = None,
    parameter_types: Mapping[str, str] | None = None,
) -> AnySelect:
    """``columns`` (default: the Id) of every product the filter matches, unordered, unpaged.

    The same joins and conditions as a page, so a subscription's ``FilterParam`` matches
    exactly what ``GET Products?$filter=`` with that text lists; the subscription matcher
    makes it the SELECT of one ``INSERT ... SELECT``.
    """
    stmt: AnySelect = select(*(columns or (Product.id,)))
    where, _, _ = _conditions(options, scope, footprint, parameter_types)
    return _joined(stmt.select_from(Product)).where(*where)


def query_page(
    session: Session,
    options: QueryOptions,
    *,
    scope: ColumnElement[bool] | None = None,
    footprint: Footprint | None = None,
    parameter_types: Mapping[str, str] | None = None,
    walk_rows: int | None = None,
) -> PripPage:
    """Run the page statement (and the count one when ``$count=true``)."""
    kw: dict[str, Any] = {
        "scope": scope,
        "footprint": footprint,
        "parameter_types": parameter_types,
    }
    stmt = page_statement(options, walk_rows=walk_rows, **kw)
    count = session.scalar(count_statement(options, **kw)) if options.count else None
    rows = [
        PripRow(product, file, mission, spacecraft, orbit, pclass, version)
        for product, file, mission, spacecraft, orbit, pclass, version in session.execute(stmt)
    ]
    return PripPage(rows[: options.top], len(rows) > options.top, count)
