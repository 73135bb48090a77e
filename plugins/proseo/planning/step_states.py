"""The job-step life cycle: which state may follow which, and why it changes.

The order's table is :mod:`proseo.planning.states`; this is the one for job steps.
Every write of a step's state goes through :func:`move_step` (one ORM row) or
:func:`sources_of` (the ``WHERE state IN (...)`` of a bulk UPDATE), so planning,
readiness, the step task, registration, callbacks and order operations cannot leave a
step in a state nobody expects (a COMPLETED step set back to RUNNING, a FAILED step
completed behind the order's back).

::

    PLANNED ------> RUNNING ----> COMPLETED
      |  ^            |  ^ (next try)
      v  |            v  |
    WAITING_INPUT    FAILED --(order retry)--> PLANNED / WAITING_INPUT

A running step whose try failed stays RUNNING while Airflow retries it (the reason is
noted on the step); only the last try makes it FAILED.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from proseo.catalog.model_order import StepState as S
from proseo.errors import ProseoError


class StepOp(StrEnum):
    """Why a step's state changes (named in errors)."""

    INPUTS_COMPLETE = "inputs-complete"  # readiness: every mandatory input is satisfied
    WAIT = "wait"  # order retry: a mandatory input was never satisfied
    START = "start"  # the step task starts a try
    COMPLETE = "complete"  # registration of the manifest
    FAIL = "fail"  # the run failed for good, an upstream step failed, input timeout
    CANCEL = "cancel"  # the order was cancelled
    NOT_RUN = "not-run"  # the order's DAG run ended without running the step
    RETRY = "retry"  # order retry: failed and skipped steps start over
    SKIP = "skip"  # not made: the products exist (reserved)


#: operation -> (the states it applies to, the state it leads to).
STEP_TRANSITIONS: dict[StepOp, tuple[frozenset[S], S]] = {
    StepOp.INPUTS_COMPLETE: (frozenset({S.WAITING_INPUT}), S.PLANNED),
    StepOp.WAIT: (frozenset({S.PLANNED}), S.WAITING_INPUT),
    StepOp.START: (frozenset({S.PLANNED, S.READY, S.RUNNING}), S.RUNNING),
    # Registration completes a running step; a repeated registration finds it COMPLETED;
    # a manifest registered outside a task (recovery, an operator) completes a planned one.
    StepOp.COMPLETE: (frozenset({S.PLANNED, S.READY, S.RUNNING, S.COMPLETED}), S.COMPLETED),
    StepOp.FAIL: (frozenset({S.PLANNED, S.WAITING_INPUT, S.READY, S.RUNNING, S.FAILED}), S.FAILED),
    StepOp.CANCEL: (frozenset({S.PLANNED, S.WAITING_INPUT, S.READY, S.RUNNING}), S.FAILED),
    StepOp.NOT_RUN: (frozenset({S.PLANNED, S.WAITING_INPUT, S.READY, S.RUNNING}), S.FAILED),
    StepOp.RETRY: (frozenset({S.FAILED, S.SKIPPED}), S.PLANNED),
    StepOp.SKIP: (frozenset({S.PLANNED, S.WAITING_INPUT, S.READY}), S.SKIPPED),
}

#: States a step never leaves by itself (only an order operation moves it again).
FINAL_STEP_STATES = frozenset({S.COMPLETED, S.FAILED, S.SKIPPED})


class IllegalStepTransition(ProseoError):
    """A job step cannot go where it was asked to: names the step, its state and the operation."""

    exit_code = 4

    def __init__(self, op: StepOp, state: str, *, job_step_id: int | None) -> None:
        sources, target = STEP_TRANSITIONS[op]
        self.op, self.state, self.job_step_id = op, state, job_step_id
        allowed = ", ".join(sorted(s.value for s in sources))
        super().__init__(
            f"job step {job_step_id}: cannot {op.value} ({state} -> {target.value}); allowed from {allowed}"
        )


def target_of(op: StepOp) -> S:
    return STEP_TRANSITIONS[op][1]


def sources_of(op: StepOp) -> list[str]:
    """State values a bulk UPDATE for ``op`` may touch (its ``WHERE state IN``)."""
    return sorted(s.value for s in STEP_TRANSITIONS[op][0])


def may(op: StepOp, state: str) -> bool:
    return S(state) in STEP_TRANSITIONS[op][0]


def move_step(step: Any, op: StepOp, *, reason: str | None = None, keep_reason: bool = False) -> S:
    """Apply ``op`` to one job-step row (``state`` and ``failure_reason``); refuses illegal moves."""
    if not may(op, step.state):
        raise IllegalStepTransition(op, step.state, job_step_id=getattr(step, "id", None))
    target = target_of(op)
    step.state = target.value
    if not keep_reason:
        step.failure_reason = reason
    return target
