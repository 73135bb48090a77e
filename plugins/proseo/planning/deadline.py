"""A missed order deadline, recorded once in the catalogue.

Airflow's deadline alert on an order's DAG run (see
:mod:`proseo.orchestration.deadlines`) fires when the order's deadline passes while its
run is still going. What the catalogue keeps of it is decided here, without Airflow:
``processing_order.deadline_missed_at`` is set once (a second alert, or a retried
callback, changes nothing) and an ``order_event`` (operation ``deadline_missed``)
says when and by how much; an order that COMPLETED in the meantime has not missed
anything and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_order import OrderEvent, OrderState, ProcessingOrder
from proseo.errors import NotFoundError

OPERATION = "deadline_missed"


@dataclass(frozen=True)
class DeadlineMiss:
    """What happened to one alert: ``recorded`` is False when there was nothing to record."""

    order_id: int
    mission: str
    order: str
    state: str
    deadline: datetime | None
    missed_at: datetime | None
    recorded: bool
    why: str
    notification_endpoint: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "order_id": self.order_id,
            "order": f"{self.mission}/{self.order}",
            "state": self.state,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "missed_at": self.missed_at.isoformat() if self.missed_at else None,
            "recorded": self.recorded,
            "why": self.why,
        }


def record_deadline_miss(catalog: Catalog, order_id: int, at: datetime) -> DeadlineMiss:
    """Record that order ``order_id`` missed its deadline, seen at ``at`` (once; not if
    COMPLETED). One transaction; the UPDATE's WHERE decides between concurrent alerts."""
    with catalog.session() as s:
        row = s.execute(
            select(ProcessingOrder, Mission.code)
            .join(Mission, Mission.id == ProcessingOrder.mission_id)
            .where(ProcessingOrder.id == order_id)
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"order id {order_id}: no such order (deadline alert)")
        order, mission = row

        def outcome(recorded: bool, why: str, missed_at: datetime | None) -> DeadlineMiss:
            return DeadlineMiss(
                order.id,
                mission,
                order.identifier,
                order.state,
                order.deadline,
                missed_at,
                recorded,
                why,
                order.notification_endpoint,
            )

        if order.deadline_missed_at is not None:
            return outcome(False, "already recorded", order.deadline_missed_at)
        if order.state == OrderState.COMPLETED.value:
            return outcome(False, "the order completed", None)
        result = s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.id == order.id, ProcessingOrder.deadline_missed_at.is_(None))
            .values(deadline_missed_at=at)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):  # another alert got there first (nothing written)
            missed = s.scalar(
                select(ProcessingOrder.deadline_missed_at).where(ProcessingOrder.id == order_id)
            )
            return outcome(False, "already recorded", missed)
        late = f" ({at - order.deadline} after it)" if order.deadline else ""
        s.add(
            OrderEvent(
                order_id=order.id,
                operation=OPERATION,
                from_state=order.state,
                to_state=order.state,
                message=f"deadline {order.deadline.isoformat() if order.deadline else '?'} missed, "
                f"seen at {at.isoformat()}{late}, order {order.state}",
            )
        )
        return outcome(True, "recorded", at)
