"""Running job steps: the step task around the run, one operator module per backend.

Importing this package imports no Airflow (the job spec is built in the core too).

* :mod:`proseo.execution.jobspec` (no Airflow): job step in the catalogue -> StepContext
* :mod:`proseo.execution.backends` (no Airflow): ``OPERATORS``, facility backend ->
  operator class, imported lazily; says what a new backend's operator must do
* :mod:`proseo.execution.steptask`: everything around the run, for every backend:
  upstream checks, RUNNING, registration, Asset events, roll-up, retry/failure callbacks
* :mod:`proseo.execution.local`: ``JobStepOperator`` runs ``proseo-wrapper`` as a child
  process of the worker (forked from the task process by :mod:`proseo.execution.forked`,
  or exec'd)
* :mod:`proseo.execution.kubernetes`: ``JobStepPodOperator``, a KubernetesPodOperator
  running the processor image
"""

from __future__ import annotations

from proseo.execution.errors import ExecutionError, InputsNotReady, UnknownBackend
from proseo.execution.jobspec import StepContext, build_job_spec

__all__ = [
    "ExecutionError",
    "InputsNotReady",
    "StepContext",
    "UnknownBackend",
    "build_job_spec",
]
