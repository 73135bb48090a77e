"""Systematic production: the mission's triggers make, plan and release orders by themselves.

Three entry points, all idempotent (a generation key per order, :mod:`trigger_orders`):

* :func:`fire_on_products`: products arrived (ingested or registered); the data
  triggers ``on`` their classes order the slices those products touch.
* :func:`fire_missed`: the same for every product catalogued since each data trigger's
  cursor: the safety net for arrivals nobody announced (an ingestion from the CLI, an
  event lost in a restart) and the only path of ``settle`` triggers.
* :func:`fire_due`: orbit, calendar and interval triggers, for every firing time
  between their cursor and now.

Each creates the orders in one transaction (with the cursors), then takes every
order a trigger made that is not released yet through approve, plan and release
(:func:`advance_generated`), so an order whose generator died half-way is carried
on by the next pass. Orders are made by the backward planner like any other, so a
triggered order and a hand-made one for the same slice plan the same job steps.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.mission_sync import get_mission, loaded_from_catalog
from proseo.catalog.model_order import OrderState, ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.catalog.products import class_ids as class_ids_of
from proseo.missions.loader import LoadedMission
from proseo.missions.production import DataWhen, Trigger, TriggerKind
from proseo.planning import lifecycle
from proseo.planning.completeness import slice_complete
from proseo.planning.slicing import Slice
from proseo.planning.trigger_orders import Wanted, create_generated, existing_keys, generation_key, mode_of
from proseo.planning.trigger_slices import due_firings, slices_touching
from proseo.planning.trigger_state import locked_state, note_firing

#: A data trigger's scan looks this far behind its cursor again: a product's catalogue time
#: is taken before its transaction commits, so a row can become visible after a later one.
RESCAN = timedelta(minutes=5)


@dataclass
class Fired:
    """What one trigger did in one pass."""

    trigger: str
    created: list[str] = field(default_factory=list)  # identifiers of new orders
    existing: int = 0  # slices whose order existed already (any trigger, any earlier pass)
    waiting: list[str] = field(default_factory=list)  # slices not complete or not settled yet


@dataclass
class Pass:
    """One pass of the generator: per trigger, and the orders it carried on."""

    fired: list[Fired] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<order>: <reason>"

    @property
    def created(self) -> list[str]:
        return [i for f in self.fired for i in f.created]


@dataclass(frozen=True)
class Arrival:
    product_type: str
    start: datetime
    stop: datetime
    at: datetime  # catalogue time


def _arrivals(session: Session, mission_id: int, where: Iterable[ColumnElement[bool]]) -> list[Arrival]:
    ids = {v: k for k, v in class_ids_of(session, mission_id).items()}
    rows = session.execute(
        select(
            Product.product_class_id, Product.sensing_start, Product.sensing_stop, Product.created_at
        ).where(Product.product_class_id.in_(list(ids)), *where)
    )
    return [Arrival(ids[c], a, b, at) for c, a, b, at in rows if a is not None and b is not None]


def _data_pass(
    session: Session,
    code: str,
    loaded: LoadedMission,
    name: str,
    trigger: Trigger,
    arrivals: Sequence[Arrival],
    now: datetime,
) -> tuple[Fired, datetime | None]:
    """Order the slices the arrivals touch; returns also the earliest arrival still settling."""
    cfg, orbits = loaded.config, next(iter(loaded.orbits.values()), [])
    fired = Fired(name)
    touched: dict[Slice, datetime] = {}
    for a in arrivals:
        if a.product_type in trigger.on:
            for s in slices_touching(cfg, trigger, orbits, a.start, a.stop):
                touched[s] = max(touched.get(s, a.at), a.at)
    if not touched:
        return fired, None
    mode = mode_of(cfg, trigger)
    keys = {s: generation_key(code, trigger, mode, s) for s in touched}
    have = existing_keys(session, list(keys.values()))
    mission_id = get_mission(session, code).id
    classes = class_ids_of(session, mission_id)
    hold: datetime | None = None
    for s in sorted(touched):
        if keys[s] in have:
            fired.existing += 1
            continue
        if trigger.settle > timedelta(0):
            latest = _latest_arrival(session, classes, trigger, s) or touched[s]
            if now - latest < trigger.settle:
                fired.waiting.append(f"{s.label}: settling until {(latest + trigger.settle).isoformat()}")
                first = min(a.at for a in arrivals if a.product_type in trigger.on)
                hold = first if hold is None else min(hold, first)
                continue
        if trigger.when is DataWhen.COMPLETE:
            done, why = slice_complete(session, cfg, classes, trigger, mode, s)
            if not done:
                fired.waiting.append(f"{s.label}: {why}")
                continue
        order = create_generated(session, code, cfg, trigger, Wanted(name, s, touched[s]), now)
        if order is None:
            fired.existing += 1
        else:
            fired.created.append(order.identifier)
    return fired, hold


def _latest_arrival(session: Session, classes: dict[str, int], trigger: Trigger, s: Slice) -> datetime | None:
    ids = [classes[c] for c in trigger.on if c in classes]
    return session.scalar(
        select(func.max(Product.created_at)).where(
            Product.product_class_id.in_(ids), Product.sensing_start < s.stop, Product.sensing_stop > s.start
        )
    )


def _triggers(loaded: LoadedMission, kinds: set[TriggerKind]) -> list[tuple[str, Trigger]]:
    return [(n, t) for n, t in loaded.config.triggers.items() if t.enabled and t.kind in kinds]


def fire_on_products(
    catalog: Catalog, mission: str, product_ids: Sequence[int], *, now: datetime | None = None
) -> Pass:
    """Data triggers for these products (an Asset event's ids); ``settle`` triggers wait for
    :func:`fire_missed`, which sees how long a slice has been quiet."""
    now = now or utcnow()
    result = Pass()
    with catalog.session() as session:
        loaded = loaded_from_catalog(session, mission)
        mission_id = get_mission(session, mission).id
        arrivals = _arrivals(session, mission_id, [Product.id.in_(list(product_ids))]) if product_ids else []
        for name, trigger in _triggers(loaded, {TriggerKind.DATA}):
            if trigger.settle > timedelta(0):
                continue
            fired, _ = _data_pass(session, mission, loaded, name, trigger, arrivals, now)
            note_firing(locked_state(session, mission_id, name, now), len(fired.created), now)
            result.fired.append(fired)
    advance_generated(catalog, mission, result)
    return result


def fire_missed(catalog: Catalog, mission: str, *, now: datetime | None = None) -> Pass:
    """Data triggers for everything catalogued since their cursors (moved to now)."""
    now = now or utcnow()
    result = Pass()
    with catalog.session() as session:
        loaded = loaded_from_catalog(session, mission)
        mission_id = get_mission(session, mission).id
        for name, trigger in _triggers(loaded, {TriggerKind.DATA}):
            state = locked_state(session, mission_id, name, now)
            since = (state.cursor or now) - RESCAN
            ids = class_ids_of(session, mission_id)
            arrivals = _arrivals(
                session,
                mission_id,
                [
                    Product.product_class_id.in_([ids[c] for c in trigger.on if c in ids]),
                    Product.created_at > since,
                    Product.created_at <= now,
                ],
            )
            fired, hold = _data_pass(session, mission, loaded, name, trigger, arrivals, now)
            # A settling slice is looked at again: the cursor stays at its first arrival
            # (each scan starts RESCAN before the cursor).
            state.cursor = now if hold is None else min(now, hold)
            note_firing(state, len(fired.created), now)
            result.fired.append(fired)
    advance_generated(catalog, mission, result)
    return result


def fire_due(
    catalog: Catalog, mission: str, *, now: datetime | None = None, names: Collection[str] | None = None
) -> Pass:
    """Orbit, calendar and interval triggers (``names``: only these): every firing time in (cursor, now]."""
    now = now or utcnow()
    result = Pass()
    clock = {TriggerKind.ORBIT, TriggerKind.CALENDAR, TriggerKind.INTERVAL}
    with catalog.session() as session:
        loaded = loaded_from_catalog(session, mission)
        mission_id = get_mission(session, mission).id
        cfg, orbits = loaded.config, next(iter(loaded.orbits.values()), [])
        for name, trigger in _triggers(loaded, clock):
            if names is not None and name not in names:
                continue
            state = locked_state(session, mission_id, name, now)
            after = state.cursor or now
            fired = Fired(name)
            for at, start, stop in due_firings(trigger, orbits, after, now):
                for s in slices_touching(cfg, trigger, orbits, start, stop):
                    order = create_generated(session, mission, cfg, trigger, Wanted(name, s, at), now)
                    if order is None:
                        fired.existing += 1
                    else:
                        fired.created.append(order.identifier)
                state.cursor = at
            note_firing(state, len(fired.created), now)
            result.fired.append(fired)
    advance_generated(catalog, mission, result)
    return result


def advance_generated(catalog: Catalog, mission: str, into: Pass | None = None) -> Pass:
    """Approve, plan and release every triggered order of the mission not released yet."""
    result = into if into is not None else Pass()
    waiting = (OrderState.INITIAL.value, OrderState.APPROVED.value, OrderState.PLANNED.value)
    with catalog.session() as session:
        mission_id = get_mission(session, mission).id
        todo = session.execute(
            select(ProcessingOrder.identifier, ProcessingOrder.state)
            .where(
                ProcessingOrder.mission_id == mission_id,
                ProcessingOrder.trigger.is_not(None),
                ProcessingOrder.state.in_(waiting),
            )
            .order_by(ProcessingOrder.deadline, ProcessingOrder.id)
        ).all()
    lifecycle.carry_to_release(catalog, mission, todo, result.released, result.failed)
    return result
