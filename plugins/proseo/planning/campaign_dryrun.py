"""Sizing a campaign before it starts, without planning any order.

What the backward planner would do, estimated from slicing and interval reads: the
slices of every requested class (as the units' orders request them) minus those the
campaign's processor has made already; for each slice to make, each selection rule
of its class is checked against the catalogue (one read per source class, then
bisection in memory): satisfied by existing products, planned (a producible source
the planner would make, whose slices are then sized the same way), or missing (an
input-only source not there: the gap the campaign would have). Run time comes from
observed job-step durations per class, else from an assumption that is reported.

It is a sizing, not a plan: policies are read as "a product intersects the rule's
window" (the Cover policies: "one product covers it"; MINCOVER(p): the products
cover p percent); filters on sources are not applied.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.mission_sync import get_mission, loaded_from_catalog
from proseo.catalog.model_order import JobStep, StepState
from proseo.catalog.model_product import Product
from proseo.catalog.products import class_ids
from proseo.missions.models import ConfiguredProcessor, MissionConfig
from proseo.planning.campaign import check
from proseo.planning.campaign_gaps import produced_slices
from proseo.planning.campaign_spec import CampaignSpec
from proseo.planning.campaign_units import Layout, expected_slices, layout, run_class
from proseo.planning.choose import rank_processors
from proseo.planning.slicing import Slice, SlicingError, make_slices
from proseo.rules.ast import QualifierKind, SimpleRule
from proseo.rules.merge import applicable_rules, scoped_rules

#: Missing slices listed one by one (the counts cover all of them).
MAX_LISTED = 1000
#: Completed steps read per dry run to estimate durations (the newest).
MAX_OBSERVED = 50_000


@dataclass
class ClassSizing:
    product_type: str  # the class a job step runs for
    requested: bool
    slices: int = 0  # slices the campaign needs of it
    existing: int = 0  # of those, made already by the campaign's processor (requested classes)
    steps: int = 0  # job steps to run
    seconds_per_step: float = 0.0
    duration_source: str = ""


@dataclass
class MissingInput:
    product_type: str
    input_type: str
    slices: int = 0
    first: list[str] = field(default_factory=list)


@dataclass
class DryRun:
    campaign: str
    mission: str
    units: int
    orders: int
    classes: list[ClassSizing] = field(default_factory=list)
    missing: list[MissingInput] = field(default_factory=list)
    missing_slices: list[tuple[str, str, str]] = field(default_factory=list)  # class, slice, input
    serial_seconds: float = 0.0
    parallel_slots: int = 1
    wall_seconds: float = 0.0
    assumptions: list[str] = field(default_factory=list)
    took_s: float = 0.0

    @property
    def steps(self) -> int:
        return sum(c.steps for c in self.classes)


class _Intervals:
    """One class's products over the campaign's period, sorted by start, for bisection."""

    def __init__(self, rows: list[tuple[datetime, datetime]]) -> None:
        rows.sort()
        self.starts = [a for a, _ in rows]
        self.stops = [b for _, b in rows]
        self.longest = max((b - a for a, b in rows), default=timedelta(0))

    def __bool__(self) -> bool:
        return bool(self.starts)

    def touching(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        i = bisect_left(self.starts, lo - self.longest)
        j = (
            bisect_left(self.starts, hi)
            if hi > lo
            else bisect_left(self.starts, hi + timedelta(microseconds=1))
        )
        return [(self.starts[k], self.stops[k]) for k in range(i, j) if self.stops[k] > lo]


@dataclass(frozen=True)
class _Alt:
    """An alternative of a rule, compiled once: its source and each policy's window deltas."""

    source: str
    policies: tuple[tuple[str, timedelta, timedelta], ...]  # (any | intersect | cover, before, after)
    mincover: int | None

    def window(self, s: Slice) -> tuple[datetime, datetime]:
        """The first windowed policy's window (the slice itself for window-less policies)."""
        for kind, before, after in self.policies:
            if kind != "any":
                return s.start - before, s.stop + after
        return s.start, s.stop


def _compile(rule: SimpleRule) -> list[_Alt]:
    percent = rule.qualifier.percent if rule.qualifier.kind is QualifierKind.MINCOVER else None
    out = []
    for alt in rule.alternatives:
        policies = []
        for p in alt.chain:
            if p.deltas is None:
                policies.append(("any", timedelta(0), timedelta(0)))
            else:
                kind = "cover" if "Cover" in p.name.value else "intersect"
                policies.append((kind, p.deltas[0].timedelta, p.deltas[1].timedelta))
        out.append(_Alt(alt.source.product_type, tuple(policies), percent))
    return out


def _covered(products: list[tuple[datetime, datetime]], lo: datetime, hi: datetime) -> float:
    if hi <= lo:
        return 1.0 if products else 0.0
    total, cursor = timedelta(0), lo
    for a, b in sorted(products):
        a, b = max(a, cursor), min(b, hi)
        if b > a:
            total += b - a
            cursor = b
    return total / (hi - lo)


