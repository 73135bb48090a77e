"""Cutting a campaign into units and parts, and naming their orders deterministically.

A unit is a UTC day or month of the campaign's period. Its classes are sliced as the
planner slices them: an orbit-sliced class by orbits, a calendar or time-sliced one by
its calendar. An orbit crossing midnight belongs to the unit in which it *starts*, so
two units never request the same orbit (their orders would claim the same products
and refuse each other's release). An order has one period, so a unit whose classes
mix both kinds has two parts: ``orbits`` (an orbit range) and ``period`` (the unit's
window); a unit of one kind has one part.

Everything here is a pure function of the campaign request and the orbit table: the
order identifier and generation key of a unit and attempt are always the same, which
is what makes a pass idempotent across restarts.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from proseo.missions.models import MissionConfig
from proseo.missions.orbits import Orbit
from proseo.missions.types import SlicingType
from proseo.planning.campaign_spec import CampaignSpec, CampaignUnit
from proseo.planning.slicing import Slice, make_slices
from proseo.planning.spec import OrderSpec

ORBITS = "orbits"
PERIOD = "period"


@dataclass(frozen=True)
class Part:
    """One order's worth of a unit: its key (stored on the order) and its period."""

    key: str  # "20250301", or "20250301:orbits" when the unit has two parts
    unit: str  # "20250301" or "202503"
    kind: str  # ORBITS or PERIOD
    start: datetime
    stop: datetime
    orbit_from: int | None = None
    orbit_to: int | None = None
    classes: tuple[str, ...] = ()

    def identifier(self, campaign: str, attempt: int) -> str:
        base = f"{campaign}_{self.key.replace(':', '_')}"
        return base if attempt == 0 else f"{base}_r{attempt}"


@dataclass
class Layout:
    """The campaign's units and parts in time order, and each requested class's slicing."""

    parts: list[Part] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # requested class -> ORBITS | PERIOD
    orbits: Sequence[Orbit] = ()

    _numbers: list[int] | None = None

    @property
    def units(self) -> list[str]:
        return list(dict.fromkeys(p.unit for p in self.parts))

    def numbers(self) -> list[int]:
        if self._numbers is None:
            self._numbers = [o.number for o in self.orbits]
        return self._numbers


def run_class(cfg: MissionConfig, product_type: str) -> str:
    """The class whose processor run makes ``product_type`` (components: the enclosing class)."""
    current = product_type
    while not cfg.product_classes[current].processor and cfg.enclosing_of(current):
        current = cfg.enclosing_of(current) or current
    return current


def slicing_kind(cfg: MissionConfig, product_type: str) -> SlicingType:
    return cfg.product_classes[run_class(cfg, product_type)].slicing.type


def unit_windows(spec: CampaignSpec) -> list[tuple[str, datetime, datetime]]:
    """(label, start, stop) of every unit, clipped to the campaign's period."""
    kind = SlicingType.CALENDAR_DAY if spec.unit is CampaignUnit.DAY else SlicingType.CALENDAR_MONTH
    fmt = "%Y%m%d" if spec.unit is CampaignUnit.DAY else "%Y%m"
    out = []
    for s in make_slices(kind, spec.start, spec.stop):
        if s.start >= spec.stop:
            break
        out.append((s.start.strftime(fmt), max(s.start, spec.start), min(s.stop, spec.stop)))
    return out


def layout(spec: CampaignSpec, cfg: MissionConfig, orbits: Sequence[Orbit]) -> Layout:
    kinds = {
        c: ORBITS if slicing_kind(cfg, c) is SlicingType.ORBIT else PERIOD for c in spec.requested_classes
    }
    both = len(set(kinds.values())) > 1
    starts = [o.start for o in orbits]
    out = Layout(kinds=kinds, orbits=orbits)
    for label, start, stop in unit_windows(spec):
        for kind in (ORBITS, PERIOD):
            classes = tuple(c for c in spec.requested_classes if kinds[c] == kind)
            if not classes:
                continue
            key = f"{label}:{kind}" if both else label
            if kind == PERIOD:
                out.parts.append(Part(key, label, kind, start, stop, classes=classes))
                continue
            chosen = orbits[bisect_left(starts, start) : bisect_left(starts, stop)]
            if chosen:
                out.parts.append(
                    Part(
                        key,
                        label,
                        kind,
                        chosen[0].start,
                        chosen[-1].stop,
                        chosen[0].number,
                        chosen[-1].number,
                        classes,
                    )
                )
    return out


def expected_slices(cfg: MissionConfig, lay: Layout, part: Part, product_type: str) -> list[Slice]:
    """The slices of ``product_type`` the part's order requests (what the planner cuts)."""
    if part.kind == ORBITS:
        assert part.orbit_from is not None and part.orbit_to is not None
        numbers = lay.numbers()
        lo = bisect_left(numbers, part.orbit_from)
        hi = bisect_left(numbers, part.orbit_to + 1)
        return [Slice(o.start, o.stop, o.number) for o in lay.orbits[lo:hi]]
    slicing = cfg.product_classes[run_class(cfg, product_type)].slicing
    return make_slices(
        slicing.type,
        part.start,
        part.stop,
        duration=slicing.duration,
        overlap=slicing.overlap,
        anchor=slicing.anchor,
    )


def order_spec(spec: CampaignSpec, part: Part, attempt: int) -> OrderSpec:
    """The request of one part's order: only the classes of its kind, over its period."""
    identifier = part.identifier(spec.name, attempt)
    if part.kind == ORBITS:
        request = spec.order_spec(identifier, orbit_from=part.orbit_from, orbit_to=part.orbit_to)
    else:
        request = spec.order_spec(identifier, start=part.start, stop=part.stop)
    return request.model_copy(update={"requested_classes": list(part.classes)})


def generation_key(mission: str, campaign: str, part_key: str, attempt: int) -> str:
    """sha256 over mission, campaign, part and attempt: one order each, whoever asks."""
    text = "\x1f".join(["campaign", mission, campaign, part_key, str(attempt)])
    return hashlib.sha256(text.encode()).hexdigest()


_LONGER = {
    CampaignUnit.DAY: {SlicingType.CALENDAR_MONTH, SlicingType.CALENDAR_YEAR, SlicingType.NONE},
    CampaignUnit.MONTH: {SlicingType.CALENDAR_YEAR, SlicingType.NONE},
}


def slicing_problems(spec: CampaignSpec, cfg: MissionConfig) -> list[str]:
    """Requested classes whose slices do not nest in a unit (two units would order them)."""
    out = []
    for c in spec.requested_classes:
        if c not in cfg.product_classes:
            continue  # reported by check_campaign
        kind = slicing_kind(cfg, c)
        if kind in _LONGER[spec.unit]:
            out.append(
                f"requested_classes: {c} is sliced {kind.value}, which does not fit in a "
                f"campaign unit of a {spec.unit.value} (use unit: month, or another class)"
            )
    return out
