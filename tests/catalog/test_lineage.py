"""Product lineage over a real SKY night chain, on SQLite and PostgreSQL.

One night is ingested, SRC_CAT is planned for it, every job step runs through the
local backend (real wrapper, real sample processors) and is registered, so the
lineage edges are the ones registration writes. The chain is built once per backend
and module (about 7 s); tests that change the catalogue do it in a transaction they
roll back, so every test sees the same chain.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, event, select, text
from sqlalchemy.orm import Session

from proseo.catalog.db import Base, Catalog, make_engine
from proseo.catalog.ingest import Ingestor
from proseo.catalog.lineage import Lineage, LineageEdge, find_product, lineage
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import Mission, ProductClass
from proseo.catalog.model_order import JobStep
from proseo.catalog.model_product import Product, ProductFile, ProductInput
from proseo.catalog.products import product_uuid
from proseo.catalog.register import RunIdentity, register_manifest
from proseo.devtools.generate import write_inputs
from proseo.errors import CatalogError, NotFoundError, ProseoError
from proseo.execution.jobspec import build_job_spec
from proseo.execution.local import run_wrapper
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.graph import to_dot, to_svg, to_text
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR

NIGHT = datetime(2025, 3, 1, tzinfo=UTC)
LOG = logging.getLogger("test")


# --- the chain (the few lines of tests/execution/tests_execution_helpers.py it needs) -------


def build_sky_night(catalog: Catalog, tmp: Path) -> None:
    """Onboard SKY, ingest one night, plan SRC_CAT for it, run and register every step."""
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "SKY")
    files = write_inputs(mission, NIGHT, NIGHT + timedelta(days=1), tmp / "in", size=256)
    report = Ingestor(catalog, mission).run(files)
    assert report.ok, [o for o in report.outcomes if o.status != "new"]
    spec = OrderSpec(
        identifier="night", requested_classes=["SRC_CAT"], start=NIGHT, stop=NIGHT + timedelta(days=1)
    )
    with catalog.session() as s:
        orders.create_order(s, "SKY", spec)
    lifecycle.approve_order(catalog, "SKY", "night")
    lifecycle.plan_order(catalog, "SKY", "night")
    with catalog.session() as s:
        steps = s.scalars(select(JobStep.id).order_by(JobStep.depth.desc(), JobStep.id)).all()
    for step_id in steps:
        with catalog.session() as s:
            ctx = build_job_spec(s, step_id)
        manifest = run_wrapper(ctx, 1, log=LOG)
        assert manifest.status.value == "SUCCESS", (step_id, manifest.stage, manifest.reason)
        with catalog.session() as s:
            register_manifest(s, step_id, manifest, run=RunIdentity(dag_id="d", run_id="r"))


def _truncate(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """The catalogue fixture's two backends, built once per module with a run SKY night."""
    tmp = tmp_path_factory.mktemp(f"lineage-{request.param}")
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp / "catalog.db")
        url = f"sqlite:///{tmp / 'catalog.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _truncate(url)
    engine = make_engine(url)
    catalog = Catalog(url, engine=engine)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("data", "scratch"):
            (tmp / name).mkdir()
        mp.setenv("PROSEO_DATA", str(tmp / "data"))
        mp.setenv("PROSEO_SCRATCH", str(tmp / "scratch"))
        build_sky_night(catalog, tmp)
    yield catalog
    engine.dispose()


def ids_of(session: Session, product_type: str) -> list[int]:
    return list(
        session.scalars(
            select(Product.id)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .where(ProductClass.product_type == product_type)
            .order_by(Product.sensing_start, Product.id)
        )
    )


def the(session: Session, product_type: str) -> int:
    (pid,) = ids_of(session, product_type)
    return pid


def types(lin: Lineage) -> set[str]:
    return {n.product_type for n in lin.nodes.values()}


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


@contextmanager
def rolled_back(catalog: Catalog) -> Iterator[Session]:
    """A session whose changes are never committed (the chain stays as built)."""
    with catalog.sessions() as s:
        try:
            yield s
        finally:
            s.rollback()


# --- the walk -------------------------------------------------------------------------------


def test_ingested_and_registered_products_take_their_uuid_from_their_identity_alike(chain: Catalog) -> None:
    """One UUID per identity, whoever wrote the product: ingestion or a processor run's registration."""
    with chain.session() as s:
        rows = s.execute(select(Product.uuid, Product.identity, Product.job_step_id.isnot(None))).all()
    by_kind: dict[bool, list[tuple[str, str]]] = {}
    for product_uuid_, identity, registered in rows:
        by_kind.setdefault(bool(registered), []).append((product_uuid_, identity))
    assert by_kind.get(True) and by_kind.get(False), "the chain has ingested and registered products"
    for kind in (True, False):
        assert all(stored == product_uuid(identity) for stored, identity in by_kind[kind]), kind
    assert product_uuid("same identity") == product_uuid("same identity") != product_uuid("another")