def _satisfied(alt: _Alt, have: _Intervals, s: Slice) -> bool:
    """Whether a policy of the alternative finds what it needs among the existing products."""
    for kind, before, after in alt.policies:
        if kind == "any":
            if have:
                return True
            continue
        lo, hi = s.start - before, s.stop + after
        found = have.touching(lo, hi)
        if not found:
            continue
        if alt.mincover is not None:
            if _covered(found, lo, hi) * 100 >= alt.mincover - 1e-9:
                return True
            continue
        if kind == "cover" and not any(a <= lo and b >= hi for a, b in found):
            continue
        return True
    return False


class _Sizer:
    def __init__(
        self, session: Session, mission_id: int, cfg: MissionConfig, spec: CampaignSpec, lay: Layout
    ) -> None:
        self.session, self.cfg, self.spec, self.lay = session, cfg, spec, lay
        self.classes = class_ids(session, mission_id)
        self.need: dict[str, dict[tuple[datetime, datetime], Slice]] = defaultdict(dict)
        self.done: dict[str, set[tuple[datetime, datetime]]] = defaultdict(set)
        self.products: dict[str, _Intervals] = {}
        self.missing: dict[tuple[str, str], MissingInput] = {}
        self.listed: list[tuple[str, str, str]] = []
        self.lo = min((p.start for p in lay.parts), default=spec.start)
        self.hi = max((p.stop for p in lay.parts), default=spec.stop)
        self._processors: dict[str, ConfiguredProcessor | None] = {}
        self._run_classes: dict[str, str] = {}
        self._producible: dict[str, bool] = {}
        self._slices: dict[tuple[str, datetime, datetime], list[Slice]] = {}

    def processor(self, rc: str) -> ConfiguredProcessor | None:
        if rc not in self._processors:
            processor = self.cfg.producer_of(rc)
            ranked = (
                rank_processors(
                    self.cfg, processor, self.spec.processing_mode, list(self.spec.configured_processors)
                )[0]
                if processor is not None
                else []
            )
            self._processors[rc] = ranked[0] if ranked else None
        return self._processors[rc]

    def run_class(self, product_type: str) -> str:
        if product_type not in self._run_classes:
            self._run_classes[product_type] = run_class(self.cfg, product_type)
        return self._run_classes[product_type]

    def producible(self, product_type: str) -> bool:
        if product_type not in self._producible:
            self._producible[product_type] = self.cfg.producer_of(product_type) is not None and not (
                {product_type, self.run_class(product_type)} & set(self.spec.input_only_classes)
            )
        return self._producible[product_type]

    def have(self, product_type: str) -> _Intervals:
        held = self.products.get(product_type)
        if held is None:
            pad = timedelta(days=2)
            cid = self.classes.get(product_type)
            rows = []
            if cid is not None:
                rows = [
                    (a, b)
                    for a, b in self.session.execute(
                        select(Product.sensing_start, Product.sensing_stop).where(
                            Product.product_class_id == cid,
                            Product.sensing_stop > self.lo - pad,
                            Product.sensing_start < self.hi + pad,
                        )
                    ).all()
                ]
            held = self.products[product_type] = _Intervals(rows)
        return held

    def slices_of(self, product_type: str, lo: datetime, hi: datetime) -> list[Slice]:
        rc = self.run_class(product_type)
        key = (rc, lo, hi)
        held = self._slices.get(key)
        if held is None:
            held = self._slices[key] = self._make_slices(rc, lo, hi)
        return held

    def _make_slices(self, rc: str, lo: datetime, hi: datetime) -> list[Slice]:
        slicing = self.cfg.product_classes[rc].slicing
        try:
            return make_slices(
                slicing.type,
                lo,
                hi,
                duration=slicing.duration,
                overlap=slicing.overlap,
                orbits=self.lay.orbits,
                anchor=slicing.anchor,
            )
        except SlicingError:
            return []

    def walk(self) -> None:
        queue = deque(self.need)
        while queue:
            rc = queue.popleft()
            new = [s for key, s in self.need[rc].items() if key not in self.done[rc]]
            self.done[rc].update((s.start, s.stop) for s in new)
            cp = self.processor(rc)
            if cp is None or not new:
                continue
            pc = self.cfg.product_classes[rc]
            specs = [
                (r.rule, r.mode, r.configured_processors, f"{rc}.selection_rules[{i}]")
                for i, r in enumerate(pc.selection_rules)
            ]
            for scoped in applicable_rules(scoped_rules(specs), self.spec.processing_mode, cp.id):
                alts = _compile(scoped.rule)
                made = next((a for a in alts if self.producible(a.source)), None)
                haves = [(a, self.have(a.source)) for a in alts]
                for s in new:
                    if any(_satisfied(a, have, s) for a, have in haves):
                        continue
                    if made is not None:
                        source = self.run_class(made.source)
                        needed = self.need[source]
                        before = len(needed)
                        for piece in self.slices_of(made.source, *made.window(s)):
                            needed.setdefault((piece.start, piece.stop), piece)
                        if len(needed) > before and source not in queue:
                            queue.append(source)
                    elif scoped.rule.qualifier.mandatory:
                        self.note_missing(rc, alts[0].source, s)

    def note_missing(self, product_type: str, input_type: str, s: Slice) -> None:
        entry = self.missing.setdefault((product_type, input_type), MissingInput(product_type, input_type))
        entry.slices += 1
        if len(entry.first) < 5:
            entry.first.append(s.label)
        if len(self.listed) < MAX_LISTED:
            self.listed.append((product_type, s.label, input_type))


