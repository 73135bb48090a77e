"""Reprocessing campaigns: create, steer, and the pass that releases units a window at a time.

The pass (:func:`campaign_pass`) derives everything from the catalogue each time:
which units have orders (``campaign_id``, ``campaign_unit``, ``campaign_attempt``),
which of those are active, ended or failed. It creates the next units' orders (a
deterministic identifier and a unique generation key per campaign, unit and attempt,
so a pass that dies half-way and the one after it make each order once) up to the
window, then approves, plans and releases every order of the campaign not released
yet, in unit order. Nothing is kept in memory between passes, so a restarted
scheduler resumes where the catalogue says the campaign is.

States (:class:`CampaignState`): CREATED -start-> RUNNING -pause-> PAUSED -resume->
RUNNING; cancel (cancels the active orders) -> CANCELLED; RUNNING becomes COMPLETED
when every unit's latest order has ended (completed or failed: a failure is a gap
with its reason, see :mod:`campaign_gaps`); retry-gaps takes a RUNNING or COMPLETED
campaign to the next retry round, whose pass orders the failed units again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.mission_sync import get_mission, loaded_from_catalog
from proseo.catalog.model_campaign import Campaign, CampaignState
from proseo.catalog.model_mission import Facility, Mission
from proseo.catalog.model_order import Job, JobStep, OrderState, ProcessingOrder, StepState
from proseo.errors import (
    CampaignError,
    CampaignTransition,
    ConflictError,
    IllegalTransition,
    NotFoundError,
)
from proseo.missions.loader import LoadedMission
from proseo.planning import lifecycle
from proseo.planning.campaign_spec import CampaignSpec, check_campaign
from proseo.planning.campaign_units import Layout, Part, generation_key, layout, order_spec, slicing_problems
from proseo.planning.orders import create_order

S = CampaignState
#: Order states that hold a place in the window.
ACTIVE = frozenset(
    {
        OrderState.INITIAL.value,
        OrderState.APPROVED.value,
        OrderState.PLANNING.value,
        OrderState.PLANNED.value,
        OrderState.RELEASING.value,
        OrderState.RELEASED.value,
        OrderState.RUNNING.value,
        OrderState.SUSPENDING.value,
    }
)
#: Order states of a unit that failed (a retry round orders it again).
FAILED = frozenset({OrderState.FAILED.value, OrderState.PLANNING_FAILED.value})
#: Orders the pass carries on (approve, plan, release).
WAITING = (OrderState.INITIAL.value, OrderState.APPROVED.value, OrderState.PLANNED.value)
_UNFINISHED_STEPS = (
    StepState.PLANNED.value,
    StepState.WAITING_INPUT.value,
    StepState.READY.value,
    StepState.RUNNING.value,
)

TRANSITIONS: dict[str, tuple[frozenset[S], S]] = {
    "start": (frozenset({S.CREATED}), S.RUNNING),
    "pause": (frozenset({S.RUNNING}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.RUNNING),
    "cancel": (frozenset({S.CREATED, S.RUNNING, S.PAUSED}), S.CANCELLED),
    "retry-gaps": (frozenset({S.RUNNING, S.COMPLETED}), S.RUNNING),
}


@dataclass(frozen=True)
class UnitOrder:
    """The latest order of a campaign part, as the catalogue has it."""

    id: int
    identifier: str
    state: str
    state_message: str | None
    part: str
    attempt: int
    facility_id: int | None


@dataclass
class PassResult:
    campaign: str
    state: str
    created: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<order>: <reason>"
    active: int = 0
    pending: int = 0


# -- reading ------------------------------------------------------------------------


def spec_of(campaign: Campaign) -> CampaignSpec:
    return CampaignSpec.model_validate(campaign.spec)


def get_campaign(session: Session, mission: str, name: str, *, lock: bool = False) -> Campaign:
    query = (
        select(Campaign)
        .join(Mission, Mission.id == Campaign.mission_id)
        .where(Mission.code == mission, Campaign.name == name)
    )
    if lock:
        query = query.with_for_update()
    found = session.scalar(query)
    if found is None:
        raise NotFoundError(f"{mission}/{name}: no such campaign")
    return found


def list_campaigns(session: Session, mission: str | None = None) -> list[tuple[Campaign, str]]:
    query = select(Campaign, Mission.code).join(Mission, Mission.id == Campaign.mission_id)
    if mission:
        query = query.where(Mission.code == mission)
    return [(c, code) for c, code in session.execute(query.order_by(Mission.code, Campaign.name)).all()]


def latest_orders(session: Session, campaign_id: int) -> dict[str, UnitOrder]:
    """Per part key, its order of the highest attempt (one statement)."""
    rows = session.execute(
        select(
            ProcessingOrder.id,
            ProcessingOrder.identifier,
            ProcessingOrder.state,
            ProcessingOrder.state_message,
            ProcessingOrder.campaign_unit,
            ProcessingOrder.campaign_attempt,
            ProcessingOrder.facility_id,
        ).where(ProcessingOrder.campaign_id == campaign_id)
    ).all()
    out: dict[str, UnitOrder] = {}
    for oid, ident, state, message, part, attempt, fac in rows:
        o = UnitOrder(oid, ident, state, message, part or "", attempt or 0, fac)
        held = out.get(o.part)
        if held is None or o.attempt > held.attempt:
            out[o.part] = o
    return out


def layout_of(session: Session, mission: str, spec: CampaignSpec) -> tuple[LoadedMission, Layout]:
    loaded = loaded_from_catalog(session, mission)
    orbits = next(iter(loaded.orbits.values()), [])
    return loaded, layout(spec, loaded.config, orbits)


def pending_parts(lay: Layout, latest: dict[str, UnitOrder], retry_round: int) -> list[tuple[Part, int]]:
    """Parts still to order, in time order, with the attempt their order will be."""
    out = []
    for part in lay.parts:
        held = latest.get(part.key)
        if held is None:
            out.append((part, 0))
        elif held.state in FAILED and held.attempt < retry_round:
            out.append((part, retry_round))
    return out


# -- creating and steering ------------------------------------------------------------


def check(spec: CampaignSpec, loaded: LoadedMission, mission: str) -> None:
    """Every check of a request against its mission (fields, then slicing that fits the units)."""
    check_campaign(spec, loaded.config)
    problems = slicing_problems(spec, loaded.config)
    if problems:
        raise CampaignError("invalid campaign: " + "; ".join(problems), mission=mission, campaign=spec.name)


def create_campaign(session: Session, mission: str, spec: CampaignSpec) -> Campaign:
    """A new CREATED campaign, checked against the mission's latest revision."""
    check(spec, loaded_from_catalog(session, mission), mission)
    mission_id = get_mission(session, mission).id
    taken = session.scalar(
        select(Campaign.id).where(Campaign.mission_id == mission_id, Campaign.name == spec.name)
    )
    if taken is not None:
        raise ConflictError(f"{mission}/{spec.name}: a campaign with this name exists")
    campaign = Campaign(
        mission_id=mission_id,
        name=spec.name,
        state=S.CREATED.value,
        spec=spec.model_dump(mode="json"),
        retry_round=0,
    )
    session.add(campaign)
    session.flush()
    return campaign


