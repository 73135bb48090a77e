"""PRIP queries against a real catalogue (SQLite and PostgreSQL) of ingested S5P products.

Every answer is compared with an oracle the test computes itself from the catalogue's rows
loaded through the ORM; each page costs one SQL statement, and one more with $count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import event, select, update

from proseo.catalog.db import Catalog
from proseo.catalog.footprint_column import to_shape
from proseo.catalog.footprints import intersects
from proseo.catalog.geometry import Geometry
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ConfiguredProcessor, Orbit, ProductClass, Spacecraft
from proseo.catalog.model_product import Product, ProductionType
from proseo.devtools.generate import write_inputs
from proseo.interfaces.odata_lexer import ODataError
from proseo.interfaces.odata_options import QueryOptions, parse_options
from proseo.interfaces.prip_entity import page_json, product_entity, products_answer
from proseo.interfaces.prip_model import parameter_types
from proseo.interfaces.prip_query import query_page
from proseo.missions import load_mission

from tests_paths import MISSION_DIR

T0 = datetime(2025, 3, 1, tzinfo=UTC)
BASE = "https://prip.example/proseo/prip/odata/v1/Products"


@dataclass(frozen=True)
class Expected:
    """What the test itself knows about one product (the oracle's view)."""

    id: str
    name: str
    size: int
    start: datetime
    stop: datetime
    production_type: str
    evicted_at: datetime | None
    attributes: dict[str, Any]


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path) -> Catalog:
    """Two days of S5P deliveries: L0 in NRTI mode, meteorological AUX made on demand,
    typed parameters on the ODB_1 L0s, a processor on the ODB_4 ones, a few evictions."""
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
        mission = loaded_from_catalog(s, "S5P")
    files = write_inputs(mission, T0, T0 + timedelta(days=2), tmp_path / "in")
    kind = {p: mission.classes_matching(p.name)[0] for p in files}
    ingest = Ingestor(catalog, mission)
    assert ingest.run([p for p in files if kind[p].startswith("L0")], mode="NRTI").ok
    ondemand = [p for p in files if kind[p] == "AUX_MET_TP"]
    assert ingest.run(ondemand, production_type=ProductionType.ON_DEMAND_DEFAULT).ok
    assert ingest.run([p for p in files if not kind[p].startswith("L0") and kind[p] != "AUX_MET_TP"]).ok
    with catalog.session() as s:
        odb1 = s.scalars(
            select(Product)
            .join(ProductClass)
            .where(ProductClass.product_type == "L0__ODB_1_")
            .order_by(Product.id)
        ).all()
        for k, p in enumerate(odb1):
            p.parameters = {
                "collection": k % 3,
                "quality": k / 10,
                "degraded": k % 2 == 0,
                "site": ["KIR", "SVB"][k % 2],
            }
        processor = s.scalars(select(ConfiguredProcessor).order_by(ConfiguredProcessor.id)).first()
        assert processor is not None
        odb4 = select(ProductClass.id).where(ProductClass.product_type == "L0__ODB_4_").scalar_subquery()
        s.execute(
            update(Product)
            .where(Product.product_class_id == odb4)
            .values(configured_processor_id=processor.id)
        )
        for k, p in enumerate(odb1[:3]):
            p.eviction_time = T0 + timedelta(days=30 + k)
    return catalog


def oracle(catalog: Catalog) -> list[Expected]:
    with catalog.session() as s:
        out = []
        for p in s.scalars(select(Product)):
            orbit = s.get(Orbit, p.orbit_id) if p.orbit_id else None
            craft = s.get(Spacecraft, orbit.spacecraft_id) if orbit else None
            proc = (
                s.get(ConfiguredProcessor, p.configured_processor_id) if p.configured_processor_id else None
            )
            attrs: dict[str, Any] = dict(p.parameters)
            attrs |= {
                "productType": p.product_class.product_type,
                "productClass": p.file_class,
                "processingLevel": p.product_class.level,
                "timeliness": p.mode,
                "platformShortName": "S5P",
                "platformSerialIdentifier": craft.code if craft else None,
                "orbitNumber": orbit.number if orbit else None,
                "beginningDateTime": p.sensing_start,
                "endingDateTime": p.sensing_stop,
                "processingDate": p.generation_time,
                "processorName": proc.processor_class if proc else None,
                "processorVersion": proc.version if proc else None,
            }
            names = {"SYSTEMATIC": "systematic_production", "ON_DEMAND_DEFAULT": "on-demand default"}
            out.append(
                Expected(
                    p.uuid,
                    p.files[0].file_name,
                    p.files[0].size,
                    p.sensing_start,
                    p.sensing_stop,
                    names[p.production_type],
                    p.eviction_time,
                    {k: v for k, v in attrs.items() if v is not None},
                )
            )
        return out


