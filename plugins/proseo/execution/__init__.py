"""Running job steps: one interface, one module per backend (local, kubernetes).

``BACKENDS`` maps a facility's ``backend`` to the class that implements it;
:func:`backend_for` imports that module only when asked, so a local facility never
pays for (or needs) the Kubernetes provider. Importing this package imports no Airflow.

* :mod:`proseo.execution.jobspec` (no Airflow): job step in the catalogue -> StepContext
* :mod:`proseo.execution.base`: the ``ExecutionBackend`` protocol
* :mod:`proseo.execution.local`: ``LocalWrapperOperator`` runs ``proseo-wrapper`` as a child process
  (forked from the task process by :mod:`proseo.execution.forked`, or exec'd)
* :mod:`proseo.execution.kubernetes`: a ``KubernetesPodOperator`` running the processor image
"""

from __future__ import annotations

import importlib
from functools import cache

from proseo.execution.base import ExecutionBackend
from proseo.execution.errors import ExecutionError, InputsNotReady, UnknownBackend
from proseo.execution.jobspec import StepContext, build_job_spec

BACKENDS: dict[str, str] = {
    "local": "proseo.execution.local:LocalBackend",
    "kubernetes": "proseo.execution.kubernetes:KubernetesBackend",
}


@cache
def backend_for(name: str) -> ExecutionBackend:
    """The backend for a facility's ``backend`` value (its module is imported on first use)."""
    try:
        path = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(
            f"unknown execution backend {name!r} (known: {', '.join(sorted(BACKENDS))})"
        ) from None
    module_name, _, class_name = path.partition(":")
    backend = getattr(importlib.import_module(module_name), class_name)()
    return backend


__all__ = [
    "BACKENDS",
    "ExecutionBackend",
    "ExecutionError",
    "InputsNotReady",
    "StepContext",
    "UnknownBackend",
    "backend_for",
    "build_job_spec",
]
