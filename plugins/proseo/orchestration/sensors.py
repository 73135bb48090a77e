"""The sensor that holds a job step until its inputs are complete, without a worker slot.

``JobStepInputSensor`` starts in the triggerer (``start_from_trigger``): the scheduler
turns the task instance straight into a deferred one running
:class:`~proseo.orchestration.triggers.JobStepInputsTrigger` with the sensor's
``start_trigger_args``. When the inputs are complete the trigger ends the task
instance itself (``end_from_trigger``: Airflow's ``TaskSuccessEvent``), so a sensor
that only waits never occupies a worker at all; only a timeout or an error resumes
on a worker, in :meth:`JobStepInputSensor.execute_complete`.

How Airflow 3.3 does this (``airflow/models/taskinstance.py`` ``defer_task``,
``airflow/triggers/base.py``, ``airflow/jobs/triggerer_job_runner.py``): the trigger
row is created from ``start_trigger_args.trigger_kwargs`` as written in the
serialised DAG, unrendered; the triggerer then renders, on the trigger, each
operator template field that is also a trigger kwarg and a trigger attribute. So
``job_step_id`` and ``catalog_url`` are template fields here, trigger kwargs of the
same names, and the trigger converts them only when it runs. Values that are not
plain literals or template strings (an ``XComArg``, or the ``MappedArgument`` a
mapped task group passes) cannot be rendered by the triggerer: for those the sensor
starts on a worker, which resolves them and defers at once with the same trigger
(:meth:`JobStepInputSensor.execute`); the wait itself still holds no worker slot.

Outcome (``event["status"]``):

* ``ready``: the task succeeds with a small dict as XCom (set by the triggerer; on a
  worker, e.g. under ``dag.test()``, returned by ``execute_complete``).
* ``error``: ``AirflowException`` (retries apply; a database outage is transient).
* ``timeout``: with ``on_timeout="FAIL"``, ``AirflowSensorTimeout`` (an
  ``AirflowException`` that is not retried); with ``"RUN_WITH_AVAILABLE"``, the step's
  unsatisfied mandatory inputs are given up
  (:func:`~proseo.planning.readiness.give_up_waiting`: they take what exists, the
  explanation says so) and the sensor succeeds, so the step runs with what exists.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, TaskInstanceState
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout
from airflow.triggers.base import StartTriggerArgs

from proseo.catalog.db import Catalog
from proseo.orchestration.triggers import (
    CLASSPATH,
    ON_TIMEOUT,
    TIMEOUT_GRACE_S,
    JobStepInputsTrigger,
    ready_result,
)
from proseo.planning.readiness import give_up_waiting

DEFAULT_POLL_INTERVAL = 30.0


def _literal(value: Any) -> bool:
    """A value the triggerer can take as is, or render (a template string)."""
    return value is None or isinstance(value, str | int | float | bool)


class JobStepInputSensor(BaseSensorOperator):
    """Wait, deferred, until the job step's inputs are in the catalogue and its upstream steps completed.

    :param job_step_id: the job step (templated).
    :param catalog_url: the catalogue (templated); ``None`` means ``PROSEO_CATALOG_URL``
        where the trigger and the worker run, so no credentials end up in the DAG.
    :param poll_interval: seconds between polls; all sensors with the same catalogue
        and interval share one poll in the triggerer.
    :param timeout_s: give up waiting after this many seconds (``None``: wait on).
    :param on_timeout: ``FAIL`` or ``RUN_WITH_AVAILABLE``.
    """

    template_fields = ("catalog_url", "job_step_id")
    ui_color = "#fde0c5"
    # Class level: a classically mapped sensor (partial/expand) is never instantiated at
    # parse time, so it starts on a worker and defers from there.
    start_trigger_args = StartTriggerArgs(
        trigger_cls=CLASSPATH,
        trigger_kwargs={},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )
    start_from_trigger = False

    def __init__(
        self,
        *,
        job_step_id: Any,
        catalog_url: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout_s: float | None = None,
        on_timeout: str = "FAIL",
        **kwargs: Any,
    ) -> None:
        if on_timeout not in ON_TIMEOUT:
            raise ValueError(f"on_timeout must be one of {', '.join(ON_TIMEOUT)}, not {on_timeout!r}")
        if timeout_s is not None and float(timeout_s) < 0:
            raise ValueError(f"timeout_s must not be negative, not {timeout_s!r}")
        if timeout_s is not None:
            kwargs.setdefault("timeout", float(timeout_s) + TIMEOUT_GRACE_S)
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.job_step_id = job_step_id
        self.catalog_url = catalog_url
        self.poll_interval = float(poll_interval)
        self.timeout_s = float(timeout_s) if timeout_s is not None else None
        self.on_timeout = on_timeout
        if _literal(job_step_id) and _literal(catalog_url):
            self.start_from_trigger = True
            # Replaced, not mutated: the class attribute is shared by every instance.
            self.start_trigger_args = dataclasses.replace(
                type(self).start_trigger_args,
                trigger_kwargs=self.trigger_kwargs(),
                timeout=self.airflow_timeout(),
            )
        else:
            self.start_from_trigger = False

    def trigger_kwargs(self) -> dict[str, Any]:
        """The trigger's arguments: JSON values only (they go into the serialised DAG)."""
        return {
            "catalog_url": self.catalog_url,
            "job_step_id": self.job_step_id,
            "poll_interval": self.poll_interval,
            "timeout_s": self.timeout_s,
            "on_timeout": self.on_timeout,
            "end_from_trigger": True,
        }

    def airflow_timeout(self) -> timedelta | None:
        """Airflow's own deferral timeout: a safety net after the trigger's."""
        return None if self.timeout_s is None else timedelta(seconds=self.timeout_s + TIMEOUT_GRACE_S)

    def execute(self, context: Context) -> Any:
        """Only when not started from the triggerer: defer at once with resolved arguments."""
        self.defer(
            trigger=JobStepInputsTrigger(**self.trigger_kwargs()),
            method_name="execute_complete",
            timeout=self.airflow_timeout(),
        )

    def poke(self, context: Context) -> bool:  # pragma: no cover - the sensor always defers
        raise AirflowException("JobStepInputSensor always defers; poke mode is not supported")

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        if event == TaskInstanceState.SUCCESS:
            # dag.test() resumes the task with the payload of the trigger's TaskSuccessEvent
            # (a real triggerer ends the task instance itself and never gets here).
            return ready_result({"job_step_id": self.job_step_id, "message": "inputs complete"})
        event = dict(event or {})
        status = event.get("status")
        step = event.get("job_step_id", self.job_step_id)
        message = str(event.get("message") or "")
        if status == "ready":
            self.log.info("inputs complete: %s", message)
            return ready_result(event)
        if status == "timeout":
            if self.on_timeout == "RUN_WITH_AVAILABLE":
                reason = f"input timeout after {self.timeout_s} s: running with what exists"
                with Catalog(self.catalog_url or None).session() as session:
                    result = give_up_waiting(session, int(self.job_step_id), reason)
                self.log.warning("%s; gave up: %s", message, "; ".join(result.given_up) or "nothing")
                return {
                    "job_step_id": step,
                    "status": "timeout",
                    "message": message,
                    "given_up": list(result.given_up),
                }
            raise AirflowSensorTimeout(f"job step {step}: {message}")
        raise AirflowException(f"job step {step}: {message or f'unexpected trigger event {event!r}'}")
