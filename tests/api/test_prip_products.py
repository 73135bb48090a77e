"""PRIP ``Products`` over HTTP: filters, paging to the end, visibility per mission, errors.

Each answer is compared with the catalogue read directly (ORM rows), never with figures
written into the test.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Mission, ProductClass
from proseo.catalog.model_product import Product

PRIP = "/proseo/prip/odata/v1"


def _rows(catalog: Catalog, mission: str | None = None) -> list[tuple[str, str, datetime, datetime]]:
    """(uuid, product type, sensing start, sensing stop) of every product, read directly."""
    with catalog.session() as s:
        query = (
            select(Product.uuid, ProductClass.product_type, Product.sensing_start, Product.sensing_stop)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .join(Mission, Mission.id == Product.mission_id)
        )
        if mission:
            query = query.where(Mission.code == mission)
        return [tuple(r) for r in s.execute(query).all()]  # type: ignore[misc]


def _get(client: Any, token: str, path: str, **params: str) -> Any:
    return client.get(f"{PRIP}{path}", params=params, headers={"Authorization": f"Bearer {token}"})


def _all_pages(client: Any, token: str, **params: str) -> tuple[list[dict], int]:
    """Every entity, following @odata.nextLink to the end; and the number of pages."""
    answer = _get(client, token, "/Products", **params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    found, pages = list(body["value"]), 1
    while "@odata.nextLink" in body:
        link = urlsplit(body["@odata.nextLink"])
        assert link.path == f"{PRIP}/Products"
        body = client.get(f"{link.path}?{link.query}", headers={"Authorization": f"Bearer {token}"}).json()
        found += body["value"]
        pages += 1
    return found, pages


def test_search_by_product_type_pages_to_the_end(client: Any, token_for: Any, world: Catalog) -> None:
    token = token_for("s5p-viewer")
    rows = _rows(world, "S5P")
    common = Counter(t for _, t, _, _ in rows).most_common(1)[0][0]
    wanted = {u for u, t, _, _ in rows if t == common}
    assert len(wanted) > 3
    attr = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
        f"and att/OData.CSC.StringAttribute/Value eq '{common}')"
    )
    found, pages = _all_pages(
        client, token, **{"$filter": attr, "$top": "2", "$orderby": "ContentDate/Start desc"}
    )
    assert {e["Id"] for e in found} == wanted and len(found) == len(wanted)
    assert pages == -(-len(wanted) // 2)
    starts = [e["ContentDate"]["Start"] for e in found]
    assert starts == sorted(starts, reverse=True)
    counted = _get(client, token, "/Products", **{"$filter": attr, "$count": "true", "$top": "1"}).json()
    assert counted["@odata.count"] == len(wanted) and len(counted["value"]) == 1


def test_search_by_sensing_window_and_name(client: Any, token_for: Any, world: Catalog) -> None:
    token = token_for("s5p-viewer")
    lo, hi = datetime(2025, 3, 1, 0, tzinfo=UTC), datetime(2025, 3, 1, 2, tzinfo=UTC)
    wanted = {u for u, t, a, b in _rows(world, "S5P") if a < hi and b > lo and t.startswith("L0__")}
    assert wanted
    text = (
        f"ContentDate/Start lt {hi:%Y-%m-%dT%H:%M:%S.000Z} and ContentDate/End gt {lo:%Y-%m-%dT%H:%M:%SZ}"
        " and startswith(Name,'S5P_') and contains(Name,'_L0__')"
    )
    found, _ = _all_pages(client, token, **{"$filter": text, "$top": "1000"})
    assert {e["Id"] for e in found} == wanted


def test_a_caller_sees_only_the_missions_they_may_view(client: Any, token_for: Any, world: Catalog) -> None:
    s5p, sky = {r[0] for r in _rows(world, "S5P")}, {r[0] for r in _rows(world, "SKY")}
    seen = {e["Id"] for e in _all_pages(client, token_for("s5p-viewer"), **{"$top": "1000"})[0]}
    assert seen == s5p
    seen = {e["Id"] for e in _all_pages(client, token_for("sky-admin"), **{"$top": "1000"})[0]}
    assert seen == sky
    assert _all_pages(client, token_for("nobody"))[0] == []
    everything = _all_pages(client, token_for("root"), **{"$top": "1000", "$count": "true"})[0]
    assert {e["Id"] for e in everything} == s5p | sky
    one = next(iter(s5p))
    assert _get(client, token_for("sky-admin"), f"/Products({one})").status_code == 404


def test_one_product_with_its_attributes_and_checksums(client: Any, token_for: Any, world: Catalog) -> None:
    token = token_for("s5p-viewer")
    uuid, ptype, start, _ = _rows(world, "S5P")[0]
    answer = _get(client, token, f"/Products({uuid})", **{"$expand": "Attributes"})
    assert answer.status_code == 200, answer.text
    entity = answer.json()
    assert entity["Id"] == uuid and entity["@odata.context"].endswith("$metadata#Products/$entity")
    assert datetime.fromisoformat(entity["ContentDate"]["Start"].replace("Z", "+00:00")) == start
    attributes = {a["Name"]: a["Value"] for a in entity["Attributes"]}
    assert attributes["productType"] == ptype and attributes["platformShortName"] == "S5P"
    algorithms = {c["Algorithm"] for c in entity["Checksum"]}
    assert "MD5" in algorithms
    download = client.get(f"{PRIP}/Products({uuid})/$value", headers={"Authorization": f"Bearer {token}"})
    assert int(entity["ContentLength"]) == len(download.content)


def test_repeated_expand_is_merged_and_other_repeats_refused(
    client: Any, token_for: Any, world: Catalog
) -> None:
    token = token_for("s5p-viewer")
    answer = client.get(
        f"{PRIP}/Products?$top=1&$expand=StringAttributes&$expand=IntegerAttributes",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    entity = answer.json()["value"][0]
    assert "StringAttributes" in entity and "IntegerAttributes" in entity
    twice = client.get(f"{PRIP}/Products?$top=1&$top=2", headers={"Authorization": f"Bearer {token}"})
    assert twice.status_code == 400 and twice.json()["error"]["target"] == "$top"


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("Name eq 'x' and", 15),
        ("Name eq 'x' xor Online eq true", 12),
        ("ContentLength gt 'big'", 17),
    ],
)
def test_a_filter_that_does_not_parse_answers_400_naming_the_character(
    client: Any, token_for: Any, world: Catalog, text: str, offset: int
) -> None:
    answer = _get(client, token_for("s5p-viewer"), "/Products", **{"$filter": text})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["target"] == "$filter" and error["offset"] == offset, error
    assert f"character {offset}" in error["message"]


def _footprints(catalog: Catalog) -> dict[str, Any]:
    """uuid -> shapely shape of every S5P product that has a footprint."""
    from shapely.geometry import shape

    with catalog.session() as s:
        rows = s.execute(
            select(Product.uuid, Product.footprint)
            .join(Mission, Mission.id == Product.mission_id)
            .where(Mission.code == "S5P", Product.footprint.is_not(None))
        ).all()
    return {u: shape(g.geojson()) for u, g in rows}


@pytest.mark.parametrize("kind", ["point", "box"])
def test_search_by_footprint(client: Any, token_for: Any, world: Catalog, kind: str) -> None:
    from shapely import wkt

    shapes = _footprints(world)
    assert len(shapes) > 3
    # An area inside one product's footprint: a point there, or a 2-degree box around it.
    x, y = next(iter(shapes.values())).representative_point().coords[0]
    area = f"POINT({x:.4f} {y:.4f})"
    if kind == "box":
        corners = [(x - 1, y - 1), (x + 1, y - 1), (x + 1, y + 1), (x - 1, y + 1), (x - 1, y - 1)]
        area = "POLYGON((" + ",".join(f"{a:.4f} {b:.4f}" for a, b in corners) + "))"
    wanted = {u for u, g in shapes.items() if g.intersects(wkt.loads(area))}
    assert wanted and wanted != set(shapes), "the area should split the products"
    for form in (
        f"OData.CSC.Intersects(area=geography'SRID=4326;{area}')",
        f"OData.CSC.Intersects(Footprint=geography'SRID=4326;{area}')",
    ):
        found, _ = _all_pages(client, token_for("s5p-viewer"), **{"$filter": form, "$top": "1000"})
        assert {e["Id"] for e in found} == wanted
        for entity in found:
            assert entity["Footprint"].startswith("geography'SRID=4326;POLYGON((")
            assert entity["GeoFootprint"]["type"] == "Polygon"


def test_an_invalid_area_is_refused_at_its_character(client: Any, token_for: Any, world: Catalog) -> None:
    bowtie = "POLYGON((0 0,10 10,10 0,0 10,0 0))"
    text = f"Online eq true and OData.CSC.Intersects(area=geography'SRID=4326;{bowtie}')"
    answer = _get(client, token_for("s5p-viewer"), "/Products", **{"$filter": text})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["offset"] == text.index("OData.CSC.Intersects") and "area" in error["message"]


def test_asking_for_more_than_the_quota_answers_429(client: Any, token_for: Any, world: Catalog) -> None:
    answer = _get(client, token_for("s5p-viewer"), "/Products", **{"$top": "5000"})
    assert answer.status_code == 429
    assert answer.json()["error"]["message"].startswith("$top: Product retrieval quota exceeded")