@contextmanager
def statements(catalog: Catalog) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(sql)

    event.listen(catalog.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(catalog.engine, "before_cursor_execute", record)


def run(catalog: Catalog, params: dict[str, str], **kw: Any) -> dict[str, Any]:
    options = parse_options(params)
    with catalog.session() as s:
        types = parameter_types(s)
        with statements(catalog) as seen:
            page = query_page(s, options, parameter_types=types, **kw)
            answer = page_json(page, options, base_url=BASE, params=params)
        assert len(seen) == (2 if options.count else 1), seen
    return answer


def at(day: int, hour: int) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


def median_orbit(products: list[Expected]) -> int:
    orbits = sorted(p.attributes["orbitNumber"] for p in products if "orbitNumber" in p.attributes)
    return orbits[len(orbits) // 2]


Case = tuple[str, Callable[[Expected], bool]]


def cases(products: list[Expected]) -> list[Case]:
    mid = median_orbit(products)
    # GUID literals starting with a digit and with a letter
    some = [min(p.id for p in products), max(p.id for p in products), sorted(p.id for p in products)[1]]
    assert some[0][0].isdigit() and some[1][0].isalpha()
    a = lambda p, k: p.attributes.get(k)  # noqa: E731
    return [
        ("startswith(Name,'S5P_OPER_L0__ODB_1')", lambda p: p.name.startswith("S5P_OPER_L0__ODB_1")),
        ("contains(Name,'AUX_MET')", lambda p: "AUX_MET" in p.name),
        ("contains(Name,'odb')", lambda p: "odb" in p.name),  # case-sensitive on both backends
        ("endswith(Name,'.RAW')", lambda p: p.name.endswith(".RAW")),
        (
            "ContentDate/Start ge 2025-03-01T12:00:00Z and ContentDate/End lt 2025-03-02T14:00:00+02:00",
            lambda p: p.start >= at(0, 12) and p.stop < at(1, 12),
        ),
        (
            "ProductionType eq OData.CSC.ProductionType'on-demand default'",
            lambda p: p.production_type == "on-demand default",
        ),
        (
            "ProductionType ne OData.CSC.ProductionType'on-demand default' "
            "and not startswith(Name,'S5P_OPER_L0')",
            lambda p: p.production_type != "on-demand default" and not p.name.startswith("S5P_OPER_L0"),
        ),
        (
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'L0__ODB_4_')",
            lambda p: a(p, "productType") == "L0__ODB_4_",
        ),
        (
            f"Attributes/OData.CSC.IntegerAttribute/any(a:a/Name eq 'orbitNumber' and "
            f"a/OData.CSC.IntegerAttribute/Value ge {mid})",
            lambda p: a(p, "orbitNumber") is not None and a(p, "orbitNumber") >= mid,
        ),
        (
            "IntegerAttributes/any(a:a/Name eq 'collection' and a/Value eq 1)",
            lambda p: a(p, "collection") == 1,
        ),
        (
            "DoubleAttributes/any(x:x/Name eq 'quality' and x/Value gt 0.35)",
            lambda p: (a(p, "quality") or 0) > 0.35,
        ),
        (
            "BooleanAttributes/any(b:b/Name eq 'degraded' and b/Value eq true)",
            lambda p: a(p, "degraded") is True,
        ),
        ("StringAttributes/any(s:s/Name eq 'site' and s/Value in ('KIR'))", lambda p: a(p, "site") == "KIR"),
        # untyped: an attribute the missions do not declare takes the type of what it is compared with
        (
            "Attributes/any(u:u/Name eq 'quality' and u/Value gt 0.35)",
            lambda p: (a(p, "quality") or 0) > 0.35,
        ),
        (
            "BooleanAttributes/any(b:b/Name eq 'degraded' and not b/Value)",
            lambda p: a(p, "degraded") is False,
        ),
        ("IntegerAttributes/any()", lambda p: "orbitNumber" in p.attributes or "collection" in p.attributes),
        (
            "Attributes/OData.CSC.DateTimeOffsetAttribute/any(d:d/Name eq 'processingDate' and "
            "d/OData.CSC.DateTimeOffsetAttribute/Value lt 2025-03-01T06:00:00Z)",
            lambda p: a(p, "processingDate") < at(0, 6),
        ),
        ("Attributes/any(a:a/Name eq 'timeliness')", lambda p: "timeliness" in p.attributes),
        (
            "Attributes/any(a:(a/Name eq 'productType' and a/Value eq 'AUX_NISE__') or "
            f"(a/Name eq 'orbitNumber' and a/Value lt {mid}))",
            lambda p: a(p, "productType") == "AUX_NISE__" or (a(p, "orbitNumber") or mid) < mid,
        ),
        (
            "StringAttributes/any(v:v/Name eq 'processorVersion' and v/Value ne 'none')",
            lambda p: "processorVersion" in p.attributes,
        ),
        ("EvictionDate eq null", lambda p: p.evicted_at is None),
        ("EvictionDate ne null", lambda p: p.evicted_at is not None),
        # comparisons with a missing value are false, so their negation holds
        (
            "not (EvictionDate lt 2025-04-02T00:00:00Z)",
            lambda p: not (p.evicted_at and p.evicted_at < at(32, 0)),
        ),
        ("EvictionDate ne 2025-03-31T00:00:00Z", lambda p: p.evicted_at != at(30, 0)),
        (f"Id in ({', '.join(some)})", lambda p: p.id in some),
        (f"Id eq '{some[0]}' or Id eq {some[1].upper()}", lambda p: p.id in some[:2]),
        (
            "ContentLength gt 0 and (contains(Name,'ODB_6') or contains(Name,'ENG'))",
            lambda p: p.size > 0 and ("ODB_6" in p.name or "ENG" in p.name),
        ),
        (
            "Online eq true and not (ContentDate/Start lt 2025-03-01T12:00:00Z)",
            lambda p: not p.start < at(0, 12),
        ),
    ]


def test_every_filter_form_matches_the_oracle(s5p: Catalog) -> None:
    products = oracle(s5p)
    assert len(products) > 100
    nontrivial = 0
    for text, predicate in cases(products):
        answer = run(s5p, {"$filter": text, "$top": "1000", "$orderby": "Name", "$count": "true"})
        expected = sorted((p for p in products if predicate(p)), key=lambda p: p.name)
        assert [e["Id"] for e in answer["value"]] == [p.id for p in expected], text
        assert answer["@odata.count"] == len(expected), text
        nontrivial += 0 < len(expected) < len(products)
    assert nontrivial >= len(cases(products)) - 2  # only the case-sensitivity probe may match nothing


@pytest.mark.parametrize(
    ("orderby", "key"),
    [
        ("ContentDate/Start desc,Name asc", lambda p: (-p.start.timestamp(), p.name)),
        ("ContentLength,Name desc", lambda p: (p.size, [-ord(c) for c in p.name])),
        # nulls last in both directions, on both backends
        ("EvictionDate desc,Id", lambda p: (p.evicted_at is None, -(p.evicted_at or T0).timestamp(), p.id)),
    ],
)
def test_ordering_and_paging_to_the_end(s5p: Catalog, orderby: str, key: Callable[[Expected], Any]) -> None:
    products = oracle(s5p)
    params = {"$filter": "not contains(Name,'AUX_L1')", "$orderby": orderby, "$top": "17", "$count": "true"}
    seen: list[str] = []
    pages = 0
    while True:
        answer = run(s5p, params)
        pages += 1
        assert answer["@odata.count"] == len(products) - 1
        seen += [e["Id"] for e in answer["value"]]
        if "@odata.nextLink" not in answer:
            break
        link = urlsplit(answer["@odata.nextLink"])
        assert f"{link.scheme}://{link.netloc}{link.path}" == BASE
        params = dict(parse_qsl(link.query))
    expected = [p.id for p in sorted((p for p in products if "AUX_L1" not in p.name), key=key)]
    assert seen == expected
    assert pages == -(-len(expected) // 17)


def test_entity_shape_select_and_expand(s5p: Catalog) -> None:
    products = {p.id: p for p in oracle(s5p)}
    text = "startswith(Name,'S5P_OPER_L0__ODB_1')"
    full = run(s5p, {"$filter": text, "$expand": "Attributes,IntegerAttributes", "$top": "1000"})["value"]
    for entity in full:
        p = products[entity["Id"]]
        assert entity["Name"] == p.name and entity["ContentLength"] == p.size
        assert entity["ContentDate"] == {
            "Start": p.start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "End": p.stop.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        assert [c["Algorithm"] for c in entity["Checksum"]] == ["MD5", "SHA256"]
        assert entity["ProductionType"] == "systematic_production" and entity["Online"] is True
        assert entity["Footprint"] is None and entity["GeoFootprint"] is None
        attrs = {a["Name"]: a for a in entity["Attributes"]}
        assert set(attrs) == set(p.attributes)
        assert attrs["orbitNumber"]["Value"] == p.attributes["orbitNumber"]
        assert attrs["quality"]["ValueType"] == "Double" and attrs["degraded"]["ValueType"] == "Boolean"
        assert {a["Name"] for a in entity["IntegerAttributes"]} == {"orbitNumber", "collection"}
    narrow = run(s5p, {"$filter": text, "$select": "Name,Id", "$top": "2"})
    assert [set(e) for e in narrow["value"]] == [{"@odata.mediaContentType", "Id", "Name"}] * 2
    assert "@odata.count" not in narrow and "@odata.nextLink" in narrow


def test_rendering_loads_nothing_more(s5p: Catalog) -> None:
    options = parse_options({"$expand": "Attributes", "$top": "50"})
    with s5p.session() as s, statements(s5p) as seen:
        page = query_page(s, options)
        assert len(seen) == 1
        entities = [product_entity(r, options) for r in page.rows]
        assert len(seen) == 1 and len(entities) == 50


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        (
            "IntegerAttributes/any(a:a/Name eq 'orbitNumber' and a/Value eq '5')",
            63,
            "type Integer cannot be compared with a String literal",
        ),
        (
            "StringAttributes/any(a:a/Name eq 'orbitNumber' and a/Value eq '5')",
            33,
            "orbitNumber is of type Integer",
        ),
        (
            "Attributes/any(a:a/Name eq 'orbitNumber' and a/OData.CSC.StringAttribute/Value eq '5')",
            45,
            "orbitNumber is of type Integer, not String",
        ),
        ("Attributes/any(a:a/Value eq 'x')", 0, "any() must fix the attribute"),
        (
            "DateTimeOffsetAttributes/any(a:a/Name eq 'foo' and a/Value lt 2025-01-01T00:00:00Z)",
            41,
            "no DateTimeOffset attribute is named 'foo'",
        ),
        ("Attributes/any(a:a/Name ne 'productType')", 0, "any() must fix the attribute"),
        ("ContentDate/Start gt 'yesterday'", 21, "type DateTimeOffset cannot be compared with a String"),
        ("Name gt 5", 8, "type String cannot be compared with a Int64"),
        ("Foo eq 1", 0, "unknown or unfilterable property 'Foo'"),
        ("Name eq Name", 8, "expected a literal"),
        ("ProductionType eq OData.CSC.ProductionType'weekly'", 18, "unknown production type"),
        ("Name", 0, "Name is not a Boolean"),
        ("contains(ContentLength,'1')", 9, "contains() applies to strings"),
        ("Online gt true", 7, "gt does not apply to a Boolean"),
        (
            "OData.CSC.Intersects(area=geography'SRID=4326;POINT(1 2)')",
            0,
            "footprint filters are not available",
        ),
    ],
)
def test_type_errors_name_the_character(s5p: Catalog, text: str, offset: int, message: str) -> None:
    with pytest.raises(ODataError) as caught:
        run(s5p, {"$filter": text})
    assert caught.value.offset == offset and message in str(caught.value)


def test_intersects_uses_the_injected_footprint_condition(s5p: Catalog) -> None:
    asked: list[Geometry] = []

    def footprint(g: Geometry) -> Any:
        asked.append(g)  # the catalogue's footprint storage answers this in production
        return ProductClass.product_type == "AUX_NISE__"

    text = "OData.CSC.Intersects(Footprint=geography'SRID=4326;POINT(11.5 48.1)') and Online eq true"
    answer = run(s5p, {"$filter": text, "$top": "1000"}, footprint=footprint)
    assert asked == [Geometry.point(11.5, 48.1)]
    expected = {p.id for p in oracle(s5p) if p.attributes["productType"] == "AUX_NISE__"}
    assert {e["Id"] for e in answer["value"]} == expected and expected


def test_default_page_is_twenty_with_a_next_link(s5p: Catalog) -> None:
    answer = run(s5p, {})
    assert len(answer["value"]) == 20 and answer["@odata.nextLink"].endswith("%24top=20&%24skip=20")
    assert QueryOptions().top == 20


def test_products_answer_in_one_call_with_a_scope(s5p: Catalog) -> None:
    params = {"$filter": "IntegerAttributes/any(a:a/Name eq 'collection' and a/Value ge 1)", "$count": "true"}
    scope = ProductClass.product_type == "L0__ODB_1_"
    with s5p.session() as s:
        answer = products_answer(s, params, base_url=BASE, scope=scope)
        outside = products_answer(s, params, base_url=BASE, scope=ProductClass.product_type == "AUX_NISE__")
    expected = [p for p in oracle(s5p) if p.attributes.get("collection", 0) >= 1]
    assert answer["@odata.count"] == len(expected) > 0 and outside["@odata.count"] == 0
    assert answer["@odata.context"] == "$metadata#Products"
    with s5p.session() as s, pytest.raises(ODataError, match=r"^\$top: "):
        products_answer(s, {"$top": "5000"}, base_url=BASE)


def _area_pages(catalog: Catalog, params: dict[str, str], walk_rows: int) -> list[str]:
    """Every page of an area query, following nextLink, with the walk bounded to ``walk_rows``."""
    seen: list[str] = []
    while True:
        answer = run(catalog, params, footprint=intersects, walk_rows=walk_rows)
        seen += [e["Id"] for e in answer["value"]]
        if "@odata.nextLink" not in answer:
            return seen
        params = dict(parse_qsl(urlsplit(answer["@odata.nextLink"]).query))


@pytest.mark.parametrize("orderby", ["PublicationDate desc", "ModificationDate asc", None])
def test_area_pages_are_the_same_walked_or_sorted(s5p: Catalog, orderby: str | None) -> None:
    """The walk (newest first, exact test per product) and the spatial-index fallback give the
    same pages: a walk of 10**6 rows always completes, one of 1 row always falls back, and
    one of 40 rows completes some pages and falls back on others."""
    with s5p.session() as s:
        rows = [(p.uuid, p.created_at, p.id, p.footprint) for p in s.scalars(select(Product))]
    # Publication times spread out (ingestion gives many products the same instant).
    with s5p.session() as s:
        for k, (uuid, *_rest) in enumerate(sorted(rows, key=lambda r: r[0])):
            s.execute(
                update(Product).where(Product.uuid == uuid).values(created_at=T0 + timedelta(minutes=k % 50))
            )
    with s5p.session() as s:
        rows = [(p.uuid, p.created_at, p.id, p.footprint) for p in s.scalars(select(Product))]
    areas = {
        "point": Geometry.point(10.0, 45.0),
        "box": Geometry.polygon([(-30, -10), (30, -10), (30, 10), (-30, 10), (-30, -10)]),
        "nowhere": Geometry.polygon([(0, 89), (1, 89), (1, 89.5), (0, 89.5), (0, 89)]),
    }
    checked = 0
    for name, area in areas.items():
        shape = to_shape(area)
        hits = [r for r in rows if r[3] is not None and to_shape(r[3]).intersects(shape)]
        descending = orderby is not None and orderby.endswith("desc")
        if orderby is None:
            hits.sort(key=lambda r: r[2])
        else:
            hits.sort(key=lambda r: ((-1 if descending else 1) * r[1].timestamp(), r[2]))
        params = {"$filter": f"OData.CSC.Intersects(area={area.odata()}) and Online eq true", "$top": "7"}
        if orderby:
            params["$orderby"] = orderby
        for walk_rows in (10**6, 1, 40):
            assert _area_pages(s5p, dict(params), walk_rows) == [r[0] for r in hits], (name, walk_rows)
        checked += len(hits)
    assert checked > 20  # the areas meet footprints: the comparison is not of empty pages


def test_publication_bounds_start_the_walk(s5p: Catalog) -> None:
    """``PublicationDate gt <cursor>`` (a pull client's page) with an area, walked from the cursor."""
    with s5p.session() as s:
        for k, p in enumerate(s.scalars(select(Product).order_by(Product.uuid))):
            p.created_at = T0 + timedelta(minutes=k)
    with s5p.session() as s:
        rows = sorted((p.created_at, p.id, p.uuid, p.footprint) for p in s.scalars(select(Product)))
    cursor = rows[len(rows) // 3][0]
    area = Geometry.polygon([(-60, -60), (60, -60), (60, 60), (-60, 60), (-60, -60)])
    expected = [
        r[2] for r in rows if r[0] > cursor and r[3] is not None and to_shape(r[3]).intersects(to_shape(area))
    ]
    text = f"PublicationDate gt {cursor:%Y-%m-%dT%H:%M:%S}.000Z and OData.CSC.Intersects(area={area.odata()})"
    params = {"$filter": text, "$orderby": "PublicationDate asc", "$top": "9"}
    for walk_rows in (10**6, 1, 25):
        assert _area_pages(s5p, dict(params), walk_rows) == expected
    assert len(expected) > 9
