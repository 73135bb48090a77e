"""Errors of the execution layer (no Airflow import: the job spec is built in the core)."""

from __future__ import annotations

from proseo.errors import ProseoError


class ExecutionError(ProseoError):
    """A job step cannot be handed to a backend or its run could not be read back.

    Names the job step (and the order, where known) so that the message stands alone
    in a task log.
    """

    def __init__(self, message: str, *, job_step_id: int | str | None = None, order: str | None = None):
        self.job_step_id = job_step_id
        self.order = order
        where = "/".join(
            p for p in (order, f"job step {job_step_id}" if job_step_id is not None else None) if p
        )
        super().__init__(f"{where}: {message}" if where else message)


class InputsNotReady(ExecutionError):
    """An input of the job step is not there yet.

    Either a mandatory input query is unsatisfied (the step waits for a delivery), or
    an input is an output of an upstream job step that has not registered it. The job
    step cannot run yet; the orchestrator treats this as "not ready", not as a failure.
    """

    def __init__(
        self,
        message: str,
        *,
        job_step_id: int,
        product_type: str,
        upstream_step_id: int | None = None,
        order: str | None = None,
    ) -> None:
        self.product_type = product_type
        self.upstream_step_id = upstream_step_id
        super().__init__(message, job_step_id=job_step_id, order=order)


class UnknownBackend(ExecutionError):
    """A facility names a backend that proseo.execution does not know."""

    exit_code = 2
