"""Airflow's ``[core] hostname_callable`` for several Celery workers on one machine.

Airflow records the host a task ran on (``task_instance.hostname``) from this callable.
Workers of :mod:`proseo.devtools.celery_deployment` share the machine's name, so each gets
its own through ``PROSEO_WORKER_HOSTNAME``, and a test can tell which worker ran a step.
Every other process falls back to Airflow's own answer (the fully qualified name).
"""

from __future__ import annotations

import os
import socket

VARIABLE = "PROSEO_WORKER_HOSTNAME"
CALLABLE = "proseo.devtools.hostname.worker_hostname"


def worker_hostname() -> str:
    """``PROSEO_WORKER_HOSTNAME`` if set, else the machine's fully qualified name."""
    return os.environ.get(VARIABLE) or socket.getfqdn()