def test_backward_lineage_reaches_the_ingested_inputs(chain: Catalog) -> None:
    with chain.session() as s:
        src_cat = the(s, "SRC_CAT")
        lin = lineage(s, src_cat)
    assert lin.root == src_cat and lin.root_node.distance == 0 and not lin.truncated
    assert {"RAW_EXP", "CAL_BIAS", "CAL_FLAT", "REF_CAT"} <= types(lin)
    assert types(lin) == {
        "SRC_CAT",
        "STACK_G",
        "STACK_R",
        "CALEXP_G",
        "CALEXP_R",
        "RAW_EXP",
        "CAL_BIAS",
        "CAL_FLAT",
        "REF_CAT",
    }
    by_type: dict[str, set[int]] = {}
    for n in lin.nodes.values():
        by_type.setdefault(n.product_type, set()).add(n.distance)
    assert by_type["STACK_G"] == {1} and by_type["REF_CAT"] == {1}
    assert by_type["CALEXP_R"] == {2} and by_type["RAW_EXP"] == {3} and by_type["CAL_FLAT"] == {3}
    # Every node once, every edge between nodes, pointing along the data flow.
    assert len({n.uuid for n in lin.nodes.values()}) == len(lin.nodes)
    assert all(e.input in lin.nodes and e.product in lin.nodes for e in lin.edges)
    assert all(lin.nodes[e.input].distance == lin.nodes[e.product].distance + 1 for e in lin.edges)
    direct = {lin.nodes[e.input].product_type for e in lin.edges if e.product == src_cat}
    assert direct == {"STACK_G", "STACK_R", "REF_CAT"}
    # Produced products name their run and processor; ingested ones have neither.
    for n in lin.nodes.values():
        assert n.files and n.mission == "SKY" and n.status == "AVAILABLE"
        if n.product_type in ("RAW_EXP", "CAL_BIAS", "CAL_FLAT", "REF_CAT"):
            assert not n.produced and n.job_step_id is None and n.processor is None
        else:
            assert n.produced and n.job_step_id is not None and n.processor
    assert lin.root_node.processor.startswith("DETECT_")
    raw_g = [n for n in lin.nodes.values() if n.product_type == "RAW_EXP" and "_g_" in n.files[0]]
    assert raw_g and len(raw_g) < len([n for n in lin.nodes.values() if n.product_type == "RAW_EXP"])


def test_depth_bounds_the_walk(chain: Catalog) -> None:
    with chain.session() as s:
        src_cat = the(s, "SRC_CAT")
        one = lineage(s, src_cat, depth=1)
        zero = lineage(s, src_cat, depth=0)
        three = lineage(s, src_cat, depth=3)
        everything = lineage(s, src_cat)
    assert types(one) == {"SRC_CAT", "STACK_G", "STACK_R", "REF_CAT"}
    assert len(one.nodes) == 4 and len(one.edges) == 3 and one.truncated
    assert list(zero.nodes) == [src_cat] and zero.edges == [] and zero.truncated
    # Three levels reach the ingested inputs, which have no inputs themselves: nothing is cut.
    assert three.nodes.keys() == everything.nodes.keys() and not three.truncated
    assert three.edges == everything.edges
    with chain.session() as s, pytest.raises(ProseoError, match="depth must be 0 or more"):
        lineage(s, src_cat, depth=-1)


def test_forward_from_a_raw_exposure_reaches_the_source_catalogue(chain: Catalog) -> None:
    with chain.session() as s:
        raw = s.scalar(
            select(Product.id)
            .join(ProductFile)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .where(ProductClass.product_type == "RAW_EXP", ProductFile.file_name.like("%_g_%"))
            .order_by(Product.id)
            .limit(1)
        )
        lin = lineage(s, raw, forward=True)
        src_cat = the(s, "SRC_CAT")
    assert lin.forward and lin.direction == "forward" and not lin.truncated
    assert types(lin) == {"RAW_EXP", "CALEXP_G", "STACK_G", "SRC_CAT"}  # never the r branch
    assert lin.nodes[src_cat].distance == 3
    # Edges still point from input to product.
    assert LineageEdge(product=src_cat, input=the_one(lin, "STACK_G")) in lin.edges
    assert all(e.input in lin.nodes and e.product in lin.nodes for e in lin.edges)


def the_one(lin: Lineage, product_type: str) -> int:
    (pid,) = [n.id for n in lin.nodes.values() if n.product_type == product_type]
    return pid


