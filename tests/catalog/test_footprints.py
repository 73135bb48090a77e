"""Product footprints: stored from sidecars, read back, and the exact Intersects predicate.

Every case runs on SQLite (R*Tree + GEOS function) and PostgreSQL (PostGIS, GiST).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, inspect, select, text

from proseo.catalog.db import Base, Catalog
from proseo.catalog.footprints import footprint_of, geo_footprint, intersects, set_footprint
from proseo.catalog.geometry import Geometry, GeometryError
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.models import Product, ProductClass, ProductFile
from proseo.catalog.schema import compare_filters, downgrade, head_revision, upgrade
from proseo.devtools.generate import swath, write_inputs
from proseo.missions import load_mission

from tests_paths import MISSION_DIR

CLASSES = ["L0__ODB_1_", "L0__ODB_4_", "AUX_NISE__"]
WINDOW = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 1, 6, tzinfo=UTC))


def _square(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


SHAPES = {
    "A": Geometry.polygon(_square(0, 0, 10, 10)),
    "H": Geometry.polygon(_square(20, 0, 40, 20), _square(25, 5, 35, 15)),  # with a hole
    "P": Geometry.point(50, 50),
    "B": Geometry.polygon(_square(-60, -60, -20, -20)),
    "none": None,
}

CASES = [
    ("point inside", Geometry.point(5, 5), {"A"}),
    ("point on an edge", Geometry.point(10, 5), {"A"}),
    ("point on a corner", Geometry.point(0, 0), {"A"}),
    ("point in a hole", Geometry.point(30, 10), set()),
    ("point on a hole's edge", Geometry.point(25, 10), {"H"}),
    ("point between hole and outer ring", Geometry.point(22, 2), {"H"}),
    ("the stored point itself", Geometry.point(50, 50), {"P"}),
    ("polygon sharing an edge", Geometry.polygon(_square(10, 0, 15, 5)), {"A"}),
    ("polygon inside a hole", Geometry.polygon(_square(26, 6, 34, 14)), set()),
    ("polygon containing the footprint", Geometry.polygon(_square(-1, -1, 11, 11)), {"A"}),
    ("polygon inside the footprint", Geometry.polygon(_square(-50, -50, -40, -40)), {"B"}),
    ("polygon around a point", Geometry.polygon(_square(49, 49, 51, 51)), {"P"}),
    ("polygon over two", Geometry.polygon(_square(5, 5, 21, 6)), {"A", "H"}),
    ("boxes overlap, shapes do not", Geometry.polygon([(9, 13), (13, 13), (13, 9), (9, 13)]), set()),
    ("far away", Geometry.polygon(_square(100, 0, 110, 10)), set()),
    ("the whole world", Geometry.polygon(_square(-180, -90, 180, 90)), {"A", "H", "P", "B"}),
]


def _onboard(catalog: Catalog):
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
        return loaded_from_catalog(s, "S5P")


def _ingested(catalog: Catalog, tmp_path: Path) -> list[Path]:
    mission = _onboard(catalog)
    files = write_inputs(mission, *WINDOW, tmp_path / "in")
    report = Ingestor(catalog, mission).run(files)
    assert report.ok, [o for o in report.outcomes if o.status not in ("new", "unchanged")]
    return files


def _shaped(catalog: Catalog, tmp_path: Path) -> dict[str, int]:
    """Product ids by shape name: ingested products given the SHAPES as footprints."""
    _ingested(catalog, tmp_path)
    with catalog.session() as s:
        products = s.scalars(select(Product).order_by(Product.id)).all()
        for product in products:
            set_footprint(product, None)
        named = dict(zip(SHAPES, products, strict=False))
        for name, product in named.items():
            set_footprint(product, SHAPES[name])
        return {name: p.id for name, p in named.items()}


def test_sidecar_footprints_are_stored_and_read_back(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    files = _ingested(catalog, tmp_path)
    sidecars = {f.name: f.with_name(f.name + ".footprint.json") for f in files}
    with catalog.session() as s:
        rows = s.execute(select(Product, ProductFile.file_name).join(ProductFile)).all()
    with_footprint = {name for name, side in sidecars.items() if side.exists()}
    assert with_footprint and len(with_footprint) < len(files)  # orbit L0 only, not AUX or ENG
    for product, name in rows:
        if name in with_footprint:
            written = json.loads(sidecars[name].read_text())
            assert geo_footprint(product) == written
            assert footprint_of(product) == Geometry.from_geojson(written)
            assert product.sensing_start and swath(product.sensing_start, product.sensing_stop) == written
        else:
            assert footprint_of(product) is None and geo_footprint(product) is None


def test_footprint_odata_literal_round_trips(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    ids = _shaped(catalog, tmp_path)
    with catalog.session() as s:
        product = s.get(Product, ids["H"])
        assert product is not None
        assert footprint_of(product) == SHAPES["H"]
        assert footprint_of(product).odata().startswith("geography'SRID=4326;POLYGON((20 0,40 0,")  # type: ignore[union-attr]


@pytest.mark.parametrize(("case", "area", "expected"), CASES, ids=[c[0] for c in CASES])
def test_intersects(
    catalog: Catalog, data_dirs, tmp_path: Path, case: str, area: Geometry, expected: set[str]
) -> None:
    ids = _shaped(catalog, tmp_path)
    names = {pid: name for name, pid in ids.items()}
    with catalog.session() as s:
        found = set(s.scalars(select(Product.id).where(intersects(area))))
    assert {names[pid] for pid in found} == expected, case


def test_intersects_inside_a_larger_query(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    """Sidecar swaths, a class condition, ordering and paging: one SELECT."""
    files = _ingested(catalog, tmp_path)
    first = min(f for f in files if "L0__ODB_1_" in f.name)
    ring = json.loads(first.with_name(first.name + ".footprint.json").read_text())["coordinates"][0]
    (east_at_equator,) = [lon for lon, lat in ring[: len(ring) // 2] if lat == 0]
    centre = east_at_equator - 13  # the middle of that orbit's swath, 12 degrees from its neighbours'
    area = Geometry.polygon(_square(centre - 1, -1, centre + 1, 1))
    with catalog.session() as s:
        query = (
            select(Product.id, ProductFile.file_name)
            .join(ProductClass)
            .join(ProductFile)
            .where(
                intersects(area), ProductClass.product_type.in_(["L0__ODB_1_", "L0__ODB_4_", "AUX_NISE__"])
            )
            .order_by(ProductFile.file_name.desc())
        )
        every = s.execute(query).all()
        page = s.execute(query.limit(1).offset(1)).all()
    names = [name for _, name in every]
    assert first.name in names and len(names) == 2 and "L0__ODB_1_" in names[1]
    assert page == every[1:2]


def test_products_without_a_footprint_never_match(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    ids = _shaped(catalog, tmp_path)
    world = Geometry.polygon(_square(-180, -90, 180, 90))
    with catalog.session() as s:
        matching = set(s.scalars(select(Product.id).where(intersects(world))))
        without = set(s.scalars(select(Product.id).where(Product.footprint.is_(None))))
    assert ids["none"] in without and without and not (matching & without)
    assert matching == {ids[n] for n in ("A", "H", "P", "B")}


def test_changed_and_removed_footprints_follow_in_the_index(
    catalog: Catalog, data_dirs, tmp_path: Path
) -> None:
    ids = _shaped(catalog, tmp_path)
    near_a = Geometry.point(5, 5)
    with catalog.session() as s:
        product = s.get(Product, ids["A"])
        assert product is not None
        set_footprint(product, Geometry.polygon(_square(100, 10, 110, 20)))
    with catalog.session() as s:
        assert list(s.scalars(select(Product.id).where(intersects(near_a)))) == []
        assert list(s.scalars(select(Product.id).where(intersects(Geometry.point(105, 15))))) == [ids["A"]]
        s.execute(delete(ProductFile).where(ProductFile.product_id == ids["H"]))
        s.execute(delete(Product).where(Product.id == ids["H"]))
    with catalog.session() as s:
        assert list(s.scalars(select(Product.id).where(intersects(Geometry.point(22, 2))))) == []
        if catalog.backend == "sqlite":  # the R*Tree holds exactly the products with a footprint
            boxes = set(s.scalars(text("SELECT id FROM product_footprint_rtree")))
            assert boxes == set(s.scalars(select(Product.id).where(Product.footprint.is_not(None))))


def test_the_predicate_uses_the_spatial_index(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    _shaped(catalog, tmp_path)
    query = select(Product.id).where(intersects(Geometry.point(5, 5)))
    with catalog.engine.connect() as conn:
        if catalog.backend == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # a handful of rows: force the choice
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
            assert "ix_product_footprint" in plan
        else:
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
            assert "product_footprint_rtree VIRTUAL TABLE INDEX" in plan


def test_invalid_polygons_are_refused(catalog: Catalog) -> None:
    bowtie = Geometry.polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])
    with pytest.raises(GeometryError, match="Self-intersection"):
        intersects(bowtie)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}), "only Point and Polygon"),
        (json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}), "at least 4 positions"),
        (json.dumps({"type": "Point", "coordinates": [200, 0]}), "outside longitude"),
    ],
)
def test_a_bad_footprint_sidecar_is_refused_by_name(
    catalog: Catalog, data_dirs, tmp_path: Path, body: str, message: str
) -> None:
    mission = _onboard(catalog)
    files = write_inputs(mission, *WINDOW, tmp_path / "in")
    bad = next(f for f in files if f.with_name(f.name + ".footprint.json").exists())
    sidecar = bad.with_name(bad.name + ".footprint.json")
    sidecar.write_text(body)
    report = Ingestor(catalog, mission).run(files)
    (failed,) = [o for o in report.outcomes if o.status == "error"]
    assert failed.file == str(bad)
    assert str(sidecar) in (failed.message or "") and message in (failed.message or "")
    assert report.count("new") == len(files) - 1
    with catalog.session() as s:
        names = set(s.scalars(select(ProductFile.file_name)))
    assert bad.name not in names and len(names) == len(files) - 1
    stored = {p.name for p in (data_dirs["data"]).rglob("*") if p.is_file()}
    assert bad.name not in stored


def test_swaths_of_consecutive_orbits_move_west() -> None:
    t = datetime(2025, 3, 1, 12, tzinfo=UTC)
    orbit = timedelta(minutes=101)
    first, second = (Geometry.from_geojson(swath(t + k * orbit, t + (k + 1) * orbit)) for k in (0, 1))
    assert second.bbox[0] < first.bbox[0] and first.bbox[1] == -80 and first.bbox[3] == 80


def test_migration_0009_goes_down_and_up_again(catalog: Catalog) -> None:
    assert downgrade(catalog.engine, "0008") == (head_revision(), "0008")
    columns = {c["name"] for c in inspect(catalog.engine).get_columns("product")}
    assert "footprint" not in columns
    assert not inspect(catalog.engine).has_table("product_footprint_rtree")
    upgrade(catalog.engine)
    with catalog.engine.connect() as conn:
        opts = {"compare_type": True, **compare_filters(conn.dialect.name)}
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata) == []
    assert inspect(catalog.engine).has_table("product_footprint_rtree") == (catalog.backend == "sqlite")
