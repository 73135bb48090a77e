"""How a product's footprint is stored, per backend (the query side is :mod:`.footprints`).

PostgreSQL: a PostGIS ``geometry(Geometry, 4326)`` column with a GiST index. The value is
written as EWKT and read back as the hex EWKB PostgreSQL sends, decoded with shapely (GEOS,
the library PostGIS itself runs on). ``geometry`` rather than ``geography``: SQLite has no
geodesic engine, and a planar model on both backends gives the *same* answer on both
(GEOS on each side, edges touching exactly, points on edges), while the GiST index of a
geometry column is the cheapest PostGIS offers.

SQLite: the GeoJSON text with its ``bbox`` member (RFC 7946, section 5). Triggers keep an
R*Tree (SQLite's built-in spatial index) of those boxes, ``product_footprint_rtree``, in
step with ``product``; the exact test is ``proseo_intersects(footprint, wkt)``, an SQL
function this module registers on every SQLite connection (shapely, planar like above).

Any later migration that rebuilds ``product`` on SQLite (Alembic's batch "move and copy")
drops the triggers with the old table and must run :data:`SQLITE_DDL` again.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import shapely
from shapely.geometry import mapping
from sqlalchemy import Text
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

from proseo.catalog.geometry import Geometry, GeometryError

SRID = 4326
RTREE = "product_footprint_rtree"
SQLITE_FUNCTION = "proseo_intersects"

_BOX = "json_extract(new.footprint, '$.bbox[{}]')"
_INSERT_BOX = (
    f"INSERT INTO {RTREE} (id, min_lon, max_lon, min_lat, max_lat) "
    f"SELECT new.id, {_BOX.format(0)}, {_BOX.format(2)}, {_BOX.format(1)}, {_BOX.format(3)} "
    "WHERE new.footprint IS NOT NULL;"
)
SQLITE_DDL: tuple[str, ...] = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {RTREE} USING rtree(id, min_lon, max_lon, min_lat, max_lat)",
    f"CREATE TRIGGER IF NOT EXISTS product_footprint_ai AFTER INSERT ON product BEGIN {_INSERT_BOX} END",
    "CREATE TRIGGER IF NOT EXISTS product_footprint_au AFTER UPDATE OF footprint ON product BEGIN "
    f"DELETE FROM {RTREE} WHERE id = old.id; {_INSERT_BOX} END",
    "CREATE TRIGGER IF NOT EXISTS product_footprint_ad AFTER DELETE ON product BEGIN "
    f"DELETE FROM {RTREE} WHERE id = old.id; END",
)
SQLITE_DROP: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS product_footprint_ai",
    "DROP TRIGGER IF EXISTS product_footprint_au",
    "DROP TRIGGER IF EXISTS product_footprint_ad",
    f"DROP TABLE IF EXISTS {RTREE}",
)
# Tables the extension or the index bring along; not ours to compare or migrate.
FOREIGN_TABLES = frozenset({"spatial_ref_sys", RTREE, *(f"{RTREE}_{s}" for s in ("node", "parent", "rowid"))})
POSTGRESQL_ONLY_INDEXES = frozenset({"ix_product_footprint"})


def validated(geometry: Geometry) -> Geometry:
    """``geometry`` if GEOS finds it valid (no self-crossing ring, holes inside); else an error."""
    shape = to_shape(geometry)
    if not shape.is_valid:
        raise GeometryError(f"{geometry.kind} is not valid: {shapely.is_valid_reason(shape)}")
    return geometry


def to_shape(geometry: Geometry) -> Any:
    if geometry.kind == "POINT":
        return shapely.Point(geometry.rings[0][0])
    return shapely.Polygon(geometry.rings[0], geometry.rings[1:])


def from_shape(shape: Any) -> Geometry:
    """The :class:`Geometry` of a shapely point or polygon (coordinates read as arrays, not per point)."""
    if shape.geom_type == "Polygon":
        rings = (shapely.get_coordinates(ring).tolist() for ring in shapely.get_rings(shape))
        return Geometry("POLYGON", tuple(tuple((x, y) for x, y in ring) for ring in rings))
    return Geometry.from_geojson(dict(mapping(shape)))


class _PostgisGeometry(UserDefinedType[Any]):
    cache_ok = True

    def __init__(self, *_reflected: Any) -> None:  # reflection passes ("Geometry", 4326)
        super().__init__()

    def get_col_spec(self, **kw: Any) -> str:
        return f"geometry(Geometry,{SRID})"


# Reflection (Alembic's comparison) knows the column type instead of warning about it.
postgresql_base.ischema_names.setdefault("geometry", _PostgisGeometry)


class FootprintType(TypeDecorator[Geometry]):
    """A :class:`Geometry` in Python; PostGIS geometry or GeoJSON text in the database."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_PostgisGeometry())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Geometry | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return f"SRID={SRID};{value.wkt()}"
        return json.dumps({**value.geojson(), "bbox": list(value.bbox)})

    def process_result_value(self, value: Any, dialect: Dialect) -> Geometry | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return from_shape(shapely.from_wkb(value))
        return Geometry.from_geojson(json.loads(value))


@lru_cache(maxsize=64)
def _prepared(wkt: str) -> Any:
    shape = shapely.from_wkt(wkt)
    shapely.prepare(shape)
    return shape


def _sqlite_intersects(footprint: str | None, wkt: str | None) -> int | None:
    if footprint is None or wkt is None:
        return None
    return int(_prepared(wkt).intersects(shapely.from_geojson(footprint)))


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Install ``proseo_intersects(geojson, wkt)`` on a new SQLite connection."""
    dbapi_conn.create_function(SQLITE_FUNCTION, 2, _sqlite_intersects, deterministic=True)
