"""Footprints of products: set, read, and the Intersects predicate of the ESA interfaces.

``OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((...))')`` becomes ONE SQL
predicate over ``product.footprint`` (:func:`intersects`), compiled per backend so a
caller builds its whole SELECT (other conditions, ordering, paging) without knowing it:

* PostgreSQL: ``ST_Intersects(product.footprint, ST_GeomFromText(:wkt, 4326))`` on a
  PostGIS geometry column; PostGIS turns it into a GiST index scan (``&&``) plus the
  exact GEOS test, which is what a million products need.
* SQLite: ``product.id IN (SELECT id FROM product_footprint_rtree WHERE <boxes overlap>)
  AND proseo_intersects(product.footprint, :wkt) = 1``: the built-in R*Tree narrows to
  overlapping bounding boxes, then shapely (GEOS) decides exactly.

PostGIS estimates an area's matches from how much of each footprint's box lies inside
it, so for tall orbit swaths and a small area it expects a hundred matches where there
are a hundred thousand, and with $top and an ordering it sorts them all (0.6 s at a
million products). The PRIP's page statement therefore walks the newest products first
with this predicate over the walk's columns (no index) and falls back to the spatial
index only where matches are sparse (:mod:`proseo.interfaces.prip_walk`).

Both answer exactly (points on edges and shared edges intersect; a polygon's holes are
outside it) and identically, since both are GEOS on planar longitude/latitude
(:mod:`.footprint_column` says why ``geometry``, not ``geography``). A product without
a footprint never matches.

Not handled: polygons crossing the antimeridian (a ring from 170 to -170 degrees is read
as spanning the other 340 degrees; such footprints must be stored split, which a single
POLYGON cannot be, or shifted), polygons around a pole, and geodesic edges (an edge is a
straight line in longitude/latitude, not a great circle; for footprints sampled every few
degrees the difference is well under a pixel). Invalid polygons (self-crossing rings,
holes outside) are refused with GEOS's reason rather than answered arbitrarily.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, and_, column, func, select, table
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from proseo.catalog.footprint_column import RTREE, SQLITE_FUNCTION, SRID, validated
from proseo.catalog.geometry import Geometry
from proseo.catalog.model_product import Product

__all__ = ["footprint_of", "geo_footprint", "intersects", "set_footprint", "validated"]

_rtree = table(RTREE, *(column(c) for c in ("id", "min_lon", "max_lon", "min_lat", "max_lat")))


class _Intersects(FunctionElement[bool]):
    """Product's footprint intersects a WKT area; arguments: footprint, id, wkt, bbox."""

    type = Boolean()
    inherit_cache = True
    name = "footprint_intersects"


def intersects(geometry: Geometry) -> ColumnElement[bool]:
    """The predicate "this product's footprint intersects ``geometry``" for a WHERE clause.

    Raises :class:`~proseo.catalog.geometry.GeometryError` for an invalid polygon.
    """
    validated(geometry)
    min_lon, min_lat, max_lon, max_lat = geometry.bbox
    return _Intersects(Product.footprint, Product.id, geometry.wkt(), min_lon, min_lat, max_lon, max_lat)


@compiles(_Intersects, "postgresql")
def _postgresql(element: _Intersects, compiler: Any, **kw: Any) -> str:
    footprint, _id, wkt, *_ = element.clauses
    return str(compiler.process(func.ST_Intersects(footprint, func.ST_GeomFromText(wkt, SRID)), **kw))


@compiles(_Intersects, "sqlite")
def _sqlite(element: _Intersects, compiler: Any, **kw: Any) -> str:
    footprint, product_id, wkt, min_lon, min_lat, max_lon, max_lat = element.clauses
    boxes = select(_rtree.c.id).where(
        _rtree.c.max_lon >= min_lon,
        _rtree.c.min_lon <= max_lon,
        _rtree.c.max_lat >= min_lat,
        _rtree.c.min_lat <= max_lat,
    )
    exact = getattr(func, SQLITE_FUNCTION)(footprint, wkt) == 1
    return str(compiler.process(and_(product_id.in_(boxes), exact), **kw))


@compiles(_Intersects)
def _other(element: _Intersects, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"footprint queries need PostgreSQL or SQLite, not {compiler.dialect.name}")


def set_footprint(product: Product, geometry: Geometry | None) -> None:
    """Give ``product`` its footprint (``None`` removes it); refuses invalid polygons."""
    product.footprint = None if geometry is None else validated(geometry)


def footprint_of(product: Product) -> Geometry | None:
    """The stored footprint (the PRIP's ``Footprint`` is ``footprint_of(p).odata()``)."""
    return product.footprint


def geo_footprint(product: Product) -> dict[str, Any] | None:
    """The PRIP's ``GeoFootprint``: the footprint as a GeoJSON object, or ``None``."""
    return None if product.footprint is None else product.footprint.geojson()