def _durations(session: Session, cfg: MissionConfig, ids: dict[str, int]) -> dict[str, tuple[float, int]]:
    """Per class, the mean run time of its newest completed job steps and how many there were."""
    names = {v: k for k, v in ids.items()}
    rows = session.execute(
        select(JobStep.product_class_id, JobStep.started_at, JobStep.completed_at)
        .where(
            JobStep.state == StepState.COMPLETED.value,
            JobStep.started_at.is_not(None),
            JobStep.completed_at.is_not(None),
            JobStep.product_class_id.in_(list(names)),
        )
        .order_by(JobStep.id.desc())
        .limit(MAX_OBSERVED)
    ).all()
    sums: dict[str, list[float]] = defaultdict(list)
    for cid, a, b in rows:
        if a is not None and b is not None and b >= a:
            sums[names[cid]].append((b - a).total_seconds())
    return {c: (sum(v) / len(v), len(v)) for c, v in sums.items() if v}


def _assumed(cfg: MissionConfig, cp: ConfiguredProcessor | None) -> float:
    if cp is None:
        return 3600.0
    for version in cfg.processors[cp.processor].versions:
        if version.version == cp.version:
            return version.max_run_time.total_seconds() / 2
    return 3600.0


def dry_run(session: Session, mission: str, spec: CampaignSpec) -> DryRun:
    """Size ``spec`` against the catalogue as it is now (nothing is written)."""
    started = time.perf_counter()
    loaded = loaded_from_catalog(session, mission)
    check(spec, loaded, mission)
    cfg = loaded.config
    lay = layout(spec, cfg, next(iter(loaded.orbits.values()), []))
    mission_id = get_mission(session, mission).id
    out = DryRun(spec.name, mission, len(lay.units), len(lay.parts))
    sizer = _Sizer(session, mission_id, cfg, spec, lay)
    produced = produced_slices(session, mission_id, cfg, spec, sizer.lo, sizer.hi) if lay.parts else {}
    sizing: dict[str, ClassSizing] = {}
    for part in lay.parts:
        for c in part.classes:
            rc = run_class(cfg, c)
            entry = sizing.setdefault(rc, ClassSizing(rc, requested=True))
            for s in expected_slices(cfg, lay, part, c):
                if rc == c:
                    entry.slices += 1
                if (s.start, s.stop) in produced[c]:
                    if rc == c:
                        entry.existing += 1
                else:
                    sizer.need[rc].setdefault((s.start, s.stop), s)
    sizer.walk()
    observed = _durations(session, cfg, sizer.classes)
    facilities = list(spec.facilities) or [cfg.default_facility()]
    for rc, needed in sizer.need.items():
        entry = sizing.setdefault(rc, ClassSizing(rc, requested=False, slices=len(needed)))
        entry.steps = len(needed)
        if rc in observed:
            mean, n = observed[rc]
            entry.seconds_per_step, entry.duration_source = mean, f"observed: mean of {n} completed steps"
        else:
            entry.seconds_per_step = _assumed(cfg, sizer.processor(rc))
            entry.duration_source = "assumed: half the processor version's max_run_time (none completed yet)"
            out.assumptions.append(
                f"{rc}: no completed job step, assumed {entry.seconds_per_step:.0f} s a step"
            )
    out.classes = sorted(sizing.values(), key=lambda c: (not c.requested, c.product_type))
    out.missing = sorted(sizer.missing.values(), key=lambda m: (m.product_type, m.input_type))
    out.missing_slices = sizer.listed
    out.serial_seconds = sum(c.steps * c.seconds_per_step for c in out.classes)
    limit = spec.window.max_active_steps_per_facility
    slots = 0
    for name in facilities:
        fac = cfg.facilities.get(name)
        if fac is not None:
            slots += min(fac.max_concurrent_job_steps, limit) if limit else fac.max_concurrent_job_steps
    out.parallel_slots = max(slots, 1)
    out.wall_seconds = out.serial_seconds / out.parallel_slots
    out.assumptions.append(
        f"run time in parallel: {out.parallel_slots} job step(s) at once (the facilities' "
        "max_concurrent_job_steps, capped by the window), shared with other work"
    )
    out.took_s = time.perf_counter() - started
    return out
