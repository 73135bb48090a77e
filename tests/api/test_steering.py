"""Steering an order over REST: Airflow's address from settings only, both sides or neither.

The /proseo app runs as in test_api.py (real JWTs from Airflow's SimpleAuthManager,
the catalogue on SQLite and PostgreSQL); Airflow's REST API is the stand-in of
``airflow_standin.py``, which refuses writes to callers whose Airflow role is viewer,
as SimpleAuthManager does. It records, at every call, the order's state in the
catalogue, so the tests see which side moved first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from airflow_standin import AirflowStandIn
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import Job, JobStep
from proseo.planning import lifecycle
from proseo.planning import orders as ops
from proseo.settings import reset_settings

DAG = "proseo__SKY__night-1"
BASE = "/proseo/api/v1/missions/SKY/orders/night-1"


def _state(catalog: Catalog) -> str:
    with catalog.session() as session:
        return ops.get_order(session, "SKY", "night-1").state


def _snapshot(catalog: Catalog) -> tuple[str, int, list[tuple[int, str]]]:
    """The order's state, its number of history events and its steps' states."""
    with catalog.session() as session:
        order = ops.get_order(session, "SKY", "night-1")
        steps = session.execute(
            select(JobStep.id, JobStep.state).join(Job).where(Job.order_id == order.id).order_by(JobStep.id)
        ).all()
        return order.state, len(order.events), [tuple(s) for s in steps]


@pytest.fixture
def airflow(world: Catalog) -> Iterator[AirflowStandIn]:
    with AirflowStandIn(observe=lambda method, path: _state(world)) as standin:
        yield standin


@pytest.fixture
def configured(airflow: AirflowStandIn) -> Iterator[str]:
    """PROSEO_AIRFLOW_URL names the stand-in (restored afterwards)."""
    before = os.environ.get("PROSEO_AIRFLOW_URL")
    os.environ["PROSEO_AIRFLOW_URL"] = airflow.url
    reset_settings()
    yield airflow.url
    if before is None:
        os.environ.pop("PROSEO_AIRFLOW_URL", None)
    else:
        os.environ["PROSEO_AIRFLOW_URL"] = before
    reset_settings()


def _client(world: Catalog, **kw: Any) -> Any:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from proseo.api.app import create_app

    outer = FastAPI()
    outer.mount("/proseo", create_app(catalog_url=world.url, **kw))
    return TestClient(outer)


@pytest.fixture
def http(world: Catalog, configured: str) -> Iterator[Any]:
    """The app as the plugin builds it when Airflow's address comes from the settings."""
    with _client(world) as client:
        yield client


@pytest.fixture
def released(world: Catalog, airflow: AirflowStandIn) -> Catalog:
    """night-1 released, its DAG known to Airflow with a running run."""
    lifecycle.release_order(world, "SKY", "night-1")
    airflow.add_dag(DAG, tasks={"calib": "running", "detect": "failed", "catalog": "skipped"})
    return world


def _as(token_for: Any, user: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user, role=role)}"}


# --- where the token goes ------------------------------------------------------------------


@pytest.mark.parametrize("source", ["settings", "create_app"])
def test_a_forged_host_header_never_receives_the_token(
    world: Catalog, released: Catalog, airflow: AirflowStandIn, token_for: Any, source: str
) -> None:
    with AirflowStandIn() as attacker:
        before = os.environ.pop("PROSEO_AIRFLOW_URL", None)
        if source == "settings":
            os.environ["PROSEO_AIRFLOW_URL"] = airflow.url
        reset_settings()
        try:
            kw = {"airflow_url": airflow.url} if source == "create_app" else {}
            with _client(world, **kw) as client:
                headers = {**_as(token_for, "ops", "user"), "Host": attacker.url.removeprefix("http://")}
                answer = client.post(f"{BASE}/suspend", headers=headers)
        finally:
            os.environ.pop("PROSEO_AIRFLOW_URL", None)
            if before is not None:
                os.environ["PROSEO_AIRFLOW_URL"] = before
            reset_settings()
        assert attacker.calls == []
    assert answer.status_code == 200, answer.text
    assert [(c.method, c.path) for c in airflow.writes()] == [("PATCH", f"/api/v2/dags/{DAG}")]
    assert airflow.dags[DAG]["is_paused"] is True


def test_without_an_airflow_address_steering_is_refused_and_nothing_changes(
    world: Catalog, released: Catalog, token_for: Any
) -> None:
    before = os.environ.pop("PROSEO_AIRFLOW_URL", None)
    reset_settings()
    try:
        with _client(world) as client:
            snapshot = _snapshot(world)
            answer = client.post(f"{BASE}/cancel", headers=_as(token_for, "ops", "user"))
    finally:
        if before is not None:
            os.environ["PROSEO_AIRFLOW_URL"] = before
        reset_settings()
    assert answer.status_code == 503
    assert "PROSEO_AIRFLOW_URL" in answer.json()["detail"]
    assert _snapshot(world) == snapshot


# --- Airflow refuses: nothing changes ------------------------------------------------------


def _suspended(world: Catalog) -> None:
    lifecycle.suspend_order(world, "SKY", "night-1", force=True)


def _failed(world: Catalog) -> None:
    lifecycle.cancel_order(world, "SKY", "night-1")


