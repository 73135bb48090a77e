"""A configured source pulled by Airflow from a real PRIP, and what its arrivals set going.

The first catalogue (the ``world``) serves its PRIP over HTTP (uvicorn); a second
catalogue's mission file names it under ``sources``. The trigger's probe is asked the
real PRIP; the source's DAG is run by Airflow (``dag.test()`` in its own process,
through the repository's DAG files): a first run takes every product, a second run
after the source published more takes only those, each product is held once, the
runs emit one Asset event per arrived class with the product ids, Airflow queues the
data triggers' DAG on them, and that DAG's task orders the arrived orbits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_interface import InterfaceCursor
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_product import Product
from proseo.catalog.schema import upgrade
from proseo.devtools.generate import write_inputs
from proseo.interfaces.prip_entity import odata_time
from proseo.missions import load_mission
from proseo.orchestration import production
from proseo.orchestration.source_probe import SourceProbeTrigger

from tests_paths import MISSION_DIR, REPO

CLASS = "L0__ODB_1_"
DAY = datetime(2025, 3, 1, tzinfo=UTC)
DAG_ID = "proseo_source__S5P__first"
# Only the pulling side matters here; the served catalogue stays on SQLite.
pytestmark = pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)


def mission_with_source(path: Path, url: str, credentials: str) -> Path:
    """The S5P sample with a ``sources`` section naming the PRIP at ``url``."""
    text = (MISSION_DIR / "s5p.yaml").read_text()
    text += (
        "\nsources:\n  first:\n    kind: prip\n"
        f"    url: {url}\n    interval: 30 s\n    product_types: [{CLASS}]\n"
        f"    credentials: {credentials}\n"
    )
    path.write_text(text)
    return path


def _published(world: Catalog) -> list[str]:
    with world.session() as s:
        return sorted(
            s.scalars(
                select(Product.uuid)
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .where(ProductClass.product_type == CLASS)
            )
        )


def _held(catalog: Catalog) -> list[str]:
    with catalog.session() as s:
        return sorted(s.scalars(select(Product.uuid)))


def _first_event(trigger: SourceProbeTrigger) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(first())


def _trigger(
    url: str, puller: Catalog, *, since: str | None, credentials: dict[str, Any]
) -> SourceProbeTrigger:
    return SourceProbeTrigger(
        mission="S5P",
        source="first",
        root=url,
        filter=(
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
            f"and att/OData.CSC.StringAttribute/Value eq '{CLASS}')"
        ),
        since=since,
        catalog_url=puller.url,
        until=(datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        poll_s=1.0,
        credentials=credentials,
    )


def test_the_probe_sees_what_is_new_at_the_source_and_nothing_else(
    world: Catalog,
    prip_url: str,
    airflow_credentials: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    user, password = airflow_credentials
    monkeypatch.setenv("FIRST_USER", user)
    monkeypatch.setenv("FIRST_PASSWORD", password)
    by_env = {"username_env": "FIRST_USER", "password_env": "FIRST_PASSWORD"}
    # A catalogue that has pulled nothing yet: everything at the source is new.
    fresh = Catalog(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(fresh.engine)
    new = _first_event(_trigger(prip_url, fresh, since=None, credentials=by_env))
    assert new == {"status": "new", "count": len(_published(world))}
    later = _first_event(_trigger(prip_url, fresh, since="2100-01-01T00:00:00.000Z", credentials=by_env))
    assert later == {"status": "idle"}
    # A cursor at the newest product's time (in ms, rounded down): the products listed from
    # there on are those taken already (here: the serving catalogue holds them), not new ones.
    with world.session() as s:
        newest = s.scalar(
            select(func.max(Product.created_at))
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .where(ProductClass.product_type == CLASS)
        )
    assert newest is not None
    since = odata_time(newest)
    assert _first_event(_trigger(prip_url, world, since=since, credentials=by_env)) == {"status": "idle"}
    assert _first_event(_trigger(prip_url, fresh, since=since, credentials=by_env))["status"] == "new"
    # The connection is looked up when the probe runs (Airflow reads AIRFLOW_CONN_* itself).
    monkeypatch.setenv(
        "AIRFLOW_CONN_FIRST_PRIP", json.dumps({"conn_type": "http", "login": user, "password": password})
    )
    assert (
        _first_event(_trigger(prip_url, fresh, since=None, credentials={"connection": "first_prip"}))[
            "status"
        ]
        == "new"
    )
    monkeypatch.setenv("FIRST_PASSWORD", "wrong")
    refused = _first_event(_trigger(prip_url, fresh, since=None, credentials=by_env))
    assert refused["status"] == "unanswered", refused
    assert refused["message"].startswith("PullError: source first: token refused (400)"), refused


@dataclass
class _Event:
    """The fields of Airflow's AssetEvent that the data task reads."""

    extra: dict[str, Any] = field(default_factory=dict)


