"""Catalogue tables for production: orders, jobs, job steps and their input queries.

An order is cut into jobs (one per slice); a job holds job steps (one processor run
each) linked by explicit edges. What a step will make are rows (``job_step_output``);
every input it needs is an input query that records the rule, whether it was
satisfied, and its bindings as rows: existing products (``input_query_product``) or
outputs of other job steps (``input_query_output``), each with the policy that chose
it. Nothing about a step's inputs or outputs is kept as JSON to be parsed again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from proseo.catalog.db import Base, BigId, utcnow


class OrderState(StrEnum):
    INITIAL = "INITIAL"
    APPROVED = "APPROVED"
    PLANNING = "PLANNING"
    PLANNED = "PLANNED"
    PLANNING_FAILED = "PLANNING_FAILED"
    RELEASING = "RELEASING"
    RELEASED = "RELEASED"
    RUNNING = "RUNNING"
    SUSPENDING = "SUSPENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CLOSED = "CLOSED"


class StepState(StrEnum):
    PLANNED = "PLANNED"
    WAITING_INPUT = "WAITING_INPUT"
    READY = "READY"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class ProcessingOrder(Base):
    __tablename__ = "processing_order"
    __table_args__ = (
        UniqueConstraint("mission_id", "identifier"),
        Index("ix_order_state", "mission_id", "state"),
        Index("ix_order_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id"))
    identifier: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default=OrderState.INITIAL.value)
    state_message: Mapped[str | None] = mapped_column(Text)
    revision_id: Mapped[int] = mapped_column(ForeignKey("mission_revision.id"))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"))
    # Candidate facility names when the order named several (the first is facility_id);
    # NULL when it named one or none. Each job step's is chosen at release.
    facilities: Mapped[list[Any] | None]
    requested_classes: Mapped[list[Any]]
    input_only_classes: Mapped[list[Any]]
    configured_processors: Mapped[list[Any]]
    output_file_class: Mapped[str] = mapped_column(String(32))
    processing_mode: Mapped[str] = mapped_column(String(32))
    production_type: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[datetime | None]
    stop_time: Mapped[datetime | None]
    orbit_from: Mapped[int | None]
    orbit_to: Mapped[int | None]
    slicing_type: Mapped[str] = mapped_column(String(16))
    slice_duration_s: Mapped[float | None] = mapped_column(Float)
    slice_overlap_s: Mapped[float] = mapped_column(Float, default=0.0)
    input_filters: Mapped[dict[str, Any]]
    dynamic_parameters: Mapped[dict[str, Any]]
    output_parameters: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(default=50)
    execution_time: Mapped[datetime | None]
    input_timeout_s: Mapped[float | None] = mapped_column(Float)
    on_input_timeout: Mapped[str] = mapped_column(String(16), default="FAIL")
    notification_endpoint: Mapped[str | None] = mapped_column(String(1000))
    dag_id: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]
    # Set by planning: the generation time written into every planned file name, and
    # a summary of the plan (counts per class, reuse, queries) for listings.
    planned_at: Mapped[datetime | None]
    plan_summary: Mapped[dict[str, Any] | None]
    # Set at release: the compact shape the DAG factory builds the order's DAG from.
    dag_blueprint: Mapped[dict[str, Any] | None]
    # Systematic production: the trigger that made the order, and the key that makes one
    # order per (mission, requested classes, slice, mode) whatever the number of events.
    trigger: Mapped[str | None] = mapped_column(String(64))
    generation_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Timeliness: the category (mission file) and when the order's products are due.
    timeliness: Mapped[str | None] = mapped_column(String(64))
    deadline: Mapped[datetime | None]
    deadline_missed_at: Mapped[datetime | None]
    # Campaigns: the campaign, its unit (a day or month, and which part of it) and the
    # attempt (0, then the gap retry round that made it); see planning/campaign.py.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    campaign_unit: Mapped[str | None] = mapped_column(String(64))
    campaign_attempt: Mapped[int | None]

    jobs: Mapped[list[Job]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Job.start_time"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderEvent.id"
    )


class OrderEvent(Base):
    """One transition of an order: who asked for what, from which state to which, and why."""

    __tablename__ = "order_event"
    __table_args__ = (Index("ix_order_event_order", "order_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("processing_order.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    operation: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)

    order: Mapped[ProcessingOrder] = relationship(back_populates="events")


class TriggerState(Base):
    """What a trigger of a mission has done so far (kept in the catalogue, so restarts resume).

    ``cursor``: how far it has looked (data triggers: products catalogued up to this
    instant; calendar and interval triggers: the last firing time handled; orbit
    triggers: the end of the last orbit ordered).
    """

    __tablename__ = "trigger_state"
    __table_args__ = (UniqueConstraint("mission_id", "trigger"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id"))
    trigger: Mapped[str] = mapped_column(String(64))
    cursor: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    fired: Mapped[int] = mapped_column(default=0)  # firings that created at least one order
    orders_created: Mapped[int] = mapped_column(default=0)


class Job(Base):
    """All job steps of one slice of an order."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_order", "order_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("processing_order.id", ondelete="CASCADE"))
    start_time: Mapped[datetime]
    stop_time: Mapped[datetime]
    orbit_id: Mapped[int | None] = mapped_column(ForeignKey("orbit.id"))
    state: Mapped[str] = mapped_column(String(20), default=StepState.PLANNED.value)
    priority: Mapped[int] = mapped_column(default=50)

    order: Mapped[ProcessingOrder] = relationship(back_populates="jobs")
    steps: Mapped[list[JobStep]] = relationship(back_populates="job", cascade="all, delete-orphan")


