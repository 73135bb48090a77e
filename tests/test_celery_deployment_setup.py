"""The Celery deployment's set-up against the real services, without starting Airflow:
each instance claims a Redis database of its own and releases only its own, its
processes are configured for the CeleryExecutor on its PostgreSQL database, and a worker's
name comes from ``PROSEO_WORKER_HOSTNAME``."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from proseo.devtools.celery_deployment import CeleryDeployment
from proseo.devtools.hostname import CALLABLE, VARIABLE, worker_hostname
from proseo.devtools.services import CLAIM_KEY, REDIS, claim_redis_db


def test_two_instances_claim_different_redis_databases_and_release_only_their_own(tmp_path: Path) -> None:
    one = CeleryDeployment(tmp_path / "one", workers=[["a"]])
    two = CeleryDeployment(tmp_path / "two", workers=[["b"]])
    one.redis_db = claim_redis_db(REDIS, one.instance)
    two.redis_db = claim_redis_db(REDIS, two.instance)
    try:
        assert one.redis_db != two.redis_db
        mine = redis.Redis.from_url(f"{REDIS}/{one.redis_db}")
        mine.set("queued-message", "x")
        assert mine.get(CLAIM_KEY) == one.instance.encode()
        # Another instance's release must not flush a database it does not hold.
        two_db, two.redis_db = two.redis_db, one.redis_db
        two._release_redis_db()
        assert mine.get("queued-message") == b"x"
        two.redis_db = two_db
        one._release_redis_db()
        assert mine.get("queued-message") is None and mine.get(CLAIM_KEY) is None
        assert one.redis_db is None
        mine.close()
    finally:
        for instance in (one, two):
            instance._release_redis_db()


def test_every_process_runs_the_celery_executor_on_its_own_postgres_database(tmp_path: Path) -> None:
    deployment = CeleryDeployment(tmp_path, workers=[["default", "q1"], ["q2"]], heartbeat_timeout_s=30)
    deployment.redis_db = 7
    env = deployment.env()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(f"/{deployment.database}")
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"{REDIS}/7"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{deployment.metadata_url}"
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == CALLABLE
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "30"
    with pytest.raises(ValueError, match="at least one queue"):
        CeleryDeployment(tmp_path, workers=[["a"], []])


def test_the_hostname_callable_names_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "worker1")
    assert worker_hostname() == "worker1"
    monkeypatch.delenv(VARIABLE)
    assert worker_hostname()
