"""Cutting time into slices: orbits, UTC calendar days/months/years, fixed time slices.

Fixed time slices lie on a grid (``anchor + k * duration``, the anchor from the
class's slicing, midnight UTC by default) like calendar days do, so orders starting
at different times cut the same slices.

A slice is the validity window of the products one job step makes. Requested classes
are sliced with the order's slicing (default: the class's own); inputs planned
backwards are sliced with *their* class's slicing, so an orbit L2 feeding a daily L3
plans exactly the orbits that touch that day.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from proseo.missions.orbits import Orbit
from proseo.missions.types import SlicingType

#: Guard against absurd requests before they are materialised (the planner bound is far lower).
MAX_SLICES = 1_000_000
#: Where the TIME_SLICE grid starts when the class names no anchor: midnight UTC.
DEFAULT_ANCHOR = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Slice:
    start: datetime
    stop: datetime
    orbit: int | None = None

    @property
    def label(self) -> str:
        if self.orbit is not None:
            return f"orbit {self.orbit}"
        return f"{self.start:%Y-%m-%dT%H:%M:%SZ}/{self.stop:%Y-%m-%dT%H:%M:%SZ}"


class SlicingError(ValueError):
    """A slicing request that cannot be carried out (the caller names the order)."""


def _day(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


def _month(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def _next_month(t: datetime) -> datetime:
    return datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)


def _calendar(kind: SlicingType, start: datetime, stop: datetime) -> Iterator[Slice]:
    """Every calendar unit that intersects ``[start, stop)`` (a zero-length window: its unit)."""
    if kind is SlicingType.CALENDAR_DAY:
        cursor, step = _day(start), lambda t: t + timedelta(days=1)
    elif kind is SlicingType.CALENDAR_MONTH:
        cursor, step = _month(start), _next_month
    else:
        cursor, step = (
            datetime(start.year, 1, 1, tzinfo=UTC),
            lambda t: datetime(t.year + 1, 1, 1, tzinfo=UTC),
        )
    while True:
        end = step(cursor)
        yield Slice(cursor, end)
        if end >= stop:
            return
        cursor = end


def _time_slices(
    start: datetime, stop: datetime, duration: timedelta, overlap: timedelta, anchor: datetime
) -> Iterator[Slice]:
    """The grid slices ``anchor + k * duration`` that intersect ``[start, stop)`` (a zero-length
    window: the slice holding it); half the overlap is added at each end."""
    if duration <= timedelta(0):
        raise SlicingError("TIME_SLICE needs a positive slice duration")
    half = overlap / 2
    cursor = anchor + ((start - anchor) // duration) * duration  # floor, also before the anchor
    while True:
        yield Slice(cursor - half, cursor + duration + half)
        cursor += duration
        if cursor >= stop:
            return


_STARTS: dict[int, tuple[Sequence[Orbit], list[datetime]]] = {}


def _starts(orbits: Sequence[Orbit]) -> list[datetime]:
    """Orbit start times, computed once per orbit table (a planner asks thousands of times)."""
    held = _STARTS.get(id(orbits))
    if held is None or held[0] is not orbits or len(held[1]) != len(orbits):
        if len(_STARTS) > 16:
            _STARTS.clear()
        held = (orbits, [o.start for o in orbits])
        _STARTS[id(orbits)] = held
    return held[1]


def orbits_in(orbits: Sequence[Orbit], start: datetime, stop: datetime) -> list[Orbit]:
    """Orbits intersecting ``[start, stop)``; a zero-length window takes the orbit holding it."""
    starts = _starts(orbits)
    lo = max(bisect_right(starts, start) - 1, 0)
    hi = bisect_left(starts, stop) if stop > start else bisect_right(starts, start)
    return [o for o in orbits[lo:hi] if o.stop > start and (o.start < stop or start == stop)]


def orbit_range(orbits: Sequence[Orbit], first: int, last: int) -> list[Orbit]:
    if first > last:
        raise SlicingError(f"orbit range {first}..{last} is empty")
    chosen = [o for o in orbits if first <= o.number <= last]
    known = {o.number for o in chosen}
    missing = [n for n in (first, last) if n not in known]
    if missing:
        span = f"{orbits[0].number}..{orbits[-1].number}" if orbits else "none"
        raise SlicingError(f"orbit {missing[0]} is not in the mission's orbit table (known: {span})")
    return chosen


def make_slices(
    kind: SlicingType | str,
    start: datetime,
    stop: datetime,
    *,
    duration: timedelta | None = None,
    overlap: timedelta = timedelta(0),
    orbits: Sequence[Orbit] = (),
    anchor: datetime | None = None,
) -> list[Slice]:
    """The slices of ``kind`` that cover the window ``[start, stop]``.

    TIME_SLICE slices are aligned to ``anchor + k * duration`` (default
    :data:`DEFAULT_ANCHOR`), not to ``start``: two windows cut the same slices where
    they overlap.
    """
    kind = SlicingType(kind)
    start, stop = start.astimezone(UTC), stop.astimezone(UTC)  # calendar units are UTC units
    if stop < start:
        raise SlicingError(f"the window ends ({stop.isoformat()}) before it starts ({start.isoformat()})")
    if kind is SlicingType.NONE:
        return [Slice(start, stop)]
    if kind is SlicingType.ORBIT:
        if not orbits:
            raise SlicingError("ORBIT slicing needs the mission's orbits, and it has none")
        found = orbits_in(orbits, start, stop)
        if not found:
            raise SlicingError(f"no orbit intersects {start.isoformat()} .. {stop.isoformat()}")
        return [Slice(o.start, o.stop, o.number) for o in found]
    if kind is SlicingType.TIME_SLICE:
        if duration is None:
            raise SlicingError("TIME_SLICE needs a slice duration")
        grid = (anchor or DEFAULT_ANCHOR).astimezone(UTC)
        source: Iterator[Slice] = _time_slices(start, stop, duration, overlap, grid)
    else:
        source = _calendar(kind, start, stop)
    out: list[Slice] = []
    for piece in source:
        out.append(piece)
        if len(out) > MAX_SLICES:
            raise SlicingError(f"more than {MAX_SLICES:,} slices: choose a longer slice or a shorter window")
    return out
