"""A reprocessing campaign end to end on a real ``airflow standalone`` (the acceptance of campaigns).

Simulated S5P inputs of a period are ingested, except one day's L0 band 1 (withheld).
A campaign over the period (the four L2 classes and the daily L3 NO2, RPRO, one unit a
day, a window of 3 orders) is created and started with ``proseo campaign``; from then
on only the proseo_campaigns DAG (a pass every 10 s) releases units. In the middle the
scheduler is killed hard (SIGKILL) and Airflow is started again; the campaign carries on.
At the end every unit but the withheld day is complete, the gap report lists the
withheld day's classes with the reason "input missing" naming the L0 class; the L0 is
ingested, ``proseo campaign gaps --retry`` orders the failed units again, and the gaps
are filled. Nothing is produced twice (one product per class and slice) and no order
identifier exists twice.

The acceptance asks for a month: ``PROSEO_E2E_CAMPAIGN_DAYS=30`` runs it (hours on two
cores); the default (2 days) is what CI runs.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog
from proseo.catalog.model_campaign import Campaign
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.catalog.schema import upgrade
from proseo.demo import proseo_cli
from proseo.devtools.generate import write_inputs
from proseo.devtools.standalone import Standalone

from tests_paths import MISSION_DIR

pytestmark = pytest.mark.e2e

DAYS = int(os.environ.get("PROSEO_E2E_CAMPAIGN_DAYS", "2"))
START = datetime(2025, 3, 1, tzinfo=UTC)
STOP = START + timedelta(days=DAYS)
#: The day whose L0 band 1 is withheld (the second, or the only one).
WITHHELD = START + timedelta(days=min(1, DAYS - 1))
WITHHELD_L0 = "L0__ODB_1_"
L0 = {"L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_"}
AUX = {"AUX_MET_TP", "AUX_CTMFCT", "AUX_NISE__", "AUX_L1_CKD"}
L2 = ["L2__CLOUD_", "L2__NO2___", "L2__O3____", "L2__CH4___"]
REQUESTED = [*L2, "L3__NO2___"]
NAME = "rpro-e2e"
#: How long a step waits for an input: the withheld day's steps fail after it; a normal
#: day's L3 waits for its day's L2 NO2 (another order of the unit) no longer than this.
INPUT_TIMEOUT_S = int(os.environ.get("PROSEO_E2E_CAMPAIGN_INPUT_TIMEOUT_S", "240"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    assert DAYS >= 1, "PROSEO_E2E_CAMPAIGN_DAYS must be at least 1"
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("campaign")
    url = f"sqlite:///{home / 'catalog.db'}"
    env = {
        "PROSEO_CATALOG_URL": url,
        "PROSEO_DATA": str(home / "data"),
        "PROSEO_SCRATCH": str(home / "scratch"),
        "PROSEO_SYSTEMATIC": "false",  # only the campaign produces: nothing else to count
        "PROSEO_CAMPAIGN_PASS_S": "10",  # the least allowed
        "PROSEO_INPUT_POLL_S": "3",
        "PROSEO_TASK_RETRIES": "1",
        "PROSEO_TASK_RETRY_DELAY_S": "5",
    }
    os.environ.update(env)
    catalog = Catalog(url)
    upgrade(catalog.engine)
    proseo_cli("mission", "load", str(MISSION_DIR / "s5p.yaml"))
    airflow = Standalone(
        home / "airflow", parallelism=4, catalog_url=url, env=env, min_file_process_interval=5
    )
    try:
        airflow.start()
        yield {"home": home, "catalog": catalog, "airflow": airflow, "t0": time.monotonic()}
    finally:
        result = airflow.stop()
        catalog.engine.dispose()
        os.environ.clear()
        os.environ.update(saved)
        assert result.clean, result


def _ingest(catalog: Catalog, start: datetime, stop: datetime, out: Path, classes: set[str]) -> int:
    with catalog.session() as s:
        s5p = loaded_from_catalog(s, "S5P")
    files = write_inputs(s5p, start, stop, out, classes=classes, size=256)
    report = Ingestor(catalog, s5p).run(files)
    assert report.ok, report
    return len(files)


def _made(catalog: Catalog) -> list[tuple[str, datetime, datetime, int]]:
    """Produced (not ingested, not enclosed) products per class and slice, with their count."""
    with catalog.session() as s:
        return [
            (t, a, b, int(n))
            for t, a, b, n in s.execute(
                select(ProductClass.product_type, Product.sensing_start, Product.sensing_stop, func.count())
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .where(Product.job_step_id.is_not(None), Product.enclosing_product_id.is_(None))
                .group_by(ProductClass.product_type, Product.sensing_start, Product.sensing_stop)
            ).all()
        ]


def _orders(catalog: Catalog) -> list[tuple[str, str, str | None]]:
    with catalog.session() as s:
        return [
            (i, st, m)
            for i, st, m in s.execute(
                select(ProcessingOrder.identifier, ProcessingOrder.state, ProcessingOrder.state_message)
            ).all()
        ]


def _campaign_state(catalog: Catalog) -> str:
    with catalog.session() as s:
        return str(s.scalar(select(Campaign.state).where(Campaign.name == NAME)))


def _wait(condition, timeout: float, what: str, catalog: Catalog) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(5)
    pytest.fail(f"{what} not within {timeout:.0f} s; orders {_orders(catalog)}")


def _gaps() -> dict:
    out = proseo_cli("campaign", "gaps", "-m", "S5P", NAME, "--format", "json", "--limit", "100000")
    return json.loads(out)


def _scheduler(airflow: Standalone) -> int:
    """The pid of the instance's ``airflow scheduler`` (the one standalone started)."""
    found = []
    for pid in airflow.processes():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"scheduler" in argv and ppid == airflow.pid:
            found.append(pid)
    assert len(found) == 1, f"scheduler processes {found} of {airflow.processes()}"
    return found[0]


