"""A trigger's progress in the catalogue: found or created, locked for the pass that moves it.

Every pass that moves a cursor holds the trigger's row (``FOR UPDATE`` on PostgreSQL;
SQLite serialises writers anyway), so two generators never handle the same firing
times twice, and a generator that dies mid-pass leaves the cursor where it was: the
next pass does the same work again, and the generation keys make that harmless.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proseo.catalog.mission_sync import latest_revision
from proseo.catalog.model_order import TriggerState


def start_of(session: Session, mission_id: int, now: datetime) -> datetime:
    """Where a trigger seen for the first time starts: when its mission revision was loaded
    (no backfill of older data or periods), or now if that is later than the clock given."""
    revision = latest_revision(session, mission_id)
    loaded = revision.loaded_at if revision is not None else now
    return min(loaded, now)


def locked_state(session: Session, mission_id: int, trigger: str, now: datetime) -> TriggerState:
    """The trigger's row, locked; created (cursor at :func:`start_of`) on first sight."""
    query = (
        select(TriggerState)
        .where(TriggerState.mission_id == mission_id, TriggerState.trigger == trigger)
        .with_for_update()
    )
    state = session.scalars(query).first()
    if state is not None:
        return state
    try:
        with session.begin_nested():
            state = TriggerState(
                mission_id=mission_id,
                trigger=trigger,
                cursor=start_of(session, mission_id, now),
                fired=0,
                orders_created=0,
            )
            session.add(state)
            session.flush()
    except IntegrityError:  # another generator created it first
        state = session.scalars(query).one()
    return state


def note_firing(state: TriggerState, created: int, now: datetime) -> None:
    if created:
        state.fired += 1
        state.orders_created += created
        state.last_fired_at = now
