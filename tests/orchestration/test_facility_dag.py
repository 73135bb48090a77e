"""An order naming two facilities runs as one DAG: each job step where the facility choice
put it (real wrapper and sample processors, local backend, ``dag.test()`` in its own
process), its outputs stored and catalogued at that facility, each facility's pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import Facility, ProductClass
from proseo.catalog.model_order import Job, JobStep
from proseo.catalog.model_product import Product, ProductFile
from proseo.catalog.schema import upgrade
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR, REPO, without_triggers

DAY = datetime(2025, 3, 1, tzinfo=UTC)
SITE_B = """  site_b:
    description: A second site with its own disks
    backend: local
    storage_url: file://${PROSEO_DATA:-/tmp/proseo/data}/SKY_B
    scratch_path: ${PROSEO_SCRATCH:-/tmp/proseo/scratch}/SKY_B
    max_concurrent_job_steps: 3
    cost_per_core_hour: 0.5
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "PROSEO_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
        "PROSEO_DATA": str(tmp_path / "data"),
        "PROSEO_SCRATCH": str(tmp_path / "scratch"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def _ingest(catalog: Catalog, facility: str, night: datetime, tmp: Path) -> None:
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "SKY")
    files = write_inputs(mission, night, night + timedelta(days=1), tmp / f"in-{facility}", size=1 << 18)
    assert Ingestor(catalog, mission, facility=facility).run(files).ok


def test_steps_run_and_store_where_the_facility_choice_put_them(env: dict[str, str], tmp_path: Path) -> None:
    text = without_triggers((MISSION_DIR / "sky.yaml").read_text())
    default = "    max_concurrent_job_steps: 2\n    default: true\n"
    text = text.replace(default, default + "    cost_per_core_hour: 0.1\n" + SITE_B, 1)
    (tmp_path / "sky.yaml").write_text(text)
    catalog = Catalog(env["PROSEO_CATALOG_URL"])
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(tmp_path / "sky.yaml"))
    # The first night's data is at site_b, the second night's at local.
    _ingest(catalog, "site_b", DAY, tmp_path)
    _ingest(catalog, "local", DAY + timedelta(days=1), tmp_path)
    spec = OrderSpec(
        identifier="two-sites",
        requested_classes=["STACK_G"],
        start=DAY,
        stop=DAY + timedelta(days=2),
        facilities=["local", "site_b"],
    )
    with catalog.session() as s:
        orders.create_order(s, "SKY", spec)
    lifecycle.approve_order(catalog, "SKY", "two-sites")
    lifecycle.plan_order(catalog, "SKY", "two-sites")
    dag_id = lifecycle.release_order(catalog, "SKY", "two-sites").dag_id
    with catalog.session() as s:
        placed = {
            (ptype, start.day): (facility, reason.split(":")[0])
            for ptype, start, facility, reason in s.execute(
                select(ProductClass.product_type, JobStep.start_time, Facility.name, JobStep.facility_reason)
                .join(ProductClass, ProductClass.id == JobStep.product_class_id)
                .join(Facility, Facility.id == JobStep.facility_id)
            )
        }
    # The calibration goes to its night's data; the stacks (inputs not made yet, of no
    # known size) go where it is cheaper.
    assert placed == {
        ("CALEXP_G", 1): ("site_b", "data locality"),
        ("CALEXP_G", 2): ("local", "data locality"),
        ("STACK_G", 1): ("local", "cost"),
        ("STACK_G", 2): ("local", "cost"),
    }

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "proseo.devtools.dagtest",
            "--airflow-home",
            str(tmp_path / "airflow"),
            "--dags",
            str(REPO / "dags"),
            dag_id or "",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=900,
    )
    runs = {
        r["dag_id"]: r for r in map(json.loads, (x for x in result.stdout.splitlines() if x.startswith("{")))
    }
    assert result.returncode == 0, result.stderr[-4000:]
    run = runs[dag_id]
    assert run["state"] == "success" and run["task_instances"] == {"success": 4}
    assert run["pools"]["proseo__sky__site_b"] == 3 and run["pools"]["proseo__sky__local"] == 2

    with catalog.session() as s:
        assert orders.get_order(s, "SKY", "two-sites").state == "COMPLETED"
        made = s.execute(
            select(ProductClass.product_type, Product.sensing_start, Facility.name, ProductFile.storage_url)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .join(ProductFile, ProductFile.product_id == Product.id)
            .join(Facility, Facility.id == ProductFile.facility_id)
            .join(JobStep, JobStep.id == Product.job_step_id)
            .join(Job, Job.id == JobStep.job_id)
        ).all()
    stored = {(ptype, start.day): (facility, url) for ptype, start, facility, url in made}
    assert stored[("CALEXP_G", 1)][0] == "site_b"
    assert stored[("CALEXP_G", 1)][1].startswith(f"file://{env['PROSEO_DATA']}/SKY_B/")
    assert stored[("CALEXP_G", 2)][0] == "local" and stored[("STACK_G", 1)][0] == "local"
    assert stored[("STACK_G", 1)][1].startswith(f"file://{env['PROSEO_DATA']}/SKY/")
