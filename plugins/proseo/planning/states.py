"""The order life cycle: which operation is allowed from which state, and where it leads.

One table holds every transition, so the CLI, the REST API and the orchestration
listeners cannot disagree about what an order may do. Operations done by people
(approve, plan, release, ...) and by the system (start, complete, fail, ...) are
both listed; a refused operation names the current state and the states it is
allowed from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from proseo.catalog.model_order import OrderState as S
from proseo.errors import IllegalTransition


class Operation(StrEnum):
    APPROVE = "approve"
    PLAN = "plan"
    PLANNED = "planned"  # system: planning succeeded
    PLAN_FAILED = "plan-failed"  # system: planning failed
    RELEASE = "release"
    RELEASED = "released"  # system: the DAG factory has taken the order
    START = "start"  # system: the first job step started
    SUSPEND = "suspend"
    SUSPENDED = "suspended"  # system: no job step is running any more
    RESUME = "resume"
    CANCEL = "cancel"
    RETRY = "retry"
    RESET = "reset"
    COMPLETE = "complete"  # system: every job step completed
    FAIL = "fail"  # system: a job step failed for good
    CLOSE = "close"


@dataclass(frozen=True)
class Transition:
    operation: Operation
    sources: frozenset[S]
    target: S
    by_user: bool = True


def _t(op: Operation, sources: set[S], target: S, *, by_user: bool = True) -> Transition:
    return Transition(op, frozenset(sources), target, by_user)


TRANSITIONS: dict[Operation, Transition] = {
    t.operation: t
    for t in (
        _t(Operation.APPROVE, {S.INITIAL}, S.APPROVED),
        _t(Operation.PLAN, {S.APPROVED, S.PLANNING_FAILED}, S.PLANNING),
        _t(Operation.PLANNED, {S.PLANNING}, S.PLANNED, by_user=False),
        _t(Operation.PLAN_FAILED, {S.PLANNING}, S.PLANNING_FAILED, by_user=False),
        _t(Operation.RELEASE, {S.PLANNED}, S.RELEASING),
        _t(Operation.RELEASED, {S.RELEASING}, S.RELEASED, by_user=False),
        _t(Operation.START, {S.RELEASED}, S.RUNNING, by_user=False),
        _t(Operation.SUSPEND, {S.RELEASING, S.RELEASED, S.RUNNING}, S.SUSPENDING),
        _t(Operation.SUSPENDED, {S.SUSPENDING}, S.PLANNED, by_user=False),
        _t(Operation.RESUME, {S.PLANNED}, S.RELEASING),
        _t(
            Operation.CANCEL,
            {S.APPROVED, S.PLANNED, S.PLANNING_FAILED, S.RELEASING, S.RELEASED, S.RUNNING, S.SUSPENDING},
            S.FAILED,
        ),
        _t(Operation.RETRY, {S.FAILED}, S.RELEASING),
        _t(Operation.RESET, {S.APPROVED, S.PLANNED, S.PLANNING_FAILED}, S.INITIAL),
        _t(Operation.COMPLETE, {S.RUNNING, S.RELEASED}, S.COMPLETED, by_user=False),
        _t(Operation.FAIL, {S.RUNNING, S.RELEASED, S.SUSPENDING}, S.FAILED, by_user=False),
        _t(Operation.CLOSE, {S.COMPLETED, S.FAILED}, S.CLOSED),
    )
}

#: States in which an order's DAG exists and may run job steps.
ACTIVE = frozenset({S.RELEASING, S.RELEASED, S.RUNNING, S.SUSPENDING})
#: States that never change again.
TERMINAL = frozenset({S.CLOSED})
#: Operations whose effect the order's Airflow run must follow (pause, unpause, fail,
#: clear); the CLI and the REST API steer the run after these.
STEERING = (Operation.SUSPEND.value, Operation.RESUME.value, Operation.CANCEL.value, Operation.RETRY.value)


def next_state(
    operation: Operation | str, state: S | str, *, mission: str = "", order: str = "", force: bool = False
) -> S:
    """The state ``operation`` leads to from ``state``; refuses illegal transitions.

    ``force`` only matters for suspend: it stops running job steps at once, so the
    order goes straight back to PLANNED instead of waiting in SUSPENDING.
    """
    op = Operation(operation)
    current = S(state)
    transition = TRANSITIONS[op]
    if current not in transition.sources:
        allowed = sorted(s.value for s in transition.sources)
        raise IllegalTransition(op.value, current.value, allowed=allowed, mission=mission, order=order)
    if op is Operation.SUSPEND and force:
        return S.PLANNED
    return transition.target


def allowed_operations(state: S | str, *, by_user: bool = True) -> list[Operation]:
    """Operations that may be applied in ``state`` (for menus, help text and the API)."""
    current = S(state)
    return [op for op, t in TRANSITIONS.items() if current in t.sources and (t.by_user or not by_user)]
