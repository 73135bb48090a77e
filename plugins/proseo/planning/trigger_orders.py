"""The order a trigger makes for a slice: its request, its generation key, its deadline.

The generation key is what makes order generation idempotent: one order per mission,
requested classes, processing mode and slice, whichever trigger, event, retry or
process asks for it. It is a unique column, so two generators racing for the same
slice are decided by the database, not by a check before the insert.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proseo.catalog.model_order import ProcessingOrder
from proseo.catalog.model_product import ProductionType
from proseo.errors import ConflictError
from proseo.missions.models import MissionConfig
from proseo.missions.production import DataWhen, DeadlineFrom, Trigger
from proseo.planning.orders import create_order
from proseo.planning.slicing import Slice
from proseo.planning.spec import OrderSpec, SlicingRequest


@dataclass(frozen=True)
class Wanted:
    """One order a trigger wants: the slice, and when its last known raw input arrived."""

    trigger: str
    slice: Slice
    last_arrival: datetime | None = None


def mode_of(cfg: MissionConfig, trigger: Trigger) -> str | None:
    return trigger.mode or (cfg.mission.processing_modes[0] if cfg.mission.processing_modes else None)


def generation_key(mission: str, trigger: Trigger, mode: str | None, s: Slice) -> str:
    """sha256 over mission, requested classes (as a set), mode and slice: 64 hex characters."""
    text = "\x1f".join(
        [mission, ",".join(sorted(trigger.classes)), mode or "", s.start.isoformat(), s.stop.isoformat()]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def identifier_of(name: str, s: Slice) -> str:
    """A readable order identifier, unique per trigger: ``<trigger>_o37845``, ``<trigger>_<start>_<stop>``."""
    if s.orbit is not None:
        return f"{name}_o{s.orbit}"
    return f"{name}_{s.start:%Y%m%dT%H%M%S}_{s.stop:%Y%m%dT%H%M%S}"


def deadline_of(cfg: MissionConfig, trigger: Trigger, w: Wanted, now: datetime) -> datetime | None:
    """Sensing stop of the slice (or the last raw input's arrival) plus the category's delay."""
    if trigger.timeliness is None or cfg.timeliness is None:
        return None
    due = cfg.timeliness.categories[trigger.timeliness]
    if cfg.timeliness.deadline_from is DeadlineFrom.LAST_INPUT:
        return (w.last_arrival or now) + due
    return w.slice.stop + due


def spec_for(cfg: MissionConfig, trigger: Trigger, w: Wanted) -> OrderSpec:
    """The request an operator would write for this slice (orbit slices by orbit number)."""
    s = w.slice
    period: dict[str, object]
    if s.orbit is not None:
        period = {"orbit_from": s.orbit, "orbit_to": s.orbit}
    else:
        period = {"start": s.start, "stop": s.stop}
    slicing = None
    if trigger.slicing is not None:
        slicing = SlicingRequest.model_validate(
            {"type": trigger.slicing.type, "duration": trigger.slicing.duration}
        )
    return OrderSpec.model_validate(
        {
            "identifier": identifier_of(w.trigger, s),
            "requested_classes": list(trigger.classes),
            # A trigger that waits for its inputs to be complete does not make them: what
            # is still missing of them is another order's to make (no claim conflicts).
            "input_only_classes": list(trigger.on) if trigger.when is DataWhen.COMPLETE else [],
            "processing_mode": mode_of(cfg, trigger),
            "production_type": ProductionType.SYSTEMATIC,
            "slicing": slicing,
            "output_parameters": {"*": dict(trigger.output_parameters)} if trigger.output_parameters else {},
            "priority": trigger.priority,
            "facility": trigger.facility,
            "facilities": list(trigger.facilities),
            **period,
        }
    )


def existing_keys(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        found.update(
            k
            for k in session.scalars(
                select(ProcessingOrder.generation_key).where(ProcessingOrder.generation_key.in_(chunk))
            )
            if k is not None
        )
    return found


def create_generated(
    session: Session, mission: str, cfg: MissionConfig, trigger: Trigger, w: Wanted, now: datetime
) -> ProcessingOrder | None:
    """Insert the order for ``w`` unless its key exists; None when it existed (or a racer won).

    Runs in a SAVEPOINT, so a lost race rolls back only this insert, not the caller's
    transaction (the trigger's cursor and the other orders of the same pass).
    """
    mode = mode_of(cfg, trigger)
    key = generation_key(mission, trigger, mode, w.slice)
    try:
        with session.begin_nested():
            order = create_order(
                session,
                mission,
                spec_for(cfg, trigger, w),
                generated={
                    "trigger": w.trigger,
                    "generation_key": key,
                    "timeliness": trigger.timeliness,
                    "deadline": deadline_of(cfg, trigger, w, now),
                },
            )
    except (IntegrityError, ConflictError):
        return None
    return order
