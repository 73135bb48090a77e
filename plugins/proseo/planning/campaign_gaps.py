"""Expected versus produced per class and slice of a campaign, and why each gap is there.

Expected: the slices of every requested class in every unit (what the unit's order
requests, :func:`campaign_units.expected_slices`). Produced: products in the
catalogue of that class and slice, in the campaign's mode and file class, made by the
configured processor the campaign's orders use (pinned, else the newest for the
mode): one interval query per class. A product in the catalogue wins over a stale
failure: a slice is a gap only if no such product exists, whatever its orders did.

Each gap gets its reason from the latest attempt of its unit: the step that was to make
it failed (with its reason; "input missing: <class>" when a mandatory input of the step,
or of a step upstream of it, was never satisfied), it waits for an input, it is still in
progress, its order failed to plan (the planner's message), or it was not started yet.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.model_campaign import Campaign
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryOutput,
    Job,
    JobStep,
    JobStepEdge,
    JobStepOutput,
    OrderState,
    ProcessingOrder,
    StepState,
)
from proseo.catalog.model_product import Product
from proseo.catalog.products import class_ids, processor_ids
from proseo.missions.models import MissionConfig
from proseo.planning.campaign import (
    FAILED,
    Layout,
    UnitOrder,
    get_campaign,
    latest_orders,
    layout_of,
    spec_of,
)
from proseo.planning.campaign_spec import CampaignSpec
from proseo.planning.campaign_units import expected_slices, run_class
from proseo.planning.choose import rank_processors
from proseo.planning.slicing import Slice

INPUT_MISSING = "input missing"
STEP_FAILED = "step failed"
PLANNING_FAILED = "planning failed"
IN_PROGRESS = "in progress"
NOT_STARTED = "not yet started"
NOT_MADE = "not made"
#: Reasons a retry of the gaps may fill (the others are still being worked on).
RETRYABLE = frozenset({INPUT_MISSING, STEP_FAILED, PLANNING_FAILED, NOT_MADE})


@dataclass(frozen=True)
class Gap:
    product_type: str
    part: str
    start: datetime
    stop: datetime
    orbit: int | None
    reason: str  # one of the constants above
    detail: str = ""
    order: str | None = None

    @property
    def label(self) -> str:
        return Slice(self.start, self.stop, self.orbit).label


@dataclass
class Cell:
    """Expected and produced products of one class in one unit (a row of the heat map)."""

    product_type: str
    unit: str
    expected: int = 0
    produced: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def missing(self) -> int:
        return self.expected - self.produced


@dataclass
class GapReport:
    campaign: str
    mission: str
    state: str
    cells: list[Cell] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return sum(c.expected for c in self.cells)

    @property
    def produced(self) -> int:
        return sum(c.produced for c in self.cells)

    def reasons(self) -> dict[str, int]:
        return dict(Counter(g.reason for g in self.gaps))


def chosen_processors(spec: CampaignSpec, cfg: MissionConfig) -> dict[str, str]:
    """Run class -> the configured processor the campaign's orders use for it."""
    out = {}
    for c in spec.requested_classes:
        rc = run_class(cfg, c)
        processor = cfg.producer_of(rc)
        if processor is None:
            continue
        ranked, _ = rank_processors(cfg, processor, spec.processing_mode, list(spec.configured_processors))
        if ranked:
            out[rc] = ranked[0].id
    return out


def produced_slices(
    session: Session, mission_id: int, cfg: MissionConfig, spec: CampaignSpec, lo: datetime, hi: datetime
) -> dict[str, set[tuple[datetime, datetime]]]:
    """Per requested class, the (start, stop) of the products the campaign counts as made."""
    classes = class_ids(session, mission_id)
    processors = processor_ids(session, mission_id)
    chosen = chosen_processors(spec, cfg)
    file_class = spec.output_file_class or cfg.mission.file_classes[0]
    out: dict[str, set[tuple[datetime, datetime]]] = {}
    for c in spec.requested_classes:
        query = select(Product.sensing_start, Product.sensing_stop).where(
            Product.product_class_id == classes[c],
            Product.sensing_start >= lo,
            Product.sensing_start < hi,
            Product.mode == spec.processing_mode,
            Product.file_class == file_class,
        )
        cp = chosen.get(run_class(cfg, c))
        if cp is not None and cp in processors:
            query = query.where(Product.configured_processor_id == processors[cp])
        out[c] = {(a, b) for a, b in session.execute(query)}
    return out


@dataclass(frozen=True)
class _Made:
    """What the latest attempt's step that was to make a slice did."""

    step_id: int
    state: str
    reason: str | None
    order: str
    order_state: str
    attempt: int


def _steps_for(session: Session, campaign_id: int, class_id_list: list[int]) -> dict[tuple, _Made]:
    """(class id, start, stop) -> the step of the highest attempt that plans it."""
    rows = session.execute(
        select(
            JobStepOutput.product_class_id,
            JobStepOutput.sensing_start,
            JobStepOutput.sensing_stop,
            JobStep.id,
            JobStep.state,
            JobStep.failure_reason,
            ProcessingOrder.identifier,
            ProcessingOrder.state,
            ProcessingOrder.campaign_attempt,
        )
        .join(JobStep, JobStep.id == JobStepOutput.job_step_id)
        .join(Job, Job.id == JobStep.job_id)
        .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
        .where(ProcessingOrder.campaign_id == campaign_id, JobStepOutput.product_class_id.in_(class_id_list))
    ).all()
    out: dict[tuple, _Made] = {}
    for cid, a, b, sid, state, reason, ident, ostate, attempt in rows:
        made = _Made(sid, state, reason, ident, ostate, attempt or 0)
        held = out.get((cid, a, b))
        if held is None or made.attempt > held.attempt:
            out[(cid, a, b)] = made
    return out


