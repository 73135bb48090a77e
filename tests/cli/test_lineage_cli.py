"""``proseo product lineage`` on a real SKY night chain, on SQLite and PostgreSQL.

The chain (ingest one night, plan SRC_CAT, run every step on the local backend,
register) is built once per backend and module, as in tests/catalog/test_lineage.py.
"""

from __future__ import annotations

import json
import logging
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from proseo.catalog.db import Base, Catalog, make_engine
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import JobStep
from proseo.catalog.model_product import Product, ProductFile
from proseo.catalog.register import register_manifest
from proseo.cli.main import cli
from proseo.devtools.generate import write_inputs
from proseo.execution.jobspec import build_job_spec
from proseo.execution.local import run_wrapper
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR

NIGHT = datetime(2025, 3, 1, tzinfo=UTC)
LOG = logging.getLogger("test")


def build_sky_night(catalog: Catalog, tmp: Path) -> None:
    """Onboard SKY, ingest one night, plan SRC_CAT for it, run and register every step."""
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "SKY")
    files = write_inputs(mission, NIGHT, NIGHT + timedelta(days=1), tmp / "in", size=256)
    assert Ingestor(catalog, mission).run(files).ok
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
            register_manifest(s, step_id, manifest)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def chain_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The catalogue fixture's two backends, built once per module with a run SKY night."""
    tmp = tmp_path_factory.mktemp(f"lineage-cli-{request.param}")
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp / "catalog.db")
        url = f"sqlite:///{tmp / 'catalog.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    engine = make_engine(url)
    if request.param == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    with pytest.MonkeyPatch.context() as mp:
        for name in ("data", "scratch"):
            (tmp / name).mkdir()
        mp.setenv("PROSEO_DATA", str(tmp / "data"))
        mp.setenv("PROSEO_SCRATCH", str(tmp / "scratch"))
        build_sky_night(Catalog(url, engine=engine), tmp)
    engine.dispose()
    yield url


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False)


def product_of(url: str, product_type: str, like: str = "%") -> tuple[int, str, str]:
    """(id, uuid, first file name) of the first product of a type whose file name matches."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(Product.id, Product.uuid, ProductFile.file_name)
                .join(ProductFile, ProductFile.product_id == Product.id)
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .where(ProductClass.product_type == product_type, ProductFile.file_name.like(like))
                .order_by(Product.id)
                .limit(1)
            ).one()
    finally:
        engine.dispose()
    return row[0], row[1], row[2]


def test_text_tree_and_depth(chain_url: str) -> None:
    src_id, _, _ = product_of(chain_url, "SRC_CAT")
    full = run(chain_url, "product", "lineage", str(src_id))
    assert full.exit_code == 0, full.output + full.stderr
    lines = full.output.splitlines()
    assert lines[0].startswith(f"SKY lineage of SRC_CAT {src_id} (backward)")
    assert lines[1].startswith(f"SRC_CAT {src_id}  2025-03-01 00:00–2025-03-02 00:00  DETECT_2.0.0_2025A")
    for product_type in ("STACK_G", "STACK_R", "CALEXP_G", "REF_CAT", "CAL_BIAS", "CAL_FLAT", "RAW_EXP"):
        assert product_type in full.output
    assert "│       ├── RAW_EXP " in full.output and "ingested" in full.output  # three levels down
    one = run(chain_url, "product", "lineage", str(src_id), "--depth", "1")
    assert one.exit_code == 0
    children = [line for line in one.output.splitlines() if line.startswith(("├── ", "└── "))]
    assert sorted(line.split()[1] for line in children) == ["REF_CAT", "STACK_G", "STACK_R"]
    assert "RAW_EXP" not in one.output and "more beyond depth 1" in one.output


def test_addressed_by_file_name_or_uuid_and_forward(chain_url: str) -> None:
    raw_id, raw_uuid, raw_name = product_of(chain_url, "RAW_EXP", "%_g_%")
    by_name = run(
        chain_url, "product", "lineage", raw_name, "--forward", "--mission", "SKY", "--format", "json"
    )
    assert by_name.exit_code == 0, by_name.output + by_name.stderr
    data = json.loads(by_name.output)
    assert data["root"] == raw_id and data["direction"] == "forward" and not data["truncated"]
    assert {n["product_type"] for n in data["nodes"]} == {"RAW_EXP", "CALEXP_G", "STACK_G", "SRC_CAT"}
    by_uuid = run(chain_url, "product", "lineage", raw_uuid, "--forward")
    assert by_uuid.exit_code == 0
    assert by_uuid.output.splitlines()[0].startswith(f"SKY products made from RAW_EXP {raw_id} (forward)")
    assert "└── CALEXP_G " in by_uuid.output and "\n        └── SRC_CAT " in by_uuid.output


def test_json_dot_and_svg_are_well_formed(chain_url: str, tmp_path: Path) -> None:
    src_id, _, src_name = product_of(chain_url, "SRC_CAT")
    data = json.loads(run(chain_url, "product", "lineage", src_name, "--format", "json").output)
    assert data["root"] == src_id and data["depth"] is None and data["direction"] == "backward"
    ids = {n["id"] for n in data["nodes"]}
    assert all(e["input"] in ids and e["product"] in ids for e in data["edges"])
    assert {"RAW_EXP", "CAL_BIAS", "CAL_FLAT", "REF_CAT"} <= {n["product_type"] for n in data["nodes"]}

    dot = run(chain_url, "product", "lineage", str(src_id), "--format", "dot", "--depth", "2")
    assert dot.exit_code == 0
    assert dot.output.startswith("digraph ") and dot.output.rstrip().endswith("}")
    assert dot.output.count("{") == dot.output.count("}") and dot.output.count(" -> ") == 5
    assert f'"product-{src_id}" [label="SRC_CAT\\n2025-03-01 00:00–2025-03-02 00:00 / DETECT_' in dot.output

    target = tmp_path / "lineage.svg"
    svg = run(chain_url, "product", "lineage", str(src_id), "--format", "svg", "-o", str(target))
    assert svg.exit_code == 0 and svg.stdout == ""
    assert f"wrote {target} ({len(data['nodes'])} products, {len(data['edges'])} edges)" in svg.stderr
    root = ET.parse(target).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    nodes = root.findall(".//{http://www.w3.org/2000/svg}g[@data-id]")
    assert len(nodes) == len(data["nodes"])
    assert {g.get("data-state") for g in nodes} == {"EXISTING", "COMPLETED"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["999999"], 3, "no product with id 999999: give a product id, a UUID or a file name"),
        (["NOPE.fits"], 3, "no product has a file named 'NOPE.fits'"),
        (["00000000-0000-0000-0000-000000000000"], 3, "no product with UUID 00000000-0000-0000-0000"),
        (["1", "--mission", "NOPE"], 3, "mission 'NOPE' is not in the catalogue (loaded: SKY)"),
        (["1", "--depth", "-1"], 2, "Invalid value for '--depth'"),
    ],
)
def test_unknown_product_is_a_clear_error(chain_url: str, args: list[str], code: int, message: str) -> None:
    result = run(chain_url, "product", "lineage", *args)
    assert result.exit_code == code
    assert message in result.stderr and result.stdout == ""
