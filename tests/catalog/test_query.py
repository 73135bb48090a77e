"""Product queries: overlap with a window, typed parameters, paging, on both backends."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.products import ProductQuery, product_dict, query_products
from proseo.devtools.generate import write_inputs
from proseo.errors import NotFoundError, ProseoError
from proseo.missions import load_mission

from tests_paths import MISSION_DIR

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def sky_catalog(catalog: Catalog, data_dirs, tmp_path: Path) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
        mission = loaded_from_catalog(s, "SKY")
    files = write_inputs(mission, T0, T0 + timedelta(days=2), tmp_path / "in")
    assert Ingestor(catalog, mission).run(files).ok
    catalog.ingested = Counter(mission.classes_matching(p.name)[0] for p in files)  # type: ignore[attr-defined]
    return catalog


def _query(catalog: Catalog, **kw) -> tuple[list[dict], int]:
    with catalog.session() as s:
        products, total = query_products(s, ProductQuery(mission="SKY", **kw))
        return [product_dict(p) for p in products], total


def test_overlap_excludes_products_that_only_touch_the_window(sky_catalog: Catalog) -> None:
    # Exposure 1 is 08:30:00-08:35:00 on 1 March; a window starting at its stop does not overlap it.
    exposure_end = T0 + timedelta(hours=8, minutes=35)
    items, _ = _query(
        sky_catalog, product_type="RAW_EXP", start=exposure_end, stop=exposure_end + timedelta(minutes=20)
    )
    assert [p["parameters"]["exposure_id"] for p in items] == [2]
    items, _ = _query(
        sky_catalog, product_type="RAW_EXP", start=exposure_end - timedelta(seconds=1), stop=exposure_end
    )
    assert [p["parameters"]["exposure_id"] for p in items] == [1]


def test_typed_parameter_filters(sky_catalog: Catalog) -> None:
    items, total = _query(sky_catalog, product_type="RAW_EXP", parameters={"filter": "g"})
    assert total == 30 and all(p["parameters"]["filter"] == "g" for p in items)
    items, total = _query(sky_catalog, product_type="RAW_EXP", parameters={"exposure_id": "0042"})
    assert total == 1 and items[0]["parameters"]["exposure_id"] == 42
    items, total = _query(sky_catalog, product_type="RAW_EXP", parameters={"exposure_time_s": "300"})
    assert total == 60
    _, flats_r = _query(sky_catalog, product_type="CAL_FLAT", parameters={"filter": "r"})
    _, flats = _query(sky_catalog, product_type="CAL_FLAT")
    assert flats_r * 2 == flats and flats_r > 0  # the generator delivers a flat per band
    with pytest.raises(ProseoError, match="exposure_id"):
        _query(sky_catalog, product_type="RAW_EXP", parameters={"exposure_id": "many"})


def test_paging_is_stable_and_counts_all(sky_catalog: Catalog) -> None:
    seen = []
    for offset in range(0, 70, 25):
        items, total = _query(sky_catalog, product_type="RAW_EXP", limit=25, offset=offset)
        assert total == 60
        seen += [p["id"] for p in items]
    assert len(seen) == len(set(seen)) == 60
    starts = [p["start"] for p in _query(sky_catalog, product_type="RAW_EXP", limit=100)[0]]
    assert starts == sorted(starts)


def test_file_class_and_unknown_class(sky_catalog: Catalog) -> None:
    _, total = _query(sky_catalog, file_class="TEST")
    assert total == 0
    _, everything = _query(sky_catalog)
    assert everything == sum(sky_catalog.ingested.values())
    for ptype, count in sky_catalog.ingested.items():
        assert _query(sky_catalog, product_type=ptype)[1] == count
    with pytest.raises(NotFoundError, match="no product class 'RAW'"):
        _query(sky_catalog, product_type="RAW")
