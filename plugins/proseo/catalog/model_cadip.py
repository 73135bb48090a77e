"""What a CADIP pull has seen of each downlink session, and whether it is taken.

A session's blocks arrive over time, channel by channel, and its QualityInfo comes last;
a session stays ``pending`` (with the reason: which channel lacks what) until every
channel is whole, and is examined again at each pull. Only a whole session is
downloaded and ingested; then it is ``taken`` with its files, so a pull restarted
anywhere downloads nothing twice and a session is never ingested half. A pending
session the CADIP no longer serves, or one that kept failing too long, is ``gone``
(with the reason): final, so no state is stuck and no pull fails on it forever.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from proseo.catalog.db import Base, BigId, utcnow


class CadipState(enum.StrEnum):
    PENDING = "pending"  # seen, not whole yet (or its download/ingestion failed): looked at again
    TAKEN = "taken"  # every channel whole and ingested
    #: final, never looked at again: the CADIP no longer serves it (404), its entity could not
    #: be used and cannot be asked for again, or it kept failing for longer than the source allows
    GONE = "gone"


class CadipSession(Base):
    __tablename__ = "cadip_session"
    __table_args__ = (UniqueConstraint("mission_id", "source", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id"))
    #: The source's name (as for :class:`InterfaceCursor`).
    source: Mapped[str] = mapped_column(String(64))
    #: The session entity's Id (a retransferred session is a new entity with the same SessionId).
    entity_id: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    satellite: Mapped[str | None] = mapped_column(String(16))
    channels: Mapped[int]
    published: Mapped[datetime]
    downlink_start: Mapped[datetime | None]
    downlink_stop: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default=CadipState.PENDING.value, index=True)
    #: Why a session is pending (what is missing, or the last failure) or gone.
    reason: Mapped[str | None] = mapped_column(Text)
    #: How many times it was examined (pending sessions are looked at on every pull).
    examined: Mapped[int] = mapped_column(default=0)
    products: Mapped[int] = mapped_column(default=0)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    taken_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CadipFile(Base):
    """A file of a taken session, as it was downloaded (one row per Files entity)."""

    __tablename__ = "cadip_file"
    __table_args__ = (UniqueConstraint("session_id", "file_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("cadip_session.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    channel: Mapped[int]
    block: Mapped[int]
    final: Mapped[bool]
    size: Mapped[int] = mapped_column(BigInteger)
    published: Mapped[datetime | None]
    #: The product that holds its bytes (the session's channel).
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("product.id", ondelete="SET NULL"))
