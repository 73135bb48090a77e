"""/campaigns: reprocessing campaigns over REST (create, dry run, steer, progress, gaps).

The caller's role on the mission is checked before the body is validated (an operator
creates and steers, a viewer reads and sizes). The decisions are the core's
(:mod:`proseo.planning.campaign`); a pass is also what the proseo_campaigns DAG runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import func, select

from proseo.api.auth import Caller, CallerDep, CatalogDep
from proseo.api.limits import Offset
from proseo.api.schemas import Page
from proseo.api.schemas_campaigns import (
    MAX_GAPS,
    CampaignDetail,
    CampaignSummary,
    DryRunOut,
    GapReportOut,
    PassOut,
    campaign_detail,
    campaign_summary,
    dry_run_out,
    gap_report_out,
    pass_out,
)
from proseo.catalog.access import Role
from proseo.catalog.db import Catalog
from proseo.catalog.model_campaign import Campaign
from proseo.catalog.model_mission import Mission
from proseo.errors import CampaignError
from proseo.planning import campaign as camp
from proseo.planning.campaign_dryrun import dry_run
from proseo.planning.campaign_gaps import gap_report
from proseo.planning.campaign_progress import progress
from proseo.planning.campaign_spec import CampaignSpec

router = APIRouter(tags=["campaigns"])

OPERATIONS = {
    "start": camp.start_campaign,
    "pause": camp.pause_campaign,
    "resume": camp.resume_campaign,
    "cancel": camp.cancel_campaign,
    "retry-gaps": camp.retry_gaps,
    "pass": camp.campaign_pass,
}


def operator(mission: str, caller: CallerDep) -> Caller:
    """The caller, if an operator of the mission: checked before the body is read."""
    caller.require(mission, Role.OPERATOR)
    return caller


def viewer(mission: str, caller: CallerDep) -> Caller:
    caller.require(mission, Role.VIEWER)
    return caller


OperatorDep = Annotated[Caller, Depends(operator)]
ViewerDep = Annotated[Caller, Depends(viewer)]


def _detail(catalog: Catalog, mission: str, name: str) -> CampaignDetail:
    with catalog.session() as session:
        c = camp.get_campaign(session, mission, name)
        return campaign_detail(c, mission, progress(session, mission, name))


@router.get("/campaigns", response_model=Page[CampaignSummary], summary="Campaigns, paged")
def list_campaigns(
    caller: CallerDep,
    catalog: CatalogDep,
    mission: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page[CampaignSummary]:
    if mission:
        caller.require(mission, Role.VIEWER)
    query = select(Campaign, Mission.code).join(Mission, Mission.id == Campaign.mission_id)
    if mission:
        query = query.where(Mission.code == mission)
    elif not caller.grants.everywhere:
        query = query.where(Mission.code.in_(caller.grants.visible(caller.grants.by_mission)))
    with catalog.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(Campaign.id).limit(limit).offset(offset)).all()
        items = [campaign_summary(c, code) for c, code in rows]
    return Page[CampaignSummary](items=items, total=total, limit=limit, offset=offset)


@router.post(
    "/missions/{mission}/campaigns", response_model=CampaignDetail, status_code=status.HTTP_201_CREATED
)
def create_campaign(
    mission: str, spec: CampaignSpec, caller: OperatorDep, catalog: CatalogDep
) -> CampaignDetail:
    """Check and store a campaign (CREATED; nothing is ordered until it starts)."""
    with catalog.session() as session:
        camp.create_campaign(session, mission, spec)
    return _detail(catalog, mission, spec.name)


@router.post("/missions/{mission}/campaigns/dryrun", response_model=DryRunOut)
def dry_run_request(mission: str, spec: CampaignSpec, caller: ViewerDep, catalog: CatalogDep) -> DryRunOut:
    """Size a campaign request without storing it or planning any order: job steps per class,
    inputs missing per class and slice, estimated run time (and what was assumed)."""
    with catalog.session() as session:
        return dry_run_out(dry_run(session, mission, spec))


@router.get("/missions/{mission}/campaigns/{name}", response_model=CampaignDetail)
def show_campaign(mission: str, name: str, caller: ViewerDep, catalog: CatalogDep) -> CampaignDetail:
    """The campaign, its request, and its progress overall and per unit (throughput, ETA)."""
    return _detail(catalog, mission, name)


@router.get("/missions/{mission}/campaigns/{name}/dryrun", response_model=DryRunOut)
def dry_run_stored(mission: str, name: str, caller: ViewerDep, catalog: CatalogDep) -> DryRunOut:
    """Size a stored campaign against the catalogue as it is now."""
    with catalog.session() as session:
        spec = camp.spec_of(camp.get_campaign(session, mission, name))
        return dry_run_out(dry_run(session, mission, spec))


@router.get("/missions/{mission}/campaigns/{name}/gaps", response_model=GapReportOut)
def campaign_gaps(
    mission: str,
    name: str,
    caller: ViewerDep,
    catalog: CatalogDep,
    limit: Annotated[int, Query(ge=1, le=MAX_GAPS)] = 1000,
    offset: Offset = 0,
) -> GapReportOut:
    """Expected versus produced per class and unit, and a page of gaps with their reasons."""
    with catalog.session() as session:
        return gap_report_out(gap_report(session, mission, name), limit=limit, offset=offset)


@router.post("/missions/{mission}/campaigns/{name}/{operation}", response_model=PassOut)
def operate(mission: str, name: str, operation: str, caller: OperatorDep, catalog: CatalogDep) -> PassOut:
    """start, pause, resume, cancel (with its active orders), retry-gaps (order the failed units
    again) or pass (one pass now, as the proseo_campaigns DAG runs it)."""
    run = OPERATIONS.get(operation)
    if run is None:
        known = ", ".join(OPERATIONS)
        raise CampaignError(
            f"unknown operation {operation!r}; operations are {known}", mission=mission, campaign=name
        )
    result = run(catalog, mission, name)
    with catalog.session() as session:
        summary = campaign_summary(camp.get_campaign(session, mission, name), mission)
    if isinstance(result, list):
        return pass_out(summary, None, result)
    return pass_out(summary, result)
