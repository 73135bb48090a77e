"""Catalogue tables for what a mission file defines.

The whole validated configuration is kept per revision (``MissionRevision.config``)
so that an order keeps planning against the revision it was created with; the
mission's current revision is the one with the highest number. The
things other rows point at (product classes, configured processors, facilities,
orbits) also get rows of their own; a class dropped from a later revision is
marked retired, never deleted, because products still refer to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from proseo.catalog.db import Base, BigId, utcnow


class Mission(Base):
    __tablename__ = "mission"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MissionRevision(Base):
    """One loaded version of a mission file; ``digest`` hashes its meaning, not its layout."""

    __tablename__ = "mission_revision"
    __table_args__ = (UniqueConstraint("mission_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id", ondelete="CASCADE"))
    number: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(String(1000))
    source_text: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime]


class Spacecraft(Base):
    __tablename__ = "spacecraft"
    __table_args__ = (UniqueConstraint("mission_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")


class Orbit(Base):
    __tablename__ = "orbit"
    __table_args__ = (
        UniqueConstraint("spacecraft_id", "number"),
        Index("ix_orbit_time", "spacecraft_id", "start_time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    spacecraft_id: Mapped[int] = mapped_column(ForeignKey("spacecraft.id", ondelete="CASCADE"))
    number: Mapped[int]
    start_time: Mapped[datetime]
    stop_time: Mapped[datetime]


class ProductClass(Base):
    __tablename__ = "product_class"
    __table_args__ = (UniqueConstraint("mission_id", "product_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id", ondelete="CASCADE"))
    product_type: Mapped[str] = mapped_column(String(64))
    level: Mapped[str | None] = mapped_column(String(8))
    visibility: Mapped[str] = mapped_column(String(16))
    processor_class: Mapped[str | None] = mapped_column(String(64))
    enclosing_type: Mapped[str | None] = mapped_column(String(64))
    slicing_type: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    retired: Mapped[bool] = mapped_column(default=False)

    mission: Mapped[Mission] = relationship()


class ConfiguredProcessor(Base):
    """A processor version run with a configuration, as named in the mission file."""

    __tablename__ = "configured_processor"
    __table_args__ = (UniqueConstraint("mission_id", "identifier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id", ondelete="CASCADE"))
    identifier: Mapped[str] = mapped_column(String(128))
    processor_class: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    configuration: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(default=True)
    retired: Mapped[bool] = mapped_column(default=False)


class Facility(Base):
    __tablename__ = "facility"
    __table_args__ = (UniqueConstraint("mission_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(16))
    storage_url: Mapped[str] = mapped_column(String(1000))
    storage_options: Mapped[dict[str, Any]]
    scratch_path: Mapped[str] = mapped_column(String(1000))
    max_concurrent_job_steps: Mapped[int]
    kubernetes: Mapped[dict[str, Any] | None]
    slurm: Mapped[dict[str, Any] | None]
    is_default: Mapped[bool] = mapped_column(default=False)
    retired: Mapped[bool] = mapped_column(default=False)
