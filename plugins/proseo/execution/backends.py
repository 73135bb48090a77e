"""Which operator runs a facility's job steps: ONE mapping, imported lazily.

A facility's ``backend`` names an entry of :data:`OPERATORS`; the DAG factory asks
:func:`operator_class` for the processor task of an order's DAG and never branches on
the backend itself. Each class is imported only when an order of that backend is
built, so a local facility never imports the Kubernetes provider (seconds per process).

Adding a backend is one module and one line here (``execution/slurm.py`` is the
latest example) with an operator that

* takes ``job_step_id`` (templated: the factory maps it), ``mission`` and
  ``catalog_url`` (``None``: the worker's ``PROSEO_CATALOG_URL``), plus any operator
  argument (pool, priority, retries, callbacks come from the factory's default_args);
* calls :func:`proseo.execution.steptask.begin` with its backend name before the run
  (upstream checks, step RUNNING, the :class:`~proseo.execution.jobspec.StepContext`),
  runs ``proseo-wrapper`` with ``ctx.spec`` on its resources and reads the manifest
  back, then returns :func:`proseo.execution.steptask.finish` (registration, Asset
  events, order roll-up; a FAILED manifest fails the task);
* ends what it started in ``on_kill``;

plus its value in :class:`proseo.missions.types.Backend` with its facility settings
(``Facility.slurm``, say). Importing this module imports no Airflow.
"""

from __future__ import annotations

import importlib
from typing import Any

from proseo.execution.errors import UnknownBackend

#: facility backend -> "module:Class" of the processor task's operator.
OPERATORS: dict[str, str] = {
    "local": "proseo.execution.local:JobStepOperator",
    "kubernetes": "proseo.execution.kubernetes:JobStepPodOperator",
    "slurm": "proseo.execution.slurm:JobStepSlurmOperator",
}


def operator_class(backend: str | None, *, order: str, facility: str | None) -> type[Any]:
    """The operator class for ``backend`` (its module imported now); ``order`` and
    ``facility`` only name the place in the error for an unknown backend."""
    path = OPERATORS.get(backend or "")
    if path is None:
        raise UnknownBackend(
            f"order {order}: facility {facility or '(default)'} uses execution backend {backend!r}, "
            f"which proseo does not know (known: {', '.join(sorted(OPERATORS))})"
        )
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
