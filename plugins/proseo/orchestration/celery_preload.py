"""Celery workers import proseo once, before they fork, not once per task.

Every Airflow task is a fresh fork that parses its DAG file. Under the LocalExecutor the
fork's parent is the scheduler, which has already imported proseo (the plugin's listeners),
so parsing an order DAG costs little. A Celery worker's pool children have imported only
what Airflow's own ``import_modules`` hook preloads (operators, jinja2, kubernetes), so each
task paid 1-2 s before doing anything: loading every plugin to build the task SDK's
listener manager (the task runner's first call), then importing the DAG factory, the
catalogue models and the step operators. Task logs show it: "Pre Execute" to "DAG bundles
loaded" took 1.0-2.2 s on a Celery worker against 0.01-0.1 s under the LocalExecutor, and the
first 100-step distributed bench (2026-12-04) had a median task of 2.19 s against 0.67 s.
With the modules preloaded, a task still paid 0.4-0.6 s: the first ``Asset`` of a process
initialises the task SDK's asset-URI handlers, which imports every provider's (the Amazon
S3 hook and boto3 among them); :func:`~proseo.orchestration.listeners.warm_task_path` does
that too, as it does in the scheduler for LocalExecutor workers.

Point Airflow at this configuration to do that work once in the worker's main process:

    AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=proseo.orchestration.celery_preload.CELERY_CONFIG

It is Airflow's own default configuration; importing it connects :func:`preload` to Celery's
``import_modules`` signal, which only a worker sends, at start-up, before its pool forks
(Airflow's Celery provider preloads its operators the same way). The children inherit
the modules and the listener manager.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules

from proseo.orchestration.listeners import TASK_PATH, warm_task_path

#: What :func:`preload` imports (the plugin and its listeners come with the listener manager).
PRELOAD: tuple[str, ...] = TASK_PATH

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)


@import_modules.connect
def preload(*_: Any, **__: Any) -> None:
    """In a Celery worker's main process: what every task would otherwise do for itself."""
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager()  # loads the plugins and registers their listeners; cached
    warm_task_path()  # as the scheduler does for LocalExecutor workers: PRELOAD, asset-URI handlers
