"""The DAG factory's inputs: typed blueprints (round trip, stored version-1 ones, broken
ones left out of their shard with an error naming the order) and the shard-count check."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_order import ProcessingOrder
from proseo.errors import ProseoError
from proseo.missions import load_mission
from proseo.orchestration.factory import ShardCountWarning, build_shard, check_shard_files
from proseo.planning import lifecycle, orders
from proseo.planning.blueprint import BlueprintError, build_blueprint, facility_queue, read_blueprint
from proseo.planning.spec import OrderSpec
from proseo.settings import Settings

from tests_paths import MISSION_DIR, REPO

DAY = datetime(2025, 3, 1, tzinfo=UTC)

#: A blueprint as the factory's first version stored it (a catalogue of today holds these).
STORED_V1: dict[str, Any] = {
    "version": 1,
    "dag_id": "proseo__SKY__n1",
    "mission": "SKY",
    "order": "n1",
    "order_id": 7,
    "priority": 50,
    "facility": "local",
    "backend": "local",
    "pool": "proseo__sky__local",
    "pool_slots": 2,
    "input_timeout_s": None,
    "on_input_timeout": "FAIL",
    "levels": [
        {"steps": [11, 12], "classes": ["CALEXP_G", "CALEXP_R"], "waiting": [12]},
        {"steps": [13], "classes": ["STACK_G"], "waiting": []},
    ],
    "job_steps": 3,
}


def _release(catalog: Catalog, identifier: str, night: int = 0) -> ProcessingOrder:
    """An order for one night's g stack, released (each order its own night: a product
    is made by one released order only)."""
    start = DAY + timedelta(days=night)
    with catalog.session() as s:
        orders.create_order(
            s,
            "SKY",
            OrderSpec(
                identifier=identifier,
                requested_classes=["STACK_G"],
                start=start,
                stop=start + timedelta(days=1),
            ),
        )
    lifecycle.approve_order(catalog, "SKY", identifier)
    lifecycle.plan_order(catalog, "SKY", identifier)
    return lifecycle.release_order(catalog, "SKY", identifier)


@pytest.fixture
def sky(catalog: Catalog, data_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """SKY onboarded; the factory's catalogue (PROSEO_CATALOG_URL) is this one."""
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    monkeypatch.setenv("PROSEO_CATALOG_URL", catalog.url)
    return catalog


def test_the_stored_blueprint_round_trips(sky: Catalog) -> None:
    released = _release(sky, "n1")
    stored = released.dag_blueprint
    assert stored is not None and stored["version"] == 1
    blueprint = read_blueprint(stored, order="SKY/n1")
    with sky.session() as s:
        order = s.get(ProcessingOrder, released.id)
        assert build_blueprint(s, order) == blueprint
    assert read_blueprint(blueprint.as_json(), order="SKY/n1") == blueprint
    assert blueprint.dag_id == released.dag_id == "proseo__SKY__n1"
    assert blueprint.job_steps == sum(len(level.steps) for level in blueprint.levels) == 2


