"""Catalogue tables for products, their files and their provenance.

A product is identified by ``identity``: a hash of what makes it *this* product
(mission, class, file class, mode, validity, generation time, configured processor,
parameters). The unique index on it is what makes ingestion and registration
idempotent: doing the same thing twice finds the first row instead of adding one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from proseo.catalog.db import Base, BigId, utcnow
from proseo.catalog.footprint_column import FootprintType
from proseo.catalog.geometry import Geometry
from proseo.catalog.model_mission import ProductClass


class ProductionType(StrEnum):
    SYSTEMATIC = "SYSTEMATIC"
    ON_DEMAND_DEFAULT = "ON_DEMAND_DEFAULT"
    ON_DEMAND_NON_DEFAULT = "ON_DEMAND_NON_DEFAULT"


class ProductStatus(StrEnum):
    PLANNED = "PLANNED"  # an output an order will make; no file yet
    AVAILABLE = "AVAILABLE"  # has at least one file on storage
    EVICTED = "EVICTED"  # files removed after retention; metadata and lineage kept


class Product(Base):
    __tablename__ = "product"
    __table_args__ = (
        # What the planner asks most: products of a class overlapping a time window,
        # and the newest of them.
        Index("ix_product_class_start", "product_class_id", "sensing_start", "sensing_stop"),
        Index("ix_product_class_stop", "product_class_id", "sensing_stop"),
        Index("ix_product_class_generation", "product_class_id", "generation_time"),
        Index("ix_product_job_step", "job_step_id"),
        Index("ix_product_enclosing", "enclosing_product_id"),
        # Publication order: delivery points page by it (pull clients, newest-first maps).
        Index("ix_product_created", "created_at"),
        # PostGIS only; SQLite indexes footprints in an R*Tree (catalog/footprint_column.py).
        Index("ix_product_footprint", "footprint", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    identity: Mapped[str] = mapped_column(String(64), unique=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id"))
    product_class_id: Mapped[int] = mapped_column(ForeignKey("product_class.id"))
    file_class: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str | None] = mapped_column(String(32))
    sensing_start: Mapped[datetime]
    sensing_stop: Mapped[datetime]
    generation_time: Mapped[datetime]
    production_type: Mapped[str] = mapped_column(String(32), default=ProductionType.SYSTEMATIC.value)
    status: Mapped[str] = mapped_column(String(16), default=ProductStatus.AVAILABLE.value)
    parameters: Mapped[dict[str, Any]]
    orbit_id: Mapped[int | None] = mapped_column(ForeignKey("orbit.id"))
    enclosing_product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    configured_processor_id: Mapped[int | None] = mapped_column(ForeignKey("configured_processor.id"))
    job_step_id: Mapped[int | None] = mapped_column(ForeignKey("job_step.id", ondelete="SET NULL"))
    eviction_time: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the raw data behind the product was available: an ingested product's own
    # catalogue time, a produced one's latest over its inputs (timeliness KPIs).
    raw_available_at: Mapped[datetime | None]
    # WGS84 point or polygon (ESA interfaces' Footprint / GeoFootprint); set it through
    # proseo.catalog.footprints.set_footprint, which refuses invalid polygons.
    footprint: Mapped[Geometry | None] = mapped_column(FootprintType())

    product_class: Mapped[ProductClass] = relationship(lazy="joined")
    files: Mapped[list[ProductFile]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="ProductFile.id"
    )
    components: Mapped[list[Product]] = relationship(back_populates="enclosing", cascade="all, delete-orphan")
    enclosing: Mapped[Product | None] = relationship(back_populates="components", remote_side=[id])


class ProductFile(Base):
    """One stored file of a product at one facility, with its checksums."""

    __tablename__ = "product_file"
    __table_args__ = (UniqueConstraint("product_id", "facility_id", "file_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"))
    file_name: Mapped[str] = mapped_column(String(500))
    storage_url: Mapped[str] = mapped_column(String(1500), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    # XXH3-128 (hex), what stage-in verifies every byte with; NULL for files catalogued
    # before migration 0007 (stage-in then verifies SHA-256). MD5 and SHA-256 stay: the
    # ESA interfaces' Checksum field and create-only comparisons use them.
    xxh128: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    product: Mapped[Product] = relationship(back_populates="files")


class Provenance(Base):
    """How a produced product came to be: the run that made it and its Airflow identity."""

    __tablename__ = "provenance"

    product_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("product.id", ondelete="CASCADE"), primary_key=True
    )
    job_step_id: Mapped[int | None] = mapped_column(ForeignKey("job_step.id", ondelete="SET NULL"))
    configured_processor_id: Mapped[int | None] = mapped_column(ForeignKey("configured_processor.id"))
    configuration: Mapped[dict[str, Any]]
    job_order: Mapped[str | None] = mapped_column(Text)
    dag_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(String(250))
    task_id: Mapped[str | None] = mapped_column(String(250))
    try_number: Mapped[int | None]
    map_index: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProductInput(Base):
    """Lineage edge: ``product`` was made from ``input_product``."""

    __tablename__ = "product_input"
    __table_args__ = (Index("ix_product_input_input", "input_product_id"),)

    product_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("product.id", ondelete="CASCADE"), primary_key=True
    )
    input_product_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("product.id", ondelete="CASCADE"), primary_key=True
    )