def _move(campaign: Campaign, mission: str, operation: str, message: str | None = None) -> None:
    sources, target = TRANSITIONS[operation]
    if S(campaign.state) not in sources:
        allowed = sorted(s.value for s in sources)
        raise CampaignTransition(
            operation, campaign.state, allowed=allowed, mission=mission, campaign=campaign.name
        )
    now = utcnow()
    campaign.state = target.value
    campaign.state_message = message
    campaign.updated_at = now
    if operation == "start":
        campaign.started_at = now
    if target is not S.COMPLETED:
        campaign.completed_at = None


def start_campaign(catalog: Catalog, mission: str, name: str) -> PassResult:
    """Start, then run a first pass at once (the first window is released now)."""
    with catalog.session() as session:
        _move(get_campaign(session, mission, name, lock=True), mission, "start")
    return campaign_pass(catalog, mission, name)


def pause_campaign(catalog: Catalog, mission: str, name: str) -> None:
    with catalog.session() as session:
        campaign = get_campaign(session, mission, name, lock=True)
        _move(campaign, mission, "pause", "paused: nothing new released")


def resume_campaign(catalog: Catalog, mission: str, name: str) -> PassResult:
    with catalog.session() as session:
        _move(get_campaign(session, mission, name, lock=True), mission, "resume")
    return campaign_pass(catalog, mission, name)


def cancel_campaign(catalog: Catalog, mission: str, name: str) -> list[str]:
    """Cancel the campaign and its active orders; the identifiers of the orders cancelled."""
    with catalog.session() as session:
        campaign = get_campaign(session, mission, name, lock=True)
        _move(campaign, mission, "cancel", "cancelled")
        active = [o for o in latest_orders(session, campaign.id).values() if o.state in ACTIVE]
    cancelled = []
    for o in sorted(active, key=lambda o: o.part):
        try:
            if o.state == OrderState.INITIAL.value:
                lifecycle.approve_order(catalog, mission, o.identifier)
            lifecycle.cancel_order(catalog, mission, o.identifier, message=f"campaign {name} cancelled")
            cancelled.append(o.identifier)
        except IllegalTransition:
            continue  # it ended meanwhile
    return cancelled


def retry_gaps(catalog: Catalog, mission: str, name: str) -> PassResult:
    """Order the failed units again (a new attempt each; units that completed are left alone)."""
    with catalog.session() as session:
        campaign = get_campaign(session, mission, name, lock=True)
        _move(campaign, mission, "retry-gaps", f"retry round {campaign.retry_round + 1}")
        campaign.retry_round += 1
    return campaign_pass(catalog, mission, name)