def missing_inputs(session: Session, step_ids: list[int]) -> dict[int, list[str]]:
    """Per step, the classes of mandatory inputs never satisfied, its own or upstream of it.

    Upstream: through the order's job_step_edge and through the outputs of other steps
    (also of other orders) its input queries are bound to.
    """
    names = dict(session.execute(select(ProductClass.id, ProductClass.product_type)).all())
    own: dict[int, set[str]] = defaultdict(set)
    ups: dict[int, set[int]] = defaultdict(set)
    frontier = set(step_ids)
    seen: set[int] = set()
    while frontier:
        batch = sorted(frontier - seen)[:5000]
        if not batch:
            break
        seen.update(batch)
        for sid, cid in session.execute(
            select(InputQuery.job_step_id, InputQuery.source_class_id).where(
                InputQuery.job_step_id.in_(batch), InputQuery.mandatory, ~InputQuery.satisfied
            )
        ):
            own[sid].add(names.get(cid, str(cid)))
        for up, down in session.execute(
            select(JobStepEdge.upstream_id, JobStepEdge.downstream_id).where(
                JobStepEdge.downstream_id.in_(batch)
            )
        ):
            ups[down].add(up)
        # Outputs of another order's steps it waits for (a unit's L3 reads the L2 of the
        # unit's orbit order): no edge links those steps, the binding does.
        for down, up in session.execute(
            select(InputQuery.job_step_id, JobStepOutput.job_step_id)
            .join(InputQueryOutput, InputQueryOutput.query_id == InputQuery.id)
            .join(JobStepOutput, JobStepOutput.id == InputQueryOutput.output_id)
            .where(InputQuery.job_step_id.in_(batch))
        ):
            ups[down].add(up)
        frontier = {u for b in batch for u in ups[b]} | (frontier - set(batch))

    def closure(sid: int, path: frozenset[int] = frozenset()) -> set[str]:
        found = set(own[sid])
        for up in ups[sid] - path:
            found |= closure(up, path | {sid})
        return found

    return {sid: sorted(closure(sid)) for sid in step_ids}


def _reason(made: _Made | None, order: UnitOrder | None, inputs: list[str]) -> tuple[str, str]:
    if order is None:
        return NOT_STARTED, ""
    if order.state == OrderState.PLANNING_FAILED.value:
        return PLANNING_FAILED, order.state_message or ""
    if made is None:
        if order.state in FAILED:
            return STEP_FAILED, order.state_message or f"order {order.state}"
        if order.state in (OrderState.COMPLETED.value, OrderState.CLOSED.value):
            return NOT_MADE, "its order completed without making it (an existing product was reused)"
        return IN_PROGRESS, f"order {order.state}"
    if made.state == StepState.FAILED.value:
        if inputs:
            return INPUT_MISSING, f"{', '.join(inputs)} (step failed: {made.reason or 'no reason'})"
        return STEP_FAILED, made.reason or "no reason recorded"
    if made.state == StepState.WAITING_INPUT.value:
        return INPUT_MISSING, f"{', '.join(inputs) or 'an input'} (waiting)"
    if made.state == StepState.COMPLETED.value:
        return NOT_MADE, "the step completed but no matching product is in the catalogue"
    return IN_PROGRESS, f"step {made.state}"


def gap_report(session: Session, mission: str, name: str) -> GapReport:
    campaign: Campaign = get_campaign(session, mission, name)
    spec = spec_of(campaign)
    loaded, lay = layout_of(session, mission, spec)
    return gaps_of(session, campaign, mission, spec, loaded.config, lay)


def gaps_of(
    session: Session, campaign: Campaign, mission: str, spec: CampaignSpec, cfg: MissionConfig, lay: Layout
) -> GapReport:
    report = GapReport(campaign.name, mission, campaign.state)
    if not lay.parts:
        return report
    lo = min(p.start for p in lay.parts)
    hi = max(p.stop for p in lay.parts)
    produced = produced_slices(session, campaign.mission_id, cfg, spec, lo, hi)
    latest = latest_orders(session, campaign.id)
    ids = class_ids(session, campaign.mission_id)
    missing: list[tuple[str, str, Slice]] = []
    for part in lay.parts:
        for c in part.classes:
            cell = Cell(c, part.unit)
            for s in expected_slices(cfg, lay, part, c):
                cell.expected += 1
                if (s.start, s.stop) in produced[c]:
                    cell.produced += 1
                else:
                    missing.append((c, part.key, s))
            report.cells.append(cell)
    if not missing:
        return report
    steps = _steps_for(session, campaign.id, [ids[c] for c in spec.requested_classes])
    troubled = [
        m.step_id
        for m in steps.values()
        if m.state in (StepState.FAILED.value, StepState.WAITING_INPUT.value)
    ]
    inputs = missing_inputs(session, troubled) if troubled else {}
    cells = {(cell.product_type, cell.unit): cell for cell in report.cells}
    unit_of = {p.key: p.unit for p in lay.parts}
    for c, key, s in missing:
        made = steps.get((ids[c], s.start, s.stop))
        order = latest.get(key)
        if made is not None and order is not None and made.attempt < order.attempt:
            made = None  # the latest attempt did not plan it (reused or not needed)
        reason, detail = _reason(made, order, inputs.get(made.step_id, []) if made else [])
        gap = Gap(c, key, s.start, s.stop, s.orbit, reason, detail, order.identifier if order else None)
        report.gaps.append(gap)
        cells[(c, unit_of[key])].reasons[reason] += 1
    return report
