"""Where each pull from an interface delivery point (PRIP, AUXIP) has got to.

A pull asks for products published after its cursor, oldest first, and moves the cursor
past each product once that product is in the catalogue; a restarted pull carries on
from there and a product seen twice is recognised by its Id. The cursor is a row, not
a file or an Airflow variable: it moves in the same transaction as nothing else but
is read by whoever looks at the catalogue.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from proseo.catalog.db import Base, utcnow


class InterfaceCursor(Base):
    __tablename__ = "interface_cursor"
    __table_args__ = (UniqueConstraint("mission_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id"))
    #: The source's name (the mission file's ``sources:`` key, or the one the CLI was given).
    source: Mapped[str] = mapped_column(String(64))
    #: PublicationDate of the last product taken; None: nothing taken yet.
    published: Mapped[datetime | None]
    #: That product's Id (several products can share a PublicationDate).
    last_id: Mapped[str | None] = mapped_column(String(36))
    taken: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def cursor_published(session: Session, mission_id: int, source: str) -> datetime | None:
    """How far pulls of ``source`` for the mission have got (None: never pulled)."""
    cursor = session.scalar(
        select(InterfaceCursor).where(
            InterfaceCursor.mission_id == mission_id, InterfaceCursor.source == source
        )
    )
    return cursor.published if cursor is not None else None