@pytest.fixture(scope="module")
def campaign(world: dict) -> dict:
    catalog, home, airflow = world["catalog"], world["home"], world["airflow"]
    t0 = time.monotonic()
    _ingest(catalog, START - timedelta(days=1), STOP + timedelta(days=1), home / "aux", AUX)
    _ingest(catalog, START, STOP, home / "l0", L0 - {WITHHELD_L0})
    # Band 1 of every day but the withheld one (its orbits crossing midnight come with a neighbour).
    if WITHHELD > START:
        _ingest(catalog, START, WITHHELD, home / "l0-before", {WITHHELD_L0})
    if WITHHELD + timedelta(days=1) < STOP:
        _ingest(catalog, WITHHELD + timedelta(days=1), STOP, home / "l0-after", {WITHHELD_L0})
    classes = [a for c in REQUESTED for a in ("--class", c)]
    proseo_cli(
        "campaign", "create", "-m", "S5P", "--name", NAME, *classes,
        "--start", START.isoformat(), "--stop", STOP.isoformat(), "--unit", "day", "--mode", "RPRO",
        "--window", "3", "--input-timeout", f"{INPUT_TIMEOUT_S} s", "--output-param", "collection=3",
    )  # fmt: skip
    out = proseo_cli("campaign", "start", "-m", "S5P", NAME)
    assert "RUNNING" in out and "not released" not in out, out
    # In the middle: once about half of the period's products are made (a day makes about
    # 60), the scheduler is killed hard.
    half = max(10, 30 * DAYS)
    _wait(lambda: len(_made(catalog)) >= half, 900 + 150 * DAYS, f"{half} products", catalog)
    scheduler = _scheduler(airflow)
    os.kill(scheduler, signal.SIGKILL)
    killed_at = len(_made(catalog))
    time.sleep(5)
    # What the kill left (the other components, orphaned task processes) goes too; the
    # orphans ignore SIGINT, so do not wait long before the stop escalates.
    airflow.stop_timeout = 15
    airflow.stop()
    airflow.stop_timeout = 60
    airflow.start()
    per_day = 15  # orbits starting in a day, about
    _wait(
        lambda: _campaign_state(catalog) == "COMPLETED",
        600 + 300 * DAYS + INPUT_TIMEOUT_S,
        "campaign completed",
        catalog,
    )
    first = _gaps()
    orders_first = _orders(catalog)
    # The withheld L0 arrives; only the failed units are ordered again.
    _ingest(catalog, WITHHELD, WITHHELD + timedelta(days=1), home / "late", {WITHHELD_L0})
    retried = proseo_cli("campaign", "gaps", "-m", "S5P", NAME, "--retry")
    _wait(lambda: _campaign_state(catalog) == "COMPLETED", 600 + 60 * per_day, "retry completed", catalog)
    time.sleep(15)  # anything that would be made twice has had time to be
    return {
        "first": first,
        "orders_first": orders_first,
        "retried": retried,
        "after": _gaps(),
        "killed_at": killed_at,
        "seconds": time.monotonic() - t0,
    }


