"""The PRIP driven by a third-party OData client: EODAG (ODataV4Search), over real HTTP.

The provider configuration users would load (docs/eodag-proseo.yml) points EODAG at a
proseo app served by uvicorn; EODAG gets its token from the PRIP's OAuth2 route with
the password Airflow's SimpleAuthManager generated, searches by product type, sensing
window and footprint, pages to the end, and downloads with its checksum.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Mission, ProductClass
from proseo.catalog.model_product import Product, ProductFile

from tests_paths import REPO

PROVIDER = REPO / "docs" / "eodag-proseo.yml"


@pytest.fixture
def dag(
    prip_url: str, airflow_credentials: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """EODAG with only the proseo provider, configured as a user would."""
    monkeypatch.setenv("EODAG_CFG_DIR", str(tmp_path / "eodag"))
    monkeypatch.setenv("EODAG_PROVIDERS_WHITELIST", '["proseo"]')
    monkeypatch.setenv("EODAG_EXT_COLLECTIONS_CFG_URI", str(tmp_path / "no-external-collections.json"))
    (tmp_path / "no-external-collections.json").write_text("{}")
    from eodag import EODataAccessGateway

    gateway = EODataAccessGateway()
    gateway.update_providers_config(PROVIDER.read_text().replace("PRIP_ROOT", prip_url))
    user, password = airflow_credentials
    gateway.update_providers_config(
        dict_conf={"proseo": {"auth": {"credentials": {"username": user, "password": password}}}}
    )
    gateway.set_preferred_provider("proseo")
    return gateway


def _products(catalog: Catalog, product_type: str) -> dict[str, tuple[datetime, datetime, str]]:
    with catalog.session() as s:
        rows = s.execute(
            select(Product.uuid, Product.sensing_start, Product.sensing_stop, ProductFile.md5)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .join(Mission, Mission.id == Product.mission_id)
            .join(ProductFile, ProductFile.product_id == Product.id)
            .where(Mission.code == "S5P", ProductClass.product_type == product_type)
        ).all()
    return {u: (a, b, md5) for u, a, b, md5 in rows}


def test_eodag_searches_by_type_and_pages_to_the_end(dag: Any, world: Catalog) -> None:
    wanted = _products(world, "L0__ODB_1_")
    assert len(wanted) > 2
    found = dag.search_all(collection="L0__ODB_1_", provider="proseo", limit=2)
    assert {p.properties["uid"] for p in found} == set(wanted)


def test_eodag_searches_by_sensing_window(dag: Any, world: Catalog) -> None:
    lo, hi = datetime(2025, 3, 1, 0, tzinfo=UTC), datetime(2025, 3, 1, 3, tzinfo=UTC)
    wanted = {u for u, (a, b, _) in _products(world, "L0__ODB_1_").items() if a < hi and b > lo}
    assert wanted
    found = dag.search_all(
        collection="L0__ODB_1_", provider="proseo", start=lo.isoformat(), end=hi.isoformat()
    )
    assert {p.properties["uid"] for p in found} == wanted


def test_eodag_downloads_with_the_published_checksum(dag: Any, world: Catalog, tmp_path: Path) -> None:
    wanted = _products(world, "L0__ODB_1_")
    result = dag.search(collection="L0__ODB_1_", provider="proseo", limit=1)
    product = result[0]
    assert product.properties["file:checksum"] == wanted[product.properties["uid"]][2]
    path = Path(dag.download(product, output_dir=str(tmp_path / "out")))
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    assert len(files) == 1
    assert hashlib.md5(files[0].read_bytes()).hexdigest() == wanted[product.properties["uid"]][2]


def test_eodag_searches_by_footprint(dag: Any, world: Catalog) -> None:
    from shapely.geometry import box, shape

    with world.session() as s:
        shapes = {
            u: shape(g.geojson())
            for u, g in s.execute(
                select(Product.uuid, Product.footprint)
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .where(ProductClass.product_type == "L0__ODB_1_", Product.footprint.is_not(None))
            ).all()
        }
    x, y = next(iter(shapes.values())).representative_point().coords[0]
    area = box(x - 1, y - 1, x + 1, y + 1)
    wanted = {u for u, g in shapes.items() if g.intersects(area)}
    assert wanted and wanted != set(shapes)
    found = dag.search_all(collection="L0__ODB_1_", provider="proseo", geom=area)
    assert {p.properties["uid"] for p in found} == wanted
    assert all(p.geometry.intersects(area) for p in found)
