"""What readiness reports: per step after a refresh, per step after a poll.

The poll, the refresh and their callers (triggerer, sensor, CLI, tests) share these
result types and the two state sets that decide whether a step may still change, so
they live apart from the code that computes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from proseo.catalog.model_order import StepState

#: Steps whose inputs may still change (later states have consumed theirs).
OPEN_STATES = frozenset({StepState.PLANNED.value, StepState.WAITING_INPUT.value, StepState.READY.value})
#: Steps that will not run any more (until an order operation moves them back).
DEAD_STATES = frozenset({StepState.FAILED.value, StepState.SKIPPED.value})


@dataclass(frozen=True)
class StepReadiness:
    """What one job step still waits for, after :func:`refresh_inputs`."""

    job_step_id: int
    state: str
    upstream_pending: tuple[int, ...] = ()  # upstream job steps not COMPLETED
    waiting: tuple[str, ...] = ()  # "<product type>: <rule>" of unsatisfied mandatory queries
    upstream_failed: tuple[int, ...] = ()  # among upstream_pending: FAILED or SKIPPED
    newly_satisfied: tuple[str, ...] = ()  # queries this refresh satisfied (or filled, if optional)
    given_up: tuple[str, ...] = ()  # queries/upstream references given up by give_up_waiting

    @property
    def ready(self) -> bool:
        return not self.upstream_pending and not self.waiting

    def summary(self) -> str:
        if self.state in DEAD_STATES:
            return f"job step {self.job_step_id} is {self.state}"
        if self.ready:
            return f"job step {self.job_step_id}: inputs complete"
        parts = []
        if self.upstream_pending:
            parts.append("upstream job step(s) " + ", ".join(map(str, self.upstream_pending)))
            if self.upstream_failed:
                parts[-1] += " (failed: " + ", ".join(map(str, self.upstream_failed)) + ")"
        parts.extend(self.waiting)
        return f"job step {self.job_step_id} waits for " + "; ".join(parts)


class PollStatus(StrEnum):
    READY = "ready"  # nothing left to wait for: run refresh once, then the step may run
    CHANGED = "changed"  # an open query's classes got products since `since`: refresh it
    WAITING = "waiting"  # nothing new
    BLOCKED = "blocked"  # cannot become ready: missing step, FAILED/SKIPPED step or upstream


@dataclass(frozen=True)
class StepPoll:
    status: PollStatus
    state: str | None = None
    upstream_pending: int = 0
    upstream_failed: int = 0
    open_queries: int = 0  # unsatisfied, or optional and empty
    message: str = ""