@pytest.mark.parametrize(
    ("operation", "prepare", "verb"),
    [
        ("cancel", None, "pause"),
        ("suspend", None, "pause"),
        ("resume", _suspended, "unpause"),
        ("retry", _failed, "unpause"),
    ],
)
def test_an_operator_who_is_only_an_airflow_viewer_changes_nothing(
    http: Any,
    released: Catalog,
    airflow: AirflowStandIn,
    token_for: Any,
    operation: str,
    prepare: Any,
    verb: str,
) -> None:
    if prepare is not None:
        prepare(released)
        airflow.dags[DAG]["is_paused"] = operation == "resume"
    snapshot = _snapshot(released)
    paused = airflow.dags[DAG]["is_paused"]
    answer = http.post(f"{BASE}/{operation}", headers=_as(token_for, "ops", "viewer"))
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["error"] == "SteeringError" and (body["mission"], body["order"]) == ("SKY", "night-1")
    assert f"Airflow refused to {verb} DAG {DAG}" in body["detail"]
    assert "HTTP 403" in body["detail"] and "nothing was changed" in body["detail"]
    assert _snapshot(released) == snapshot
    assert [c.status for c in airflow.writes()] == [403]
    assert airflow.dags[DAG]["is_paused"] == paused and airflow.runs[DAG][0]["state"] == "running"


def test_an_unreachable_airflow_is_a_502_and_nothing_changes(
    world: Catalog, released: Catalog, token_for: Any
) -> None:
    with AirflowStandIn() as gone:
        url = gone.url
    snapshot = _snapshot(world)
    with _client(world, airflow_url=url) as client:
        answer = client.post(f"{BASE}/cancel", headers=_as(token_for, "ops", "user"))
    assert answer.status_code == 502
    assert "nothing was changed, the order is still RELEASED" in answer.json()["detail"]
    assert _snapshot(world) == snapshot


def test_an_illegal_transition_is_refused_before_airflow_is_called(
    http: Any, released: Catalog, airflow: AirflowStandIn, token_for: Any
) -> None:
    answer = http.post(f"{BASE}/resume", headers=_as(token_for, "ops", "user"))
    assert answer.status_code == 409
    assert airflow.calls == []


def test_when_the_catalogue_refuses_after_airflow_the_paused_flag_is_put_back(
    world: Catalog, released: Catalog, airflow: AirflowStandIn, http: Any, token_for: Any
) -> None:
    """Someone cancels while our suspend waits for Airflow: the suspend fails, the DAG is unpaused."""

    def concurrent_cancel(method: str, path: str) -> str:
        if method == "PATCH" and not airflow.writes():
            lifecycle.cancel_order(world, "SKY", "night-1", message="by someone else")
        return _state(world)

    airflow.observe = concurrent_cancel
    answer = http.post(f"{BASE}/suspend", headers=_as(token_for, "ops", "user"))
    assert answer.status_code == 409 and "cannot suspend an order in state FAILED" in answer.json()["detail"]
    assert [c.body for c in airflow.writes()] == [{"is_paused": True}, {"is_paused": False}]
    assert airflow.dags[DAG]["is_paused"] is False


# --- Airflow accepts: both sides, in the documented order ----------------------------------


def test_cancel_pauses_then_commits_then_fails_the_runs(
    http: Any, released: Catalog, airflow: AirflowStandIn, token_for: Any
) -> None:
    answer = http.post(f"{BASE}/cancel", headers=_as(token_for, "ops", "user"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["order"]["state"] == "FAILED"
    assert answer.json()["airflow"] == f"{DAG}: paused, run(s) run-1 marked failed"
    writes = [(c.method, c.path.rsplit("/", 1)[-1], c.observed) for c in airflow.writes()]
    assert writes == [("PATCH", DAG, "RELEASED"), ("PATCH", "run-1", "FAILED")]
    assert airflow.dags[DAG]["is_paused"] is True and airflow.runs[DAG][0]["state"] == "failed"


def test_suspend_resume_and_retry_move_both_sides(
    http: Any, released: Catalog, airflow: AirflowStandIn, token_for: Any
) -> None:
    user = _as(token_for, "ops", "user")
    suspended = http.post(f"{BASE}/suspend", headers=user, json={"force": True})
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["order"]["state"] == "PLANNED" and airflow.dags[DAG]["is_paused"] is True
    assert suspended.json()["airflow"] == f"{DAG}: paused, 1 running task(s) stopped"
    resumed = http.post(f"{BASE}/resume", headers=user)
    assert resumed.json()["order"]["state"] == "RELEASED" and airflow.dags[DAG]["is_paused"] is False
    http.post(f"{BASE}/cancel", headers=user)
    retried = http.post(f"{BASE}/retry", headers=user)
    assert retried.status_code == 200, retried.text
    assert retried.json()["order"]["state"] == "RELEASED" and airflow.dags[DAG]["is_paused"] is False
    clear = airflow.writes()[-1]
    assert clear.path.endswith("/clearTaskInstances") and clear.observed == "RELEASED"
    assert sorted(clear.body["task_ids"]) == ["catalog", "detect"]
    # Airflow first for suspend and resume, the catalogue first before clearing for retry.
    observed = [(c.body, c.observed) for c in airflow.writes() if c.path == f"/api/v2/dags/{DAG}"]
    assert observed == [
        ({"is_paused": True}, "RELEASED"),  # suspend: Airflow first
        ({"is_paused": False}, "PLANNED"),  # resume: Airflow first
        ({"is_paused": True}, "RELEASED"),  # cancel: pause first
        ({"is_paused": False}, "FAILED"),  # retry: unpause first
    ]