def test_every_unit_but_the_withheld_day_completes_across_a_scheduler_kill(campaign: dict) -> None:
    seconds, killed = campaign["seconds"], campaign["killed_at"]
    print(f"campaign of {DAYS} day(s): {seconds:.0f} s (scheduler killed after {killed} products)")
    first = campaign["first"]
    withheld = WITHHELD.strftime("%Y%m%d")
    assert first["state"] == "COMPLETED" and first["missing"] > 0, first
    assert {c["unit"] for c in first["cells"]} == {
        (START + timedelta(days=d)).strftime("%Y%m%d") for d in range(DAYS)
    }
    for cell in first["cells"]:
        if cell["unit"] != withheld:
            assert cell["produced"] == cell["expected"] > 0, cell
    states = dict(Counter(st for _, st, _ in campaign["orders_first"]))
    failed = sorted(i for i, st, _ in campaign["orders_first"] if st != "COMPLETED")
    assert failed and all(withheld in i for i in failed), (states, campaign["orders_first"])


def test_the_gap_report_names_the_withheld_l0(campaign: dict) -> None:
    first = campaign["first"]
    withheld = WITHHELD.strftime("%Y%m%d")
    gaps = first["gaps"]
    assert len(gaps) == first["missing"]
    assert {g["part"].split(":")[0] for g in gaps} == {withheld}
    assert {g["product_type"] for g in gaps} == set(REQUESTED), gaps
    assert {g["reason"] for g in gaps} == {"input missing"}, gaps
    for g in gaps:
        if g["product_type"] in L2:
            assert WITHHELD_L0 in g["detail"], g
    l3 = [g for g in gaps if g["product_type"] == "L3__NO2___"]
    assert len(l3) == 1, l3


def test_retrying_the_gaps_fills_them(campaign: dict) -> None:
    after = campaign["after"]
    assert "_r1" in campaign["retried"], campaign["retried"]
    assert after["state"] == "COMPLETED" and after["gaps"] == [], after
    assert after["produced"] == after["expected"] == campaign["first"]["expected"]


def test_nothing_is_produced_twice(world: dict, campaign: dict) -> None:
    catalog = world["catalog"]
    made = _made(catalog)
    twice = [m for m in made if m[3] != 1]
    assert twice == [], twice
    kinds = Counter(t for t, *_ in made)
    assert set(kinds) == {"L1B_______", *REQUESTED}, kinds
    assert kinds["L3__NO2___"] == DAYS
    assert kinds["L2__CH4___"] >= 14 * DAYS, kinds  # 14 orbits start in each of these days
    # The first day's L3 also reads the orbit that starts the day before (its L1B, clouds, NO2).
    assert kinds["L1B_______"] == kinds["L2__CLOUD_"] == kinds["L2__NO2___"] >= kinds["L2__CH4___"], kinds
    counted: Counter[str] = Counter()
    for cell in campaign["after"]["cells"]:
        counted[cell["product_type"]] += cell["produced"]
    for c in ("L2__O3____", "L2__CH4___", "L3__NO2___"):
        assert kinds[c] == counted[c], (c, kinds, counted)
    orders = _orders(catalog)
    identifiers = Counter(i for i, _, _ in orders)
    assert [i for i, n in identifiers.items() if n > 1] == []
    with catalog.session() as s:
        keys = list(s.scalars(select(ProcessingOrder.generation_key)))
    assert len(set(keys)) == len(keys)
