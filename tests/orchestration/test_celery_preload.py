"""A Celery worker started with proseo's configuration imports proseo before its pool forks.

Each check runs in a fresh interpreter: what matters is what a worker's main process holds
after Celery's own start-up step (``loader.init_worker()``, which sends ``import_modules``),
and this test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from celery import Celery
from proseo.orchestration.celery_preload import CELERY_CONFIG, PRELOAD
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

before = [name for name in PRELOAD if name in sys.modules]
s3_before = "airflow.providers.amazon.aws.hooks.s3" in sys.modules
app = Celery("probe", config_source=CELERY_CONFIG)
app.loader.init_worker()
from airflow.sdk.listener import get_listener_manager
listeners = [getattr(p, "__name__", type(p).__name__) for p in get_listener_manager().pm.get_plugins()]
print(json.dumps({
    "before": before,
    "after": [name for name in PRELOAD if name in sys.modules],
    "dagbag": "airflow.dag_processing.dagbag" in sys.modules,
    "s3_asset_handlers": [s3_before, "airflow.providers.amazon.aws.hooks.s3" in sys.modules],
    "cached": get_listener_manager.cache_info().currsize,
    "listeners": listeners,
    "same_config": CELERY_CONFIG == dict(DEFAULT_CELERY_CONFIG),
}))
"""


def _probe(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_start_imports_proseo_and_builds_the_listener_manager_once(tmp_path: Path) -> None:
    found = _probe(tmp_path)
    # Airflow's provider modules do not pull in proseo's DAG factory by themselves ...
    assert "proseo.orchestration.factory" not in found["before"]
    # ... the worker's start-up does, with every module a task would import for itself.
    from proseo.orchestration.celery_preload import PRELOAD

    assert found["after"] == list(PRELOAD)
    assert found["dagbag"] is True
    # The task SDK's asset-URI handlers are initialised (every provider's, Amazon's S3 among them).
    assert found["s3_asset_handlers"] == [False, True]
    # The task SDK's listener manager is built (plugins loaded) and cached for the pool's forks,
    # proseo's listeners among its plugins.
    assert found["cached"] == 1
    assert "proseo.orchestration.listeners" in found["listeners"]
    # Nothing else of Airflow's Celery configuration changes.
    assert found["same_config"] is True
