"""Systematic production end to end on a real ``airflow standalone``: no order made by hand.

A generator drops one simulated S5P day (the 15 orbits touching 2025-03-01: their four L0
files, and the AUX files) into the S5P pickup directory in compressed time, a few
orbits at a time, some files twice and one band of an orbit a batch late; and one SKY
night's exposures with its calibration into the SKY pickup directory. Airflow is
stopped and started again (scheduler and triggerer with it) in the middle of the
stream. Then, in the catalogue: every orbit's L1B and four L2 exist exactly once, the
day's L3 once and after the day's NO2 (its lineage holds every orbit's NO2), the SKY
night's products once, no order exists twice, every produced product has provenance,
and the timeliness KPI report lists every produced product with its delays.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.kpi import KpiFilter, report
from proseo.catalog.mission_sync import loaded_from_catalog
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import ProcessingOrder
from proseo.catalog.model_product import Product, ProductInput
from proseo.catalog.schema import upgrade
from proseo.demo import proseo_cli
from proseo.devtools.generate import write_inputs
from proseo.devtools.standalone import Standalone

from tests_paths import MISSION_DIR

pytestmark = pytest.mark.e2e

DAY = datetime(2025, 3, 1, tzinfo=UTC)
NIGHT = datetime(2025, 3, 4, tzinfo=UTC)
L0 = {"L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_"}
AUX = {"AUX_MET_TP", "AUX_CTMFCT", "AUX_NISE__", "AUX_L1_CKD"}
CHAIN = ["L1B_______", "L2__CLOUD_", "L2__NO2___", "L2__O3____", "L2__CH4___"]
SKY_MADE = ["CALEXP_G", "CALEXP_R", "STACK_G", "STACK_R", "SRC_CAT"]


def _deliver(files: list[Path], into: Path) -> None:
    """As a sender does: sidecar first, then the file, each renamed into place when written."""
    into.mkdir(parents=True, exist_ok=True)
    for f in files:
        for part in (f.with_name(f.name + ".json"), f):
            if part.exists():
                tmp = into / (part.name + ".part")
                shutil.copyfile(part, tmp)
                tmp.rename(into / part.name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("systematic")
    url = f"sqlite:///{home / 'catalog.db'}"
    env = {
        "PROSEO_CATALOG_URL": url,
        "PROSEO_DATA": str(home / "data"),
        "PROSEO_SCRATCH": str(home / "scratch"),
        "PROSEO_PICKUP_ROOT": str(home / "pickup"),
        "PROSEO_PICKUP_SETTLE_S": "1",
        "PROSEO_PICKUP_POLL_S": "2",
        "PROSEO_TRIGGER_SCAN_S": "10",
        "PROSEO_INPUT_POLL_S": "3",
        "PROSEO_TASK_RETRIES": "1",
        "PROSEO_TASK_RETRY_DELAY_S": "5",
        "SKY_NIGHT_SETTLE": "20 s",  # read when the SKY file is loaded
    }
    os.environ.update(env)
    catalog = Catalog(url)
    upgrade(catalog.engine)
    for name in ("s5p", "sky"):
        proseo_cli("mission", "load", str(MISSION_DIR / f"{name}.yaml"))
    airflow = Standalone(
        home / "airflow", parallelism=4, catalog_url=url, env=env, min_file_process_interval=5
    )
    try:
        airflow.start()
        yield {"home": home, "catalog": catalog, "airflow": airflow}
    finally:
        result = airflow.stop()
        catalog.engine.dispose()
        os.environ.clear()
        os.environ.update(saved)
        assert result.clean, result


def _count(catalog: Catalog, ptype: str) -> int:
    with catalog.session() as s:
        return int(
            s.scalar(
                select(func.count(Product.id))
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .where(ProductClass.product_type == ptype)
            )
            or 0
        )


def _wait(catalog: Catalog, wanted: dict[str, int], timeout: float, airflow: Standalone) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have = {t: _count(catalog, t) for t in wanted}
        if all(have[t] >= n for t, n in wanted.items()):
            return
        time.sleep(5)
    with catalog.session() as s:
        orders = s.execute(
            select(ProcessingOrder.identifier, ProcessingOrder.state, ProcessingOrder.state_message)
        ).all()
    pytest.fail(f"not produced in {timeout:.0f} s: have {have}, want {wanted}; orders {orders}")


@pytest.fixture(scope="module")
def streamed(world: dict) -> dict:
    catalog, home, airflow = world["catalog"], world["home"], world["airflow"]
    with catalog.session() as s:
        s5p, sky = loaded_from_catalog(s, "S5P"), loaded_from_catalog(s, "SKY")
    orbits = [o for o in s5p.orbits["S5P"] if o.stop > DAY and o.start < DAY + timedelta(days=1)]
    out = home / "generated"
    pickup = home / "pickup"
    _deliver(
        write_inputs(
            s5p,
            DAY - timedelta(hours=12),
            DAY + timedelta(days=1, hours=12),
            out / "aux",
            classes=AUX,
            size=256,
        ),
        pickup / "S5P",
    )
    late: list[Path] = []
    first: list[Path] = []
    batches = [orbits[i : i + 3] for i in range(0, len(orbits), 3)]
    for n, batch in enumerate(batches):
        files: list[Path] = []
        for o in batch:
            files += write_inputs(s5p, o.start, o.stop, out / f"o{o.number}", classes=L0, size=256)
        if n == 1:  # one band of this batch's first orbit comes a batch late
            late = [f for f in files if "L0__ODB_6_" in f.name and f"_{batch[0].number:05d}_" in f.name]
            files = [f for f in files if f not in late]
        elif late:
            files += late
            late = []
        if n == 0:
            first = list(files)
        if n == 3:  # the first batch's files delivered again, long after they were ingested
            files += first
        _deliver(files, pickup / "S5P")
        if n == len(batches) // 2:
            # Scheduler, triggerer (and the rest of Airflow) stopped and started in the middle.
            stop = airflow.stop()
            assert stop.clean, stop
            sky_files = write_inputs(
                sky,
                NIGHT - timedelta(days=20),
                NIGHT + timedelta(days=1),
                out / "sky-cal",
                classes={"CAL_BIAS", "CAL_FLAT", "REF_CAT"},
                size=256,
            )
            sky_files += write_inputs(
                sky, NIGHT, NIGHT + timedelta(days=1), out / "sky", classes={"RAW_EXP"}, size=256
            )
            _deliver(sky_files[: len(sky_files) // 2], pickup / "SKY")  # arrives while Airflow is down
            airflow.start()
            _deliver(sky_files[len(sky_files) // 2 :], pickup / "SKY")
        time.sleep(8)
    _deliver(late, pickup / "S5P")
    wanted = {t: len(orbits) for t in CHAIN} | {"L3__NO2___": 1} | {t: 1 for t in SKY_MADE}
    _wait(catalog, wanted, 1200, airflow)
    time.sleep(15)  # anything that would be made twice has had time to be
    return {"orbits": orbits}


def test_every_product_of_the_day_and_the_night_is_made_exactly_once(world: dict, streamed: dict) -> None:
    catalog = world["catalog"]
    n = len(streamed["orbits"])
    assert n == 15  # 101-minute orbits: 15 touch 2025-03-01
    for t in CHAIN:
        assert _count(catalog, t) == n, t
    assert _count(catalog, "L3__NO2___") == 1
    for t in SKY_MADE:
        assert _count(catalog, t) == 1, t
    with catalog.session() as s:
        orders = s.execute(
            select(
                ProcessingOrder.identifier,
                ProcessingOrder.generation_key,
                ProcessingOrder.trigger,
                ProcessingOrder.state,
            )
        ).all()
    assert all(o.trigger for o in orders), "no order was made by hand"
    assert len({o.generation_key for o in orders}) == len(orders)
    assert Counter(o.trigger for o in orders) == {"orbit_nrti": n, "l3_day": 1, "night": 1}
    assert {o.state for o in orders} == {"COMPLETED"}, orders


def test_the_l3_reads_every_orbits_no2_and_every_product_has_provenance(world: dict, streamed: dict) -> None:
    catalog = world["catalog"]
    with catalog.session() as s:
        produced = s.execute(
            select(Product.id, ProductClass.product_type)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .where(Product.job_step_id.is_not(None), Product.enclosing_product_id.is_(None))
        ).all()
        with_inputs = set(s.scalars(select(ProductInput.product_id).distinct()))
        (l3,) = [pid for pid, ptype in produced if ptype == "L3__NO2___"]
        read = (
            s.execute(
                select(ProductClass.product_type)
                .join(Product, Product.product_class_id == ProductClass.id)
                .join(ProductInput, ProductInput.input_product_id == Product.id)
                .where(ProductInput.product_id == l3)
            )
            .scalars()
            .all()
        )
    assert [(pid, t) for pid, t in produced if pid not in with_inputs] == []
    assert read == ["L2__NO2___"] * len(streamed["orbits"])


def test_the_kpi_report_lists_every_produced_product_with_its_delays(world: dict, streamed: dict) -> None:
    catalog = world["catalog"]
    for mission in ("S5P", "SKY"):
        with catalog.session() as s:
            produced = set(
                s.scalars(
                    select(Product.id)
                    .join(ProductClass, ProductClass.id == Product.product_class_id)
                    .where(
                        Product.job_step_id.is_not(None),
                        ProductClass.mission_id
                        == s.scalar(
                            select(ProductClass.mission_id).where(
                                ProductClass.product_type == ("L1B_______" if mission == "S5P" else "SRC_CAT")
                            )
                        ),
                    )
                )
            )
            rep = report(s, KpiFilter(mission=mission), products=True, limit=1000)
        assert rep.total == len(produced) and {p.id for p in rep.products} == produced, mission
        assert all(
            p.sensing_to_publication_s is not None and p.raw_to_publication_s is not None
            for p in rep.products
        )
        assert sum(a.count for a in rep.aggregates) == len(produced)


def test_an_ingestion_from_the_cli_tells_airflow(world: dict, streamed: dict) -> None:
    """With PROSEO_AIRFLOW_URL set, `proseo product ingest` creates the Asset events itself."""
    airflow, home = world["airflow"], world["home"]
    with world["catalog"].session() as s:
        s5p = loaded_from_catalog(s, "S5P")
    later = DAY + timedelta(days=3)
    files = write_inputs(
        s5p, later, later + timedelta(hours=6), home / "cli", classes={"AUX_MET_TP"}, size=64
    )
    out = proseo_cli("product", "ingest", "--mission", "S5P", *map(str, files), airflow=airflow.url)
    assert "airflow: Asset events for AUX_MET_TP" in out
    assets = airflow.client.request(
        "GET", "/api/v2/assets", params={"uri_pattern": "proseo://S5P/AUX_MET_TP"}
    )
    asset = next(a for a in assets["assets"] if a["uri"] == "proseo://S5P/AUX_MET_TP")
    events = airflow.client.request("GET", "/api/v2/assets/events", params={"asset_id": asset["id"]})
    extras = [e["extra"] for e in events["asset_events"]]
    assert any(x.get("from") == "cli" and len(x.get("product_ids", [])) == len(files) for x in extras), extras
