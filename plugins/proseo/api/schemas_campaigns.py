"""Response models of campaigns, shared by the REST routes and ``proseo campaign --format json``.

Plain pydantic over the core's dataclasses (no FastAPI, no Airflow), so the CLI prints
the documents the API answers. Instants are ISO 8601 UTC; durations are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from proseo.catalog.model_campaign import Campaign
from proseo.planning.campaign import PassResult, spec_of
from proseo.planning.campaign_dryrun import DryRun
from proseo.planning.campaign_gaps import GapReport
from proseo.planning.campaign_progress import Progress

#: Gaps listed per page at most (the counts cover all of them).
MAX_GAPS = 10_000


class CampaignSummary(BaseModel):
    mission: str
    name: str
    state: str = Field(description="CREATED, RUNNING, PAUSED, CANCELLED or COMPLETED.")
    state_message: str | None
    requested_classes: list[str]
    start: datetime
    stop: datetime
    unit: str
    processing_mode: str
    priority: int
    max_active_orders: int
    retry_round: int
    created_at: datetime
    started_at: datetime | None
    last_pass_at: datetime | None
    completed_at: datetime | None


class UnitProgressOut(BaseModel):
    part: str = Field(
        description="The unit (day or month), with ':orbits' or ':period' when it has two orders."
    )
    unit: str
    order: str | None
    state: str
    attempt: int
    steps_total: int
    steps_done: int
    steps_failed: int
    fraction: float


class ProgressOut(BaseModel):
    state: str
    parts: int = Field(description="Orders the campaign is cut into (units, or units x parts).")
    active: int
    completed: int
    failed: int
    fraction: float = Field(description="Mean over the units of their completed fraction.")
    steps_total: int
    steps_done: int
    elapsed_s: float
    steps_per_hour: float | None
    units_per_hour: float | None
    eta_s: float | None = Field(
        description="Seconds until done at the rate so far; null before any progress."
    )
    units: list[UnitProgressOut]


class CampaignDetail(CampaignSummary):
    spec: dict[str, Any]
    progress: ProgressOut


class PassOut(BaseModel):
    campaign: CampaignSummary
    created: list[str]
    released: list[str]
    failed: list[str] = Field(description="'<order>: <reason>' for orders that could not be released.")
    cancelled: list[str] = Field(default_factory=list)


class CellOut(BaseModel):
    product_type: str
    unit: str
    expected: int
    produced: int
    reasons: dict[str, int]


class GapOut(BaseModel):
    product_type: str
    part: str
    start: datetime
    stop: datetime
    orbit: int | None
    reason: str = Field(
        description="input missing, step failed, planning failed, in progress, not yet started or not made."
    )
    detail: str
    order: str | None


class GapReportOut(BaseModel):
    mission: str
    campaign: str
    state: str
    expected: int
    produced: int
    missing: int
    reasons: dict[str, int]
    cells: list[CellOut]
    gaps: list[GapOut] = Field(description="The page of gaps asked for (limit, offset).")
    limit: int
    offset: int


class ClassSizingOut(BaseModel):
    product_type: str
    requested: bool
    slices: int
    existing: int
    steps: int
    seconds_per_step: float
    duration_source: str


class MissingInputOut(BaseModel):
    product_type: str
    input_type: str
    slices: int
    first: list[str]


class DryRunOut(BaseModel):
    mission: str
    campaign: str
    units: int
    orders: int
    steps: int
    classes: list[ClassSizingOut]
    missing: list[MissingInputOut]
    missing_slices: list[list[str]] = Field(description="[class, slice, input class], the first 1,000.")
    serial_seconds: float
    parallel_slots: int
    wall_seconds: float
    assumptions: list[str]
    took_s: float


def campaign_summary(c: Campaign, mission: str) -> CampaignSummary:
    spec = spec_of(c)
    return CampaignSummary(
        mission=mission,
        name=c.name,
        state=c.state,
        state_message=c.state_message,
        requested_classes=list(spec.requested_classes),
        start=spec.start,
        stop=spec.stop,
        unit=spec.unit.value,
        processing_mode=spec.processing_mode,
        priority=spec.priority,
        max_active_orders=spec.window.max_active_orders,
        retry_round=c.retry_round,
        created_at=c.created_at,
        started_at=c.started_at,
        last_pass_at=c.last_pass_at,
        completed_at=c.completed_at,
    )


def progress_out(p: Progress) -> ProgressOut:
    return ProgressOut(
        state=p.state,
        parts=p.parts,
        active=p.active,
        completed=p.completed,
        failed=p.failed,
        fraction=p.fraction,
        steps_total=p.steps_total,
        steps_done=p.steps_done,
        elapsed_s=p.elapsed_s,
        steps_per_hour=p.steps_per_hour,
        units_per_hour=p.units_per_hour,
        eta_s=p.eta_s,
        units=[UnitProgressOut.model_validate(u, from_attributes=True) for u in p.units],
    )


def campaign_detail(c: Campaign, mission: str, p: Progress) -> CampaignDetail:
    return CampaignDetail(
        **campaign_summary(c, mission).model_dump(), spec=dict(c.spec), progress=progress_out(p)
    )


def pass_out(
    summary: CampaignSummary, result: PassResult | None, cancelled: list[str] | None = None
) -> PassOut:
    return PassOut(
        campaign=summary,
        created=result.created if result else [],
        released=result.released if result else [],
        failed=result.failed if result else [],
        cancelled=cancelled or [],
    )


def gap_report_out(r: GapReport, *, limit: int = 1000, offset: int = 0) -> GapReportOut:
    return GapReportOut(
        mission=r.mission,
        campaign=r.campaign,
        state=r.state,
        expected=r.expected,
        produced=r.produced,
        missing=len(r.gaps),
        reasons=r.reasons(),
        cells=[
            CellOut(
                product_type=c.product_type,
                unit=c.unit,
                expected=c.expected,
                produced=c.produced,
                reasons=dict(c.reasons),
            )
            for c in r.cells
        ],
        gaps=[GapOut.model_validate(g, from_attributes=True) for g in r.gaps[offset : offset + limit]],
        limit=limit,
        offset=offset,
    )


def dry_run_out(d: DryRun) -> DryRunOut:
    return DryRunOut(
        mission=d.mission,
        campaign=d.campaign,
        units=d.units,
        orders=d.orders,
        steps=d.steps,
        classes=[ClassSizingOut.model_validate(c, from_attributes=True) for c in d.classes],
        missing=[MissingInputOut.model_validate(m, from_attributes=True) for m in d.missing],
        missing_slices=[list(t) for t in d.missing_slices],
        serial_seconds=d.serial_seconds,
        parallel_slots=d.parallel_slots,
        wall_seconds=d.wall_seconds,
        assumptions=d.assumptions,
        took_s=d.took_s,
    )