class JobStep(Base):
    """One processor run: a configured processor, its inputs and its planned outputs."""

    __tablename__ = "job_step"
    __table_args__ = (Index("ix_job_step_job", "job_id"), Index("ix_job_step_state", "state"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("job.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20), default=StepState.PLANNED.value)
    product_class_id: Mapped[int] = mapped_column(ForeignKey("product_class.id"))
    configured_processor_id: Mapped[int] = mapped_column(ForeignKey("configured_processor.id"))
    processing_mode: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[datetime]
    stop_time: Mapped[datetime]
    # Position in the plan (0 = requested class) and whether the order asked for it.
    depth: Mapped[int] = mapped_column(default=0)
    requested: Mapped[bool] = mapped_column(default=False)
    job_order_filename: Mapped[str | None] = mapped_column(String(500))
    task_id: Mapped[str | None] = mapped_column(String(250))
    try_number: Mapped[int | None]
    exit_code: Mapped[int | None]
    failure_reason: Mapped[str | None] = mapped_column(Text)
    log_url: Mapped[str | None] = mapped_column(String(1500))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Where the step runs when its order named several facilities (planning/facility_choice.py,
    # chosen at release), why, and every candidate's figures; NULL: the order's facility.
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"))
    facility_reason: Mapped[str | None] = mapped_column(Text)
    facility_scores: Mapped[dict[str, Any] | None]
    # The backend's own name for the current (or latest) try's run, e.g. "slurm:4711", for
    # squeue/sacct/scancel; NULL where the step runs in its task process (local backend).
    run_ref: Mapped[str | None] = mapped_column(String(200))

    job: Mapped[Job] = relationship(back_populates="steps")
    queries: Mapped[list[InputQuery]] = relationship(back_populates="job_step", cascade="all, delete-orphan")
    outputs: Mapped[list[JobStepOutput]] = relationship(
        back_populates="job_step", cascade="all, delete-orphan", order_by="JobStepOutput.output_index"
    )


class JobStepOutput(Base):
    """One product a job step will make: its name, validity, parameters and storage key.

    Consumers bind to an output by its id (``input_query_output``); registration records
    which product realised it (``product_id``). ``product_key`` is the product's identity
    without its generation time (what two orders would both make); ``claim`` holds it
    while an active order means to make the product, and its unique index is what keeps
    two orders from planning the same product twice, even when planned concurrently.
    """

    __tablename__ = "job_step_output"
    __table_args__ = (
        UniqueConstraint("job_step_id", "output_index"),
        Index("ix_job_step_output_window", "product_class_id", "sensing_start", "sensing_stop"),
        Index("ix_job_step_output_product", "product_id"),
        Index("ix_job_step_output_key", "product_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_step_id: Mapped[int] = mapped_column(BigId, ForeignKey("job_step.id", ondelete="CASCADE"))
    output_index: Mapped[int]
    product_class_id: Mapped[int] = mapped_column(ForeignKey("product_class.id"))
    file_name: Mapped[str] = mapped_column(String(500))
    sensing_start: Mapped[datetime]
    sensing_stop: Mapped[datetime]
    orbit: Mapped[int | None]
    parameters: Mapped[dict[str, Any]]
    storage_key: Mapped[str] = mapped_column(String(1000))
    product_key: Mapped[str] = mapped_column(String(64))
    claim: Mapped[str | None] = mapped_column(String(64), unique=True)
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("product.id", ondelete="SET NULL"))

    job_step: Mapped[JobStep] = relationship(back_populates="outputs")


class JobStepEdge(Base):
    """``downstream`` consumes an output of ``upstream`` (both in the same order)."""

    __tablename__ = "job_step_edge"
    __table_args__ = (Index("ix_job_step_edge_down", "downstream_id"),)

    upstream_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("job_step.id", ondelete="CASCADE"), primary_key=True
    )
    downstream_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("job_step.id", ondelete="CASCADE"), primary_key=True
    )


class InputQuery(Base):
    """One input of a job step: the (merged) rule for one source class and its outcome."""

    __tablename__ = "input_query"
    __table_args__ = (Index("ix_input_query_step", "job_step_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_step_id: Mapped[int] = mapped_column(BigId, ForeignKey("job_step.id", ondelete="CASCADE"))
    source_class_id: Mapped[int] = mapped_column(ForeignKey("product_class.id"))
    rule_text: Mapped[str] = mapped_column(Text)
    mandatory: Mapped[bool] = mapped_column(default=True)
    min_cover: Mapped[float | None] = mapped_column(Float)
    filters: Mapped[dict[str, Any]]
    satisfied: Mapped[bool] = mapped_column(default=False)
    # For people: why these inputs (or why none yet); the bindings are the rows below.
    explanation: Mapped[str] = mapped_column(Text, default="")
    origin: Mapped[str | None] = mapped_column(String(500))  # where the rule was written
    coverage: Mapped[float | None] = mapped_column(Float)
    refreshed_at: Mapped[datetime | None]  # last re-evaluation after planning
    given_up_at: Mapped[datetime | None]  # input timeout (RUN_WITH_AVAILABLE) relaxed it

    job_step: Mapped[JobStep] = relationship(back_populates="queries")


class InputQueryProduct(Base):
    """A product chosen for an input query, and the policy that chose it."""

    __tablename__ = "input_query_product"
    __table_args__ = (Index("ix_iqp_product", "product_id"),)

    query_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("input_query.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("product.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[str | None] = mapped_column(String(64))


class InputQueryOutput(Base):
    """An output of another job step chosen for an input query (an upstream binding).

    The upstream step is usually of the same order (then a ``job_step_edge`` links the
    two steps); it may be of another active order that already plans the product, which
    this step then waits for. ``given_up_at``: an input timeout with RUN_WITH_AVAILABLE
    dropped the binding because the upstream step never delivered; the step runs without it.
    """

    __tablename__ = "input_query_output"
    __table_args__ = (Index("ix_iqo_output", "output_id"),)

    query_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("input_query.id", ondelete="CASCADE"), primary_key=True
    )
    output_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("job_step_output.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[str | None] = mapped_column(String(64))
    given_up_at: Mapped[datetime | None]
