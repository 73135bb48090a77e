"""How far a campaign is: per unit and overall completed fraction, throughput and ETA.

Derived from the campaign's orders and their job steps (two statements), never from a
counter: a unit's fraction is its latest order's completed steps over its steps (1 for
a completed order, 0 for a unit not ordered yet); the overall fraction is the mean over
units; throughput is completed steps and unit-equivalents per hour since the start; the
ETA divides what is left by that rate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from proseo.catalog.db import utcnow
from proseo.catalog.model_order import Job, JobStep, OrderState, ProcessingOrder, StepState
from proseo.planning.campaign import ACTIVE, FAILED, get_campaign, latest_orders, layout_of, spec_of

_DONE = (OrderState.COMPLETED.value, OrderState.CLOSED.value)


@dataclass
class UnitProgress:
    part: str
    unit: str
    order: str | None = None
    state: str = "NOT_STARTED"
    attempt: int = 0
    steps_total: int = 0
    steps_done: int = 0
    steps_failed: int = 0
    fraction: float = 0.0


@dataclass
class Progress:
    campaign: str
    mission: str
    state: str
    parts: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    fraction: float = 0.0
    steps_total: int = 0
    steps_done: int = 0
    started_at: datetime | None = None
    elapsed_s: float = 0.0
    steps_per_hour: float | None = None
    units_per_hour: float | None = None
    eta_s: float | None = None
    units: list[UnitProgress] = field(default_factory=list)


def progress(session: Session, mission: str, name: str, *, now: datetime | None = None) -> Progress:
    now = now or utcnow()
    campaign = get_campaign(session, mission, name)
    spec = spec_of(campaign)
    _, lay = layout_of(session, mission, spec)
    latest = latest_orders(session, campaign.id)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for oid, state, n in session.execute(
        select(Job.order_id, JobStep.state, func.count())
        .join(JobStep, JobStep.job_id == Job.id)
        .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
        .where(ProcessingOrder.campaign_id == campaign.id)
        .group_by(Job.order_id, JobStep.state)
    ):
        counts[oid][state] = int(n)
    out = Progress(campaign.name, mission, campaign.state, len(lay.parts), started_at=campaign.started_at)
    for part in lay.parts:
        u = UnitProgress(part.key, part.unit)
        o = latest.get(part.key)
        if o is not None:
            c = counts.get(o.id, {})
            u.order, u.state, u.attempt = o.identifier, o.state, o.attempt
            u.steps_total = sum(c.values())
            u.steps_done = c.get(StepState.COMPLETED.value, 0)
            u.steps_failed = c.get(StepState.FAILED.value, 0)
            if o.state in _DONE:
                u.fraction = 1.0
            elif u.steps_total:
                u.fraction = u.steps_done / u.steps_total
            out.active += o.state in ACTIVE
            out.completed += o.state in _DONE
            out.failed += o.state in FAILED
        out.steps_total += u.steps_total
        out.steps_done += u.steps_done
        out.units.append(u)
    if out.parts:
        out.fraction = sum(u.fraction for u in out.units) / out.parts
    if campaign.started_at is not None:
        end = campaign.completed_at or now
        out.elapsed_s = max((end - campaign.started_at).total_seconds(), 0.0)
    if out.elapsed_s > 0:
        hours = out.elapsed_s / 3600
        out.steps_per_hour = out.steps_done / hours
        done_units = sum(u.fraction for u in out.units)
        out.units_per_hour = done_units / hours
        left = out.parts - done_units
        if left <= 0 or campaign.completed_at is not None:
            out.eta_s = 0.0
        elif out.units_per_hour > 0:
            out.eta_s = left / out.units_per_hour * 3600
    return out
