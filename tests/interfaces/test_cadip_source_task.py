"""A CADIP source pulled by its scheduled task: what a failing pull took is still announced.

The CADIP is the test server of cadip_server.py over real HTTP; the S5P mission file
names it under ``sources``; the task is :class:`SourcePullOperator` run against the
``catalog`` fixture (a CADIP source is not probed: it pulls at once), its outlet events
collected by Airflow's own accessors. Airflow keeps a task's outlet events only when the
task succeeds, so a pull that took sessions before another failed must succeed as
``partial`` with the events; one that took nothing must fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time.context import OutletEventAccessors
from cadip_server import CadipWorld, serve
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_product import Product
from proseo.missions import load_mission
from proseo.orchestration.sources import SourcePullOperator, products_alias

from tests_paths import MISSION_DIR

CLASS = "L0__ODB_1_"


@pytest.fixture
def world() -> CadipWorld:
    return CadipWorld()


@pytest.fixture
def cgs(
    catalog: Catalog,
    data_dirs: dict[str, Path],
    tmp_path: Path,
    world: CadipWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Catalog]:
    with serve(world) as root:
        path = tmp_path / "s5p.yaml"
        path.write_text(
            (MISSION_DIR / "s5p.yaml").read_text()
            + f"\nsources:\n  cgs:\n    kind: cadip\n    url: {root}\n    interval: 5 min\n"
            f"    satellite: S5P\n    product_types: [{CLASS}]\n"
            "    credentials: {username_env: CGS_USER, password_env: CGS_PASSWORD}\n"
        )
        with catalog.session() as s:
            sync_mission(s, load_mission(path))
        monkeypatch.setenv("CGS_USER", world.user)
        monkeypatch.setenv("CGS_PASSWORD", world.password)
        yield catalog


def _whole(world: CadipWorld, sid: str) -> None:
    world.add_session(sid)
    for channel in (1, 2):
        for b in (1, 2):
            world.add_block(sid, channel, b, final=b == 2)
        world.add_quality(sid, channel)


def _emitted(events: OutletEventAccessors) -> dict[str, Any]:
    return {e.dest_asset_key.uri: e.extra for e in events[products_alias("S5P", "cgs")].asset_alias_events}


def test_sessions_taken_before_another_failed_are_announced_and_a_pull_taking_nothing_fails(
    cgs: Catalog, world: CadipWorld
) -> None:
    _whole(world, "S5P_20250301T114500_A")
    _whole(world, "S5P_20250301T120000_B")
    cut = next(e for e in world.files if e.json["SessionId"] == "S5P_20250301T120000_B")
    world.cut.add(cut.json["Id"])
    op = SourcePullOperator(task_id="pull", mission="S5P", source="cgs", catalog_url=cgs.url)

    events = OutletEventAccessors()
    summary = op.execute({"outlet_events": events})
    with cgs.session() as s:
        held = sorted(s.scalars(select(Product.id)))
    assert len(held) == 2, "session A's two channels"
    assert _emitted(events) == {f"proseo://S5P/{CLASS}": {"product_ids": held}}
    assert summary["status"] == "partial" and summary["products"] == {CLASS: 2}
    (failure,) = summary["failures"]
    assert "session S5P_20250301T120000_B" in failure and cut.json["Name"] in failure

    world.cut.add(cut.json["Id"])  # B fails again, and nothing else is new: the task fails
    nothing = OutletEventAccessors()
    with pytest.raises(AirflowException, match=r"mission S5P: source cgs: session S5P_20250301T120000_B"):
        op.execute({"outlet_events": nothing})
    assert _emitted(nothing) == {}

    after = OutletEventAccessors()  # the next run takes B and announces only its products
    assert op.execute({"outlet_events": after})["status"] == "pulled"
    (extra,) = _emitted(after).values()
    assert len(extra["product_ids"]) == 2 and not set(extra["product_ids"]) & set(held)