def _summaries(home: Path) -> list[dict[str, Any]]:
    """The pull task's returned summaries (XCom), oldest run first: what the probe saw, counts."""
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id "
            "WHERE x.dag_id = ? AND x.task_id = 'pull' AND x.key = 'return_value' ORDER BY r.id",
            (DAG_ID,),
        ).fetchall()
    out = []
    for (value,) in rows:
        summary = json.loads(value if isinstance(value, str) else value.decode())
        out.append({k: summary[k] for k in ("probe", "taken", "known")})
    return out


def _dagtest(home: Path, env: dict[str, str], *dag_ids: str) -> dict[str, dict[str, Any]]:
    command = [sys.executable, "-m", "proseo.devtools.dagtest", "--airflow-home", str(home)]
    command += ["--dags", str(REPO / "dags"), *dag_ids]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"dag_id"')]
    return {r["dag_id"]: r for r in lines}


def test_the_source_dag_pulls_once_across_runs_and_feeds_systematic_production(
    world: Catalog,
    prip_url: str,
    airflow_credentials: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, password = airflow_credentials
    # The pulling catalogue, its facility storing under a directory of its own.
    monkeypatch.setenv("PROSEO_DATA", str(tmp_path / "second-data"))
    second = Catalog(f"sqlite:///{tmp_path / 'second.db'}")
    upgrade(second.engine)
    with second.session() as s:
        sync_mission(
            s, load_mission(mission_with_source(tmp_path / "s5p.yaml", prip_url, "{connection: first_prip}"))
        )
    env = {
        "PROSEO_CATALOG_URL": second.url,
        "PROSEO_DATA": str(tmp_path / "second-data"),
        "PROSEO_SCRATCH": str(tmp_path / "scratch"),
        "AIRFLOW_CONN_FIRST_PRIP": json.dumps({"conn_type": "http", "login": user, "password": password}),
    }
    home = tmp_path / "airflow"

    # The data DAG is run (and so stored) first: Airflow queues only DAGs it knows for an event.
    first = _dagtest(home, env, "proseo_data__S5P", DAG_ID)[DAG_ID]
    assert first["state"] == "success", first
    published = _published(world)
    assert len(published) > 3 and _held(second) == published
    events = first["asset_events"]
    assert list(events) == [f"proseo://S5P/{CLASS}"]
    with second.session() as s:
        all_ids = sorted(s.scalars(select(Product.id)))
    assert sorted(i for e in events[f"proseo://S5P/{CLASS}"] for i in e["product_ids"]) == all_ids
    with sqlite3.connect(home / "airflow.db") as db:
        queued = {d for (d,) in db.execute("SELECT target_dag_id FROM asset_dag_run_queue")}
    assert "proseo_data__S5P" in queued, "Airflow queued the data triggers' DAG on the arrivals"
    assert _summaries(home) == [{"probe": "new", "taken": len(published), "known": 0}]

    # The source publishes three more hours; the second run takes only those.
    with world.session() as s:
        served = loaded_from_catalog(s, "S5P")
    more = write_inputs(
        served,
        DAY + timedelta(hours=6),
        DAY + timedelta(hours=9),
        tmp_path / uuid.uuid4().hex,
        size=300,
        classes={CLASS},
    )
    assert more and Ingestor(world, served).run(more).ok
    second_run = _dagtest(home, env, DAG_ID)[DAG_ID]
    assert second_run["state"] == "success", second_run
    assert _held(second) == _published(world), "every product once"
    taken = len(_published(world)) - len(published)
    # The second pull lists the first one's last batch again (from the cursor on) and skips it.
    assert _summaries(home)[-1]["probe"] == "new" and _summaries(home)[-1]["taken"] == taken
    announced = [i for e in second_run["asset_events"][f"proseo://S5P/{CLASS}"] for i in e["product_ids"]]
    with second.session() as s:
        new_ids = sorted(set(s.scalars(select(Product.id))) - set(all_ids))
        cursor = s.scalars(select(InterfaceCursor)).one()
    # (an orbit reaching into the new hours was published before: ingestion found it)
    assert 0 < len(new_ids) == len(_published(world)) - len(published)
    assert sorted(set(announced) - set(all_ids)) == new_ids
    assert cursor.source == "first" and cursor.taken == len(_published(world))

    # What the scheduler hands the data DAG's task for those events orders the arrived orbits.
    extras = [_Event(e) for e in second_run["asset_events"][f"proseo://S5P/{CLASS}"]]
    out = production.fire_data("S5P", second.url, triggering_asset_events={f"proseo://S5P/{CLASS}": extras})
    assert out["failed"] == [] and out["created"], out
    assert all(identifier.startswith("orbit_nrti_o") for identifier in out["created"])
    with second.session() as s:
        assert s.scalar(select(func.count()).select_from(Product)) == len(_published(world))
