"""Which slices a trigger orders, and when: pure functions of the mission, the clock and data.

Every kind comes down to "the slices of the requested classes' slicing that touch a
window": a data trigger's window is an arriving product's validity, a calendar or
interval trigger's the period before its firing time, an orbit trigger's the orbit
itself. The slices lie on the same grid an on-demand order cuts (:mod:`slicing`), so a
triggered order and a hand-made one for the same slice plan the same job steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from croniter import croniter

from proseo.missions.models import MissionConfig
from proseo.missions.orbits import Orbit
from proseo.missions.production import Trigger, TriggerKind
from proseo.missions.types import SlicingType
from proseo.planning.slicing import Slice, SlicingError, make_slices, orbits_in

#: Firings one call handles per trigger (a scheduler down for a long time catches up in steps).
MAX_FIRINGS = 1000
#: Interval triggers fire on the grid ``EPOCH + k * every``, whatever the first call's time.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def slicing_of(cfg: MissionConfig, trigger: Trigger) -> tuple[SlicingType, timedelta | None, datetime | None]:
    """The slicing of the trigger's orders: its own, else its requested classes' (one, checked)."""
    first = cfg.product_classes[trigger.classes[0]].slicing
    if trigger.slicing is not None:
        return SlicingType(trigger.slicing.type), trigger.slicing.duration, first.anchor
    return first.type, first.duration, first.anchor


def slices_touching(
    cfg: MissionConfig, trigger: Trigger, orbits: Sequence[Orbit], start: datetime, stop: datetime
) -> list[Slice]:
    """The trigger's slices that intersect ``[start, stop)`` (a zero-length window: its slice).

    A window that touches a slice only at its end does not count: an orbit's L0 product
    ends where the next orbit starts and belongs to one orbit, not two.
    """
    kind, duration, anchor = slicing_of(cfg, trigger)
    try:
        found = make_slices(kind, start, stop, duration=duration, orbits=orbits, anchor=anchor)
    except SlicingError:
        return []  # outside the orbit table: nothing this trigger can order
    if kind is SlicingType.ORBIT:
        return [s for s in found if s.orbit is not None]
    return [s for s in found if s.stop > start and (s.start < stop or start == stop)]


def calendar_times(cron: str, after: datetime, until: datetime) -> list[datetime]:
    """The cron expression's times (UTC) in ``(after, until]``, at most :data:`MAX_FIRINGS`."""
    out: list[datetime] = []
    it = croniter(cron, after.astimezone(UTC))
    while len(out) < MAX_FIRINGS:
        t = it.get_next(datetime).astimezone(UTC)
        if t > until:
            break
        out.append(t)
    return out


def interval_times(every: timedelta, after: datetime, until: datetime) -> list[datetime]:
    """The grid times ``EPOCH + k * every`` in ``(after, until]``, at most :data:`MAX_FIRINGS`."""
    k = (after - EPOCH) // every + 1
    out: list[datetime] = []
    while len(out) < MAX_FIRINGS:
        t = EPOCH + k * every
        if t > until:
            break
        out.append(t)
        k += 1
    return out


def firing_window(trigger: Trigger, at: datetime) -> tuple[datetime, datetime]:
    """The period a calendar or interval firing at ``at`` orders."""
    assert trigger.window is not None
    end = at - trigger.lag if trigger.kind is TriggerKind.CALENDAR else at
    return end - trigger.window, end


def ended_orbits(orbits: Sequence[Orbit], delay: timedelta, after: datetime, until: datetime) -> list[Orbit]:
    """Orbits whose end plus ``delay`` lies in ``(after, until]``, at most :data:`MAX_FIRINGS`."""
    if not orbits:
        return []
    found = orbits_in(orbits, after - delay, until - delay + timedelta(microseconds=1))
    return [o for o in found if after < o.stop + delay <= until][:MAX_FIRINGS]


def due_firings(
    trigger: Trigger, orbits: Sequence[Orbit], after: datetime, until: datetime
) -> Iterator[tuple[datetime, datetime, datetime]]:
    """``(firing time, window start, window stop)`` of a clock-driven trigger in ``(after, until]``;
    an orbit trigger fires at each orbit's end plus its delay, for that orbit."""
    if trigger.kind is TriggerKind.ORBIT:
        for o in ended_orbits(orbits, trigger.delay, after, until):
            yield o.stop + trigger.delay, o.start, o.stop
        return
    if trigger.kind is TriggerKind.CALENDAR:
        assert trigger.cron is not None
        times = calendar_times(trigger.cron, after, until)
    else:
        assert trigger.every is not None
        times = interval_times(trigger.every, after, until)
    for at in times:
        yield at, *firing_window(trigger, at)
