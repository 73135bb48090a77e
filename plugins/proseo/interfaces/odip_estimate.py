"""ODIP ``EstimatedDate``: when an order should end, from the durations observed so far.

For each processor class, the median run time (``completed_at - started_at``) of its
last :data:`SAMPLE` completed job steps in the catalogue; an order's estimate is now
plus, for each of its steps still to run, its processor's median. Steps are summed as
if they ran one after the other: a deliberately late estimate (a facility runs several
at once), since a client holding on to a date that passes is worse off than one that
gets its product early. A processor never observed counts :data:`DEFAULT_S`. A queued
order without a plan yet counts one step of its workflow's processor.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from proseo.catalog.model_mission import ConfiguredProcessor
from proseo.catalog.model_order import Job, JobStep, StepState

#: Completed steps per processor class the median is taken over (the most recent ones).
SAMPLE = 50
#: Seconds a step of a processor never observed is assumed to take.
DEFAULT_S = 600.0
#: Step states that will not run any more.
_DONE = (StepState.COMPLETED.value, StepState.FAILED.value, StepState.SKIPPED.value)


def estimate_date(
    now: datetime,
    remaining: Mapping[str, int],
    medians: Mapping[str, float],
    default_s: float = DEFAULT_S,
) -> datetime:
    """``now`` plus each remaining step's median duration (by processor class)."""
    seconds = sum(n * medians.get(proc, default_s) for proc, n in remaining.items())
    return now + timedelta(seconds=seconds)


def observed_medians(session: Session, mission_id: int, processors: Iterable[str]) -> dict[str, float]:
    """Median seconds of the last :data:`SAMPLE` completed steps of each processor class."""
    out: dict[str, float] = {}
    for proc in sorted(set(processors)):
        rows = session.execute(
            select(JobStep.started_at, JobStep.completed_at)
            .join(ConfiguredProcessor, ConfiguredProcessor.id == JobStep.configured_processor_id)
            .where(
                ConfiguredProcessor.mission_id == mission_id,
                ConfiguredProcessor.processor_class == proc,
                JobStep.state == StepState.COMPLETED.value,
                JobStep.started_at.is_not(None),
                JobStep.completed_at.is_not(None),
            )
            .order_by(JobStep.completed_at.desc())
            .limit(SAMPLE)
        ).all()
        durations = [
            (stop - start).total_seconds() for start, stop in rows if start and stop and stop >= start
        ]
        if durations:
            out[proc] = float(statistics.median(durations))
    return out


def remaining_steps(session: Session, order_id: int) -> dict[str, int]:
    """Steps of the order still to run, per processor class."""
    rows = session.execute(
        select(ConfiguredProcessor.processor_class, func.count())
        .select_from(JobStep)
        .join(Job, Job.id == JobStep.job_id)
        .join(ConfiguredProcessor, ConfiguredProcessor.id == JobStep.configured_processor_id)
        .where(Job.order_id == order_id, JobStep.state.not_in(_DONE))
        .group_by(ConfiguredProcessor.processor_class)
    ).all()
    return {proc: int(n) for proc, n in rows}