def test_statements_grow_with_depth_not_with_products(chain: Catalog) -> None:
    counts: dict[int | None, int] = {}
    sizes: dict[int | None, int] = {}
    with chain.session() as s:
        src_cat = the(s, "SRC_CAT")  # also begins the transaction outside the count
        for depth in (0, 1, 2, 3, None):
            with statements(chain.engine) as seen:
                lin = lineage(s, src_cat, depth=depth)
            counts[depth], sizes[depth] = len(seen), len(lin.nodes)
        raw_g = s.scalar(
            select(Product.id)
            .join(ProductFile)
            .where(ProductFile.file_name.like("SKY_OPER_RAW_EXP_g_%"))
            .limit(1)
        )
        with statements(chain.engine) as seen:
            forward = lineage(s, raw_g, forward=True)
        forward_count = len(seen)
    # The root, one statement per level, and one probe when the depth bound stops the walk.
    assert counts == {0: 2, 1: 3, 2: 4, 3: 5, None: 5}, counts
    assert sizes[1] == 4 and sizes[2] == 6 and sizes[None] > 30  # ~30 exposures, one statement
    # Forward: root + three levels that find products + the level that finds none.
    assert forward_count == 5 and len(forward.nodes) == 4


def test_a_cycle_in_the_catalogue_terminates_and_still_draws(chain: Catalog) -> None:
    with rolled_back(chain) as s:
        src_cat = the(s, "SRC_CAT")
        before = lineage(s, src_cat)
        raw = ids_of(s, "RAW_EXP")[0]
        s.add(ProductInput(product_id=raw, input_product_id=src_cat))  # corrupt: RAW made from SRC_CAT
        s.flush()
        after = lineage(s, src_cat)
        forward = lineage(s, src_cat, forward=True)
        assert after.nodes.keys() == before.nodes.keys()
        assert LineageEdge(product=raw, input=src_cat) in after.edges
        graph = after.to_graph()  # the edge closing the cycle is left out of the picture
        assert len(graph.edges) == len(after.edges) - 1
        assert to_svg(graph).startswith("<?xml") and after.to_text().count("(see above)") >= 1
        assert {"RAW_EXP", "SRC_CAT"} <= types(forward)


def test_components_follow_their_enclosing_product(chain: Catalog) -> None:
    """STACK_R made a component of STACK_G for the test (SKY has no product sets)."""
    # Backwards: a component without edges of its own inherits its enclosing product's inputs.
    with rolled_back(chain) as s:
        stack_g, stack_r, src_cat = the(s, "STACK_G"), the(s, "STACK_R"), the(s, "SRC_CAT")
        calexp_g = the(s, "CALEXP_G")
        s.get(Product, stack_r).enclosing_product_id = stack_g
        s.execute(delete(ProductInput).where(ProductInput.product_id == stack_r))
        s.execute(
            delete(ProductInput).where(
                ProductInput.product_id == src_cat, ProductInput.input_product_id == stack_g
            )
        )
        s.flush()
        back = lineage(s, stack_r, depth=1)
        assert back.edges == [LineageEdge(product=stack_r, input=calexp_g, via=stack_g)]
        assert back.root_node.enclosing_id == stack_g and stack_g not in back.nodes
        assert "(via " in back.to_text()
        # Forwards: SRC_CAT is now made from the component only; it counts for the set too.
        enclosing = lineage(s, stack_g, depth=1, forward=True)
        assert enclosing.edges == [LineageEdge(product=src_cat, input=stack_g, via=stack_r)]
    # Forwards from a component: what was made from its enclosing product counts.
    with rolled_back(chain) as s:
        s.get(Product, stack_r).enclosing_product_id = stack_g
        s.execute(
            delete(ProductInput).where(
                ProductInput.product_id == src_cat, ProductInput.input_product_id == stack_r
            )
        )
        s.flush()
        component = lineage(s, stack_r, depth=1, forward=True)
        assert component.edges == [LineageEdge(product=src_cat, input=stack_r, via=stack_g)]
        # A direct edge wins over one through the link.
        assert lineage(s, stack_g, depth=1, forward=True).edges == [
            LineageEdge(product=src_cat, input=stack_g)
        ]


def test_unknown_root(chain: Catalog) -> None:
    with chain.session() as s, pytest.raises(NotFoundError, match="product 999999 does not exist"):
        lineage(s, 999_999)


# --- addressing a product ---------------------------------------------------------------------


