"""The campaign table: a reprocessing campaign's request and the state an operator gave it.

Everything else about a campaign (which units have orders, which are running, done or
failed, what is missing) is derived from the catalogue on every look: the orders carry
``campaign_id``, ``campaign_unit`` and ``campaign_attempt``, the products are the
products. So a restarted scheduler needs no cursor to carry on.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from proseo.catalog.db import Base, utcnow


class CampaignState(StrEnum):
    CREATED = "CREATED"  # sized, not started: no order exists
    RUNNING = "RUNNING"  # passes release units up to the window
    PAUSED = "PAUSED"  # nothing new is released; active orders go on
    CANCELLED = "CANCELLED"  # active orders cancelled; nothing released again
    COMPLETED = "COMPLETED"  # every unit's order ended (gaps have their reasons)


class Campaign(Base):
    __tablename__ = "campaign"
    __table_args__ = (UniqueConstraint("mission_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id"))
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=CampaignState.CREATED.value)
    state_message: Mapped[str | None] = mapped_column(Text)
    #: The validated request (:class:`proseo.planning.campaign_spec.CampaignSpec`) as JSON.
    spec: Mapped[dict[str, Any]]
    #: Gap retries asked for so far; units that failed before round n get attempt n.
    retry_round: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    last_pass_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
