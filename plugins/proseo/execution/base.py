"""The one execution interface every backend implements.

A backend turns a :class:`~proseo.execution.jobspec.StepContext` into an Airflow
operator. Backends are chosen by the facility's ``backend`` through the plain mapping
:data:`proseo.execution.BACKENDS` (the way astronomer-cosmos separates its execution
modes): the DAG factory never branches on the backend itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # importing Airflow is the backend modules' business, not the interface's
    from airflow.sdk import BaseOperator

    from proseo.execution.jobspec import StepContext


@runtime_checkable
class ExecutionBackend(Protocol):
    """Makes the task that runs one job step through the wrapper."""

    name: str

    def make_task(self, ctx: StepContext, *, task_id: str, **task_kwargs: Any) -> BaseOperator:
        """An operator running ``ctx``; ``task_kwargs`` go to the operator unchanged
        (priority_weight, pool, retries, ...; see ``StepContext.task_defaults()``).

        The operator's return value (its XCom) is the wrapper's manifest as a dict.
        """
        ...
