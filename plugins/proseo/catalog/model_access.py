"""Who may do what per mission: the catalogue's own access table.

Airflow's auth manager says *who* a caller is (its JWT); what that person may do
with a mission's orders and products is kept here, next to the data it guards, so
it is the same whichever auth manager Airflow is configured with. A role is held
for one mission code, or for ``*`` (every mission, including missions loaded later).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from proseo.catalog.db import Base, utcnow

ALL_MISSIONS = "*"


class MissionRole(Base):
    __tablename__ = "mission_role"
    __table_args__ = (UniqueConstraint("username", "mission"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(256))
    # A mission code, or "*" for every mission; not a foreign key, so a role can be
    # granted before the mission is loaded.
    mission: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str | None] = mapped_column(String(256))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