def test_a_version_1_blueprint_of_an_existing_catalogue_is_read() -> None:
    blueprint = read_blueprint(STORED_V1, order="SKY/n1")
    assert blueprint.as_json() == STORED_V1
    assert blueprint.levels[0].waiting == [12] and blueprint.pool_slots == 2


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"levels": [{"steps": [11], "classes": [], "waiting": [], "extra": 1}]},
            "levels.0.extra: Extra inputs",
        ),
        ({"version": 2}, "version: Input should be 1"),
        ({"job_steps": 5}, "job_steps is 5 but the levels hold 3 steps"),
        ({"dag_id": "other dag"}, "dag_id: String should match pattern"),
        ({"levels": [{"steps": [11], "classes": [], "waiting": [12]}], "job_steps": 1}, "waiting steps [12]"),
    ],
)
def test_a_broken_blueprint_is_one_error_naming_the_order(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(BlueprintError) as info:
        read_blueprint({**STORED_V1, **change}, order="SKY/n1")
    message = str(info.value)
    assert message.startswith("order SKY/n1: its stored DAG blueprint is invalid")
    assert problem in message
    assert isinstance(info.value, ProseoError)


def test_a_broken_blueprint_leaves_only_its_order_out_of_the_shard(
    sky: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    good, bad, unknown = (_release(sky, name, n) for n, name in enumerate(("good", "bad", "unknown")))
    with sky.session() as s:
        s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.id == bad.id)
            .values(dag_blueprint={**(bad.dag_blueprint or {}), "levels": "none"})
        )
        s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.id == unknown.id)
            .values(dag_blueprint={**(unknown.dag_blueprint or {}), "backend": "lsf"})
        )
    namespace: dict[str, Any] = {}
    with caplog.at_level(logging.ERROR, logger="proseo.orchestration.factory"):
        built = build_shard(namespace, 0, shards=1)
    assert built == [good.dag_id] and set(namespace) == {good.dag_id}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert (
        "order SKY/bad left out of shard 0: order SKY/bad: its stored DAG blueprint is invalid" in errors[0]
    )
    assert "levels: Input should be a valid list" in errors[0]
    assert (
        "order SKY/unknown: facility local uses execution backend 'lsf', which proseo does not know"
        in errors[1]
    )


