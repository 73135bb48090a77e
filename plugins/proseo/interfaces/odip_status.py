"""An order's life cycle as ODIP ``Status`` and ``StatusMessage`` (a pure mapping).

The ODIP knows five statuses where an order has twelve states. The mapping follows
prosEO's: INITIAL/APPROVED/PLANNING/PLANNED -> queued; RELEASING/RELEASED/RUNNING ->
in_progress; COMPLETED -> completed; FAILED -> failed; CLOSED -> by its outcome. Two
states prosEO lacks are placed by what they mean to a client: SUSPENDING (steps still
running) is in_progress, PLANNING_FAILED (nothing can be produced) is failed, with
"input product currently unavailable" when planning found no inputs. A FAILED order
whose end was a cancel is ``cancelled``: the client asked for it, nothing broke.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from proseo.catalog.model_order import OrderState as S


class Status(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: The ICD's canonical StatusMessage texts.
MESSAGES = {
    Status.QUEUED: "request is queued for processing",
    Status.IN_PROGRESS: "request is under processing",
    Status.COMPLETED: "requested output product is available",
    Status.FAILED: "production has failed",
    Status.CANCELLED: "request cancelled by user",
}
INPUT_UNAVAILABLE = "input product currently unavailable"
INPUT_NOT_FOUND = "input product not found on LTA"

#: Statuses after which nothing changes unless the order is retried: notifications go out.
FINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

_QUEUED = {S.INITIAL, S.APPROVED, S.PLANNING, S.PLANNED}
_IN_PROGRESS = {S.RELEASING, S.RELEASED, S.RUNNING, S.SUSPENDING}


@dataclass(frozen=True)
class ProductionStatus:
    status: Status
    message: str


def production_status(
    state: str, *, ended_by: str | None = None, closed_from: str | None = None, reason: str | None = None
) -> ProductionStatus:
    """Status and StatusMessage of an order in ``state``.

    ``ended_by``: the operation of the event that last moved the order to COMPLETED or
    FAILED ("cancel" makes it cancelled); ``closed_from``: for CLOSED, the state it was
    closed from; ``reason``: the order's state message (planning failures mentioning
    inputs say the input is unavailable).
    """
    current = S(state)
    if current is S.CLOSED:
        outcome = S(closed_from) if closed_from else S.COMPLETED
        if outcome is S.CLOSED:  # never: CLOSED is left by nothing
            outcome = S.COMPLETED
        return production_status(outcome.value, ended_by=ended_by, reason=reason)
    if current in _QUEUED:
        return _of(Status.QUEUED)
    if current in _IN_PROGRESS:
        return _of(Status.IN_PROGRESS)
    if current is S.COMPLETED:
        return _of(Status.COMPLETED)
    if current is S.PLANNING_FAILED:
        if reason and "input" in reason.lower():
            return ProductionStatus(Status.FAILED, INPUT_UNAVAILABLE)
        return _of(Status.FAILED)
    if ended_by == "cancel":
        return _of(Status.CANCELLED)
    return _of(Status.FAILED)


def _of(status: Status) -> ProductionStatus:
    return ProductionStatus(status, MESSAGES[status])