def test_find_product_by_id_uuid_or_file_name(chain: Catalog, tmp_path: Path) -> None:
    with chain.session() as s:
        src_cat = s.get(Product, the(s, "SRC_CAT"))
        name = src_cat.files[0].file_name
        assert find_product(s, str(src_cat.id)).id == src_cat.id
        assert find_product(s, src_cat.uuid.upper()).id == src_cat.id
        assert find_product(s, name).id == src_cat.id
        assert find_product(s, f"/some/where/{name}", mission="SKY").id == src_cat.id  # a path works too
        assert find_product(s, f" {src_cat.id} ", mission="SKY").id == src_cat.id
        with pytest.raises(NotFoundError, match=r"no product with id 999999: give a product id, a UUID or"):
            find_product(s, "999999")
        missing = str(uuid.uuid4())
        with pytest.raises(NotFoundError, match=f"no product with UUID {missing}"):
            find_product(s, missing)
        with pytest.raises(NotFoundError, match=r"no product has a file named 'nope\.fits' in mission SKY"):
            find_product(s, "nope.fits", mission="SKY")
        with pytest.raises(NotFoundError, match="mission 'NOPE' is not in the catalogue"):
            find_product(s, name, mission="NOPE")
        with pytest.raises(NotFoundError, match="no product with id 99999999999999999999999: give"):
            find_product(s, "99999999999999999999999")
        with pytest.raises(NotFoundError, match="no product given"):
            find_product(s, "  ")
    # The same file name in two products is ambiguous without the id.
    with rolled_back(chain) as s:
        raw = s.get(Product, ids_of(s, "RAW_EXP")[0])
        other = s.get(Product, ids_of(s, "REF_CAT")[0])
        f = other.files[0]
        s.add(
            ProductFile(
                product_id=other.id,
                facility_id=f.facility_id,
                file_name=raw.files[0].file_name,
                storage_url=f.storage_url + ".copy",
                size=f.size,
                md5=f.md5,
                sha256=f.sha256,
            )
        )
        s.add(Mission(code="OTHER", name="another mission"))
        s.flush()
        with pytest.raises(NotFoundError, match=f"product {raw.id} is not a product of mission OTHER"):
            find_product(s, str(raw.id), mission="OTHER")
        with pytest.raises(
            CatalogError, match=r"belongs to 2 products \(\d+, \d+\); name the mission \(--mission\) or use"
        ):
            find_product(s, raw.files[0].file_name)


# --- output forms -------------------------------------------------------------------------------


def test_to_dict_graph_and_text(chain: Catalog) -> None:
    with chain.session() as s:
        src_cat = the(s, "SRC_CAT")
        lin = lineage(s, src_cat)
    data = json.loads(json.dumps(lin.to_dict()))
    assert data["root"] == src_cat and data["direction"] == "backward" and data["depth"] is None
    assert len(data["nodes"]) == len(lin.nodes) and len(data["edges"]) == len(lin.edges)
    root = data["nodes"][0]
    assert root["id"] == src_cat and root["product_type"] == "SRC_CAT" and root["origin"] == "produced"
    assert root["start"].endswith("Z") and root["files"][0].endswith(".parquet")
    assert {n["origin"] for n in data["nodes"] if n["product_type"] == "RAW_EXP"} == {"ingested"}
    assert set(data["edges"][0]) == {"input", "product", "via"}

    graph = lin.to_graph()
    assert len(graph.nodes) == len(lin.nodes) and len(graph.edges) == len(lin.edges)
    states = {n.label: n.state for n in graph.nodes}
    assert states["RAW_EXP"] == "EXISTING" and states["REF_CAT"] == "EXISTING"
    assert states["SRC_CAT"] == "COMPLETED" and states["CALEXP_G"] == "COMPLETED"
    node = next(n for n in graph.nodes if n.id == f"product-{src_cat}")
    assert node.group == "L3" and "DETECT_" in node.detail and "2025-03-01" in node.detail
    assert {n.group for n in graph.nodes if n.kind == "input"} == {"input"}

    dot = to_dot(graph)
    assert dot.startswith("digraph ") and dot.rstrip().endswith("}") and dot.count("{") == dot.count("}")
    assert dot.count(" -> ") == len(lin.edges)
    svg = ET.fromstring(to_svg(graph).split("\n", 1)[1])
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(svg.findall(".//{http://www.w3.org/2000/svg}g[@data-id]")) == len(lin.nodes)
    assert "layer 1" in to_text(graph)

    tree = lin.to_text()
    lines = tree.splitlines()
    assert lines[0].startswith("SKY lineage of SRC_CAT") and "products" in lines[0]
    assert lines[1].startswith(f"SRC_CAT {src_cat}  2025-03-01 ") and "DETECT_" in lines[1]
    assert any(line.startswith(("├── REF_CAT", "└── REF_CAT")) and "ingested" in line for line in lines)
    assert any("RAW_EXP" in line and line.startswith(("│   ", "    ")) for line in lines)
    # CAL_BIAS feeds both nightly frames: its second appearance refers back.
    assert sum("CAL_BIAS" in line for line in lines) == 2 and "(see above)" in tree