# -- the pass -------------------------------------------------------------------------


def _active_steps(session: Session, campaign_id: int) -> Counter[int | None]:
    """Unfinished job steps of the campaign's active orders, per facility."""
    rows = session.execute(
        select(ProcessingOrder.facility_id, func.count())
        .select_from(JobStep)
        .join(Job, Job.id == JobStep.job_id)
        .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
        .where(
            ProcessingOrder.campaign_id == campaign_id,
            ProcessingOrder.state.in_(ACTIVE),
            JobStep.state.in_(_UNFINISHED_STEPS),
        )
        .group_by(ProcessingOrder.facility_id)
    ).all()
    return Counter({fac: int(n) for fac, n in rows})


def _facilities(session: Session, mission_id: int, spec: CampaignSpec, default: str) -> dict[str, int]:
    names = list(spec.facilities) or [default]
    ids = dict(
        session.execute(
            select(Facility.name, Facility.id).where(
                Facility.mission_id == mission_id, Facility.name.in_(names)
            )
        ).all()
    )
    return {n: ids[n] for n in names if n in ids}


def _plan_window(
    session: Session, campaign: Campaign, mission: str, result: PassResult, now: datetime
) -> None:
    """Create the orders of the next parts up to the window (in this transaction)."""
    spec = spec_of(campaign)
    loaded, lay = layout_of(session, mission, spec)
    latest = latest_orders(session, campaign.id)
    active = [o for o in latest.values() if o.state in ACTIVE]
    pending = pending_parts(lay, latest, campaign.retry_round)
    result.active, result.pending = len(active), len(pending)
    if not active and not pending:
        campaign.state = S.COMPLETED.value
        campaign.completed_at = now
        campaign.state_message = f"{len(lay.parts)} unit order(s) ended"
        result.state = campaign.state
        return
    facilities = _facilities(session, campaign.mission_id, spec, loaded.config.default_facility())
    per_facility = Counter(o.facility_id for o in active)
    steps = _active_steps(session, campaign.id) if spec.window.max_active_steps_per_facility else Counter()
    limit = spec.window.max_active_steps_per_facility
    for part, attempt in pending:
        if len(active) + len(result.created) >= spec.window.max_active_orders:
            break
        open_ = [(per_facility[i], n) for n, i in facilities.items() if limit is None or steps[i] < limit]
        if not open_:
            break
        facility = min(open_)[1]
        request = order_spec(spec, part, attempt).model_copy(update={"facility": facility})
        try:
            with session.begin_nested():
                create_order(
                    session,
                    mission,
                    request,
                    generated={
                        "generation_key": generation_key(mission, spec.name, part.key, attempt),
                        "campaign_id": campaign.id,
                        "campaign_unit": part.key,
                        "campaign_attempt": attempt,
                    },
                )
        except (IntegrityError, ConflictError):
            continue  # another pass made it meanwhile
        per_facility[facilities[facility]] += 1
        result.created.append(request.identifier)


def _advance(catalog: Catalog, mission: str, campaign_id: int, result: PassResult) -> None:
    """Approve, plan and release the campaign's orders not released yet, in unit order."""
    with catalog.session() as session:
        todo = session.execute(
            select(ProcessingOrder.identifier, ProcessingOrder.state)
            .where(ProcessingOrder.campaign_id == campaign_id, ProcessingOrder.state.in_(WAITING))
            .order_by(ProcessingOrder.campaign_unit, ProcessingOrder.campaign_attempt)
        ).all()
    lifecycle.carry_to_release(catalog, mission, todo, result.released, result.failed)


def campaign_pass(catalog: Catalog, mission: str, name: str, *, now: datetime | None = None) -> PassResult:
    """One pass: derive the campaign's state, order the next units, carry its orders on."""
    now = now or utcnow()
    with catalog.session() as session:
        campaign = get_campaign(session, mission, name, lock=True)
        result = PassResult(name, campaign.state)
        campaign.last_pass_at = now
        if campaign.state != S.RUNNING.value:
            return result
        _plan_window(session, campaign, mission, result, now)
        campaign_id = campaign.id
        if campaign.state != S.RUNNING.value:
            return result
    _advance(catalog, mission, campaign_id, result)
    return result


def running_campaigns(catalog: Catalog) -> list[tuple[str, str]]:
    """(mission, name) of every RUNNING campaign: what the campaign DAG passes over."""
    with catalog.session() as session:
        rows = session.execute(
            select(Mission.code, Campaign.name)
            .join(Mission, Mission.id == Campaign.mission_id)
            .where(Campaign.state == S.RUNNING.value)
            .order_by(Mission.code, Campaign.name)
        ).all()
    return [(m, n) for m, n in rows]