def test_the_factory_warns_when_shard_files_and_shard_count_disagree(
    tmp_path: Path, sky: Catalog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(4):
        (tmp_path / f"proseo_orders_{n:02d}.py").write_text("# shard\n")
    (tmp_path / "other_dag.py").write_text("# not a shard\n")
    assert check_shard_files(tmp_path / "proseo_orders_00.py", 4) is None

    monkeypatch.setenv("PROSEO_DAG_SHARDS", "8")
    with caplog.at_level(logging.WARNING), pytest.warns(ShardCountWarning) as warned:
        build_shard({"__file__": str(tmp_path / "proseo_orders_00.py")}, 0)
    message = str(warned[0].message)
    assert message.startswith(f"PROSEO_DAG_SHARDS is 8 but {tmp_path} holds 4 shard file(s)")
    assert "orders of the shards without a file get no DAG" in message
    assert message in caplog.text  # and in the DAG processor's log

    with pytest.warns(ShardCountWarning, match="holds 4 shard file.*beyond the count"):
        check_shard_files(tmp_path / "proseo_orders_00.py", 2)


def test_the_repositorys_shard_files_match_the_default_count() -> None:
    files = sorted((REPO / "dags").glob("proseo_orders_*.py"))
    assert check_shard_files(files[0], Settings.model_fields["dag_shards"].default) is None


def test_a_blueprint_carries_the_orders_deadline_from_release(sky: Catalog) -> None:
    assert "deadline" not in (_release(sky, "plain").dag_blueprint or {})  # none: the JSON as before
    due, night = datetime(2026, 6, 1, 12, tzinfo=UTC), DAY + timedelta(days=1)  # not plain's night
    with sky.session() as s:
        orders.create_order(
            s,
            "SKY",
            OrderSpec(
                identifier="due", requested_classes=["STACK_G"], start=night, stop=night + timedelta(days=1)
            ),
        )
        # What the order generator writes on the orders it makes.
        s.execute(update(ProcessingOrder).where(ProcessingOrder.identifier == "due").values(deadline=due))
    lifecycle.approve_order(sky, "SKY", "due")
    lifecycle.plan_order(sky, "SKY", "due")
    stored = lifecycle.release_order(sky, "SKY", "due").dag_blueprint or {}
    assert stored["deadline"] == "2026-06-01T12:00:00Z"
    assert read_blueprint(stored, order="SKY/due").deadline == due


def test_steps_placed_at_other_facilities_get_their_own_tasks_pools_and_operators() -> None:
    from proseo.orchestration.factory import build_dag

    placed = {
        **STORED_V1,
        "levels": [
            {
                "steps": [11, 12, 14],
                "classes": ["CALEXP_G", "CALEXP_R"],
                "waiting": [12],
                "elsewhere": {"site_b": [11], "observatory_hpc": [14]},
            },
            {"steps": [13], "classes": ["STACK_G"], "waiting": []},
        ],
        "job_steps": 4,
        "places": {
            "site_b": {"backend": "local", "pool": "proseo__sky__site_b", "pool_slots": 3},
            "observatory_hpc": {
                "backend": "kubernetes",
                "pool": "proseo__sky__observatory_hpc",
                "pool_slots": 64,
            },
        },
    }
    bp = read_blueprint(placed, order="SKY/n1")
    assert bp.as_json() == placed
    assert bp.levels[0].groups() == [(None, [12]), ("observatory_hpc", [14]), ("site_b", [11])]
    dag = build_dag(bp)
    assert dag.get_task("level_0_run__site_b").pool == "proseo__sky__site_b"
    assert dag.get_task("level_0_run__site_b").queue == "proseo-sky-site_b"
    assert dag.get_task("level_0_run__site_b").task_type == "JobStepOperator"
    pods = dag.get_task("level_0_run__observatory_hpc")
    assert pods.pool == "proseo__sky__observatory_hpc" and pods.task_type == "JobStepPodOperator"
    assert dag.get_task("level_0_wait.process").pool == "proseo__sky__local"
    # The next level waits for every facility's tasks of this one.
    assert dag.get_task("level_1_run").upstream_task_ids == {
        "level_0_run__site_b",
        "level_0_run__observatory_hpc",
        "level_0_wait.process",
    }


def test_a_step_placed_at_a_facility_without_a_place_is_refused() -> None:
    broken = {
        **STORED_V1,
        "levels": [{**STORED_V1["levels"][0], "elsewhere": {"site_b": [11]}}, STORED_V1["levels"][1]],
    }
    with pytest.raises(BlueprintError, match="levels place steps at facilities without a place: site_b"):
        read_blueprint(broken, order="SKY/n1")
    stray = {**broken, "places": {"site_b": {"backend": "local", "pool": "p", "pool_slots": 1}}}
    stray["levels"] = [{**STORED_V1["levels"][0], "elsewhere": {"site_b": [99]}}, STORED_V1["levels"][1]]
    with pytest.raises(BlueprintError, match=r"steps \[99\] placed elsewhere are not steps of the level"):
        read_blueprint(stray, order="SKY/n1")


def test_every_task_of_an_order_goes_to_its_facilitys_queue_and_pool(sky: Catalog) -> None:
    released = _release(sky, "queued")
    namespace: dict[str, Any] = {}
    assert build_shard(namespace, 0, shards=1) == [released.dag_id]
    dag = namespace[released.dag_id]
    assert dag.tasks
    # The CeleryExecutor routes by queue: a worker serves the facilities it can reach.
    assert {(t.task_id, t.queue, t.pool) for t in dag.tasks} == {
        (t.task_id, "proseo-sky-local", "proseo__sky__local") for t in dag.tasks
    }
    assert facility_queue("S5P", "Cloud_A") == "proseo-s5p-cloud_a"


def test_a_version_1_blueprint_without_a_facility_keeps_airflows_default_queue(sky: Catalog) -> None:
    from proseo.orchestration.factory import build_dag

    stored = {**STORED_V1, "facility": None, "pool": None, "pool_slots": None}
    dag = build_dag(read_blueprint(stored, order="SKY/n1"))
    assert {t.queue for t in dag.tasks} == {"default"}
    with_facility = build_dag(read_blueprint(STORED_V1, order="SKY/n1"))
    assert {t.queue for t in with_facility.tasks} == {"proseo-sky-local"}
