"""Pickup directories: the trigger on a real directory (what is complete, claimed before it
is reported, reported once) and the ingestion task on a real catalogue (both backends)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from airflow.sdk import AssetAlias
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.serialization.serialized_objects import DagSerialization
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_product import Product
from proseo.catalog.pickup import CLAIMED, DONE, REJECTED, claim, reject
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.orchestration.pickup import PickupTrigger, build_pickup_dags, ingest_pickup, products_alias
from proseo.settings import reset_settings

from tests_paths import MISSION_DIR

DAY = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
HOUR_AGO = time.time() - 3600


def _old(*paths: Path) -> None:
    """Written an hour ago: settled for any settle time below that."""
    for path in paths:
        os.utime(path, (HOUR_AGO, HOUR_AGO))


def _drain(trigger: PickupTrigger) -> list[dict]:
    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_the_trigger_round_trips_through_serialize(tmp_path: Path) -> None:
    trigger = PickupTrigger("S5P", str(tmp_path), settle_s=5, poll_s=0.5)
    classpath, kwargs = trigger.serialize()
    again = import_string(classpath)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs == {"mission": "S5P", "directory": str(tmp_path), "settle_s": 5.0, "poll_s": 0.5}
    json.dumps(kwargs)  # JSON primitives only: the triggerer stores them


def test_complete_files_are_claimed_then_reported_once(tmp_path: Path) -> None:
    pickup = tmp_path / "S5P"
    pickup.mkdir()
    for name in ("a.nc", "b.nc", "b.nc.json", "c.nc.part", "d.tmp", ".hidden", "fresh.nc", "orphan.json"):
        (pickup / name).write_text(name)
    _old(*(p for p in pickup.iterdir() if p.name != "fresh.nc"))
    (pickup / "sub").mkdir()  # directories are never products

    events = _drain(PickupTrigger("S5P", str(pickup), settle_s=60, poll_s=0.01))
    assert events == [{"mission": "S5P", "claimed": 2, "files": ["a.nc", "b.nc"]}]
    assert sorted(p.name for p in (pickup / CLAIMED).iterdir()) == ["a.nc", "b.nc", "b.nc.json"]
    left = sorted(p.name for p in pickup.iterdir())
    assert left == [".claimed", ".hidden", "c.nc.part", "d.tmp", "fresh.nc", "orphan.json", "sub"]

    # Re-created after the event (as Airflow does), the trigger does not see them again.
    again = PickupTrigger(**PickupTrigger("S5P", str(pickup), settle_s=60, poll_s=0.01).serialize()[1])
    claimed, seen = again.look({})
    claimed, _ = again.look(seen)
    assert claimed == []  # fresh.nc is not settled, the rest is temporary or a sidecar


def test_a_file_is_complete_only_when_seen_unchanged_and_its_sidecar_too(tmp_path: Path) -> None:
    trigger = PickupTrigger("SKY", str(tmp_path), settle_s=60, poll_s=1)
    data, side = tmp_path / "x.fits", tmp_path / "x.fits.json"
    data.write_bytes(b"12345")
    side.write_text("{}")
    _old(data)
    claimed, seen = trigger.look({})
    assert claimed == []  # first look: never seen before
    claimed, seen = trigger.look(seen)
    assert claimed == []  # its sidecar is still being written
    _old(side)
    data.write_bytes(b"123456")  # grew since the previous look
    _old(data)
    claimed, seen = trigger.look(seen)
    assert claimed == []
    claimed, seen = trigger.look(seen)
    assert claimed == ["x.fits"] and sorted(os.listdir(tmp_path / CLAIMED)) == ["x.fits", "x.fits.json"]


def test_a_footprint_sidecar_is_waited_for_and_travels_with_its_file(tmp_path: Path) -> None:
    trigger = PickupTrigger("S5P", str(tmp_path), settle_s=60, poll_s=1)
    data, footprint = tmp_path / "y.nc", tmp_path / "y.nc.footprint.json"
    data.write_bytes(b"12345")
    footprint.write_text('{"type": "Point", "coordinates": [1, 2]}')
    _old(data)
    claimed, seen = trigger.look({})
    claimed, seen = trigger.look(seen)
    assert claimed == []  # its footprint is still being written
    _old(footprint)
    claimed, seen = trigger.look(seen)
    claimed, seen = trigger.look(seen)
    assert claimed == ["y.nc"] and sorted(os.listdir(tmp_path / CLAIMED)) == ["y.nc", "y.nc.footprint.json"]
    reject(tmp_path, "y.nc", "a test")
    assert sorted(os.listdir(tmp_path / REJECTED)) == ["y.nc", "y.nc.footprint.json", "y.nc.reason"]


def test_a_name_still_waiting_in_claimed_is_left_for_later(tmp_path: Path) -> None:
    (tmp_path / CLAIMED).mkdir()
    (tmp_path / CLAIMED / "a.nc").write_text("first")
    (tmp_path / "a.nc").write_text("second")
    assert claim(tmp_path, ["a.nc"]) == []
    assert (tmp_path / CLAIMED / "a.nc").read_text() == "first" and (tmp_path / "a.nc").exists()


@pytest.fixture
def sky(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    return catalog


def _deliver(catalog: Catalog, into: Path, classes: set[str]) -> list[Path]:
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "SKY")
    return write_inputs(mission, *DAY, into, classes=classes)


def _products(catalog: Catalog) -> int:
    with catalog.session() as s:
        return s.scalar(select(func.count()).select_from(Product)) or 0


def test_the_ingest_task_ingests_claimed_files_and_emits_events_per_class(
    sky: Catalog, tmp_path: Path
) -> None:
    pickup = tmp_path / "SKY"
    files = _deliver(sky, pickup / CLAIMED, {"RAW_EXP", "CAL_BIAS"})
    (pickup / CLAIMED / "notes.txt").write_text("not a product")
    bad = pickup / CLAIMED / "SKY_OPER_RAW_EXP_g_20250301T101500_20250301T102000_000001.fits"
    bad.write_bytes(b"x")
    bad.with_name(bad.name + ".json").write_text(json.dumps({"start": "yesterday"}))

    events = OutletEventAccessors()
    summary = ingest_pickup("SKY", pickup, catalog_url=sky.url, outlet_events=events)

    emitted = {e.dest_asset_key.uri: e.extra for e in events[products_alias("SKY")].asset_alias_events}
    assert set(emitted) == {"proseo://SKY/RAW_EXP", "proseo://SKY/CAL_BIAS"}
    ids = [i for extra in emitted.values() for i in extra["product_ids"]]
    assert len(ids) == len(set(ids)) == len(files) == _products(sky) == summary["new"]
    assert sorted(os.listdir(pickup / CLAIMED)) == []
    done = set(os.listdir(pickup / DONE))
    assert {f.name for f in files} <= done and any(n.endswith(".json") for n in done)  # sidecars too
    rejected = sorted(os.listdir(pickup / REJECTED))
    assert rejected == sorted(
        [bad.name, bad.name + ".json", bad.name + ".reason", "notes.txt", "notes.txt.reason"]
    )
    reason = (pickup / REJECTED / "notes.txt.reason").read_text()
    assert (
        reason.startswith("file: notes.txt\nproblem: ") and "no product class's file-name pattern" in reason
    )
    assert f"{bad.name}.json: start" in (pickup / REJECTED / f"{bad.name}.reason").read_text()
    assert summary["rejected"] == sorted(["notes.txt", bad.name])


def test_a_file_delivered_twice_is_ingested_once(sky: Catalog, tmp_path: Path) -> None:
    pickup = tmp_path / "SKY"
    first = _deliver(sky, pickup / CLAIMED, {"CAL_BIAS"})[0]
    body = first.read_bytes()
    before = ingest_pickup("SKY", pickup, catalog_url=sky.url)
    products = _products(sky)
    (pickup / CLAIMED / first.name).write_bytes(body)  # the same file, delivered again
    events = OutletEventAccessors()
    summary = ingest_pickup("SKY", pickup, catalog_url=sky.url, outlet_events=events)
    assert before["new"] == products and summary["new"] == 0 and summary["done"] == 1
    assert _products(sky) == products  # no second product
    (event,) = events[products_alias("SKY")].asset_alias_events  # announced again: at least once
    assert event.dest_asset_key.uri == "proseo://SKY/CAL_BIAS" and len(event.extra["product_ids"]) == 1
    assert (pickup / DONE / first.name).read_bytes() == body


def test_what_a_failed_run_left_claimed_is_ingested_by_the_next(sky: Catalog, tmp_path: Path) -> None:
    pickup = tmp_path / "SKY"
    files = _deliver(sky, pickup / CLAIMED, {"CAL_BIAS"})
    # The facility's storage root is a file, not a directory: nothing can be copied there.
    storage = Path(os.environ["PROSEO_DATA"]) / "SKY"
    storage.write_text("in the way")
    with pytest.raises(AirflowException, match=r"2 file\(s\) stay claimed for a retry"):
        ingest_pickup("SKY", pickup, catalog_url=sky.url)
    storage.unlink()
    assert sorted(os.listdir(pickup / CLAIMED)) == sorted(f.name for f in files) and _products(sky) == 0
    summary = ingest_pickup("SKY", pickup, catalog_url=sky.url)
    assert summary["new"] == len(files) == _products(sky) and os.listdir(pickup / CLAIMED) == []


def test_one_pickup_dag_per_mission_watched_by_its_trigger(
    sky: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build_pickup_dags({}, sky) == []  # no PROSEO_PICKUP_ROOT: no pickup
    monkeypatch.setenv("PROSEO_PICKUP_ROOT", str(tmp_path / "pickup"))
    monkeypatch.setenv("PROSEO_PICKUP_SETTLE_S", "5")
    reset_settings()  # read once per process; this test changed them
    namespace: dict = {}
    assert build_pickup_dags(namespace, sky) == ["proseo_pickup__SKY"]
    dag = namespace["proseo_pickup__SKY"]
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    assert watcher.trigger.serialize()[1] == {
        "mission": "SKY",
        "directory": str(tmp_path / "pickup" / "SKY"),
        "settle_s": 5.0,
        "poll_s": 10.0,
    }
    assert dag.max_active_runs == 1
    assert dag.get_task("ingest").outlets == [AssetAlias("proseo_pickup_SKY_products")]
    DagSerialization.to_dict(dag)  # the DAG processor can store it (trigger kwargs included)
