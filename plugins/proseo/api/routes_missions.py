"""/missions: what is onboarded, its product classes; validating and loading a mission file;
who holds which role on it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, Field

from proseo.api.auth import Caller, CallerDep, CatalogDep
from proseo.api.schemas import MissionOut, ProductClassOut, RoleGrant, missions_out, product_classes_out
from proseo.catalog import access
from proseo.catalog.access import Role
from proseo.catalog.mission_sync import get_mission, sync_mission
from proseo.errors import ConfigError
from proseo.missions import describe, load_mission
from proseo.text import Text

User = Annotated[str, Path(min_length=1, max_length=256, description="A user name as Airflow knows it.")]


def mission_admin(mission: str, caller: CallerDep) -> Caller:
    """The caller, if an admin of the mission: checked before the body is read."""
    caller.require(mission, Role.ADMIN)
    return caller


AdminDep = Annotated[Caller, Depends(mission_admin)]

router = APIRouter(tags=["missions"])


class MissionFile(BaseModel):
    file_name: str = Field(
        "mission.yaml",
        min_length=1,
        max_length=200,
        pattern=r"^[^/\\\x00]+$",
        description="A file name (no directory), shown in error messages (file:line).",
    )
    text: Text = Field(description="The mission file's YAML.")


class Validation(BaseModel):
    valid: bool
    mission: dict[str, Any] | None = None
    issues: list[str] = []


class LoadResult(BaseModel):
    mission: str
    revision: int
    status: str
    changes: dict[str, int]


class RoleOut(BaseModel):
    user: str
    mission: str
    role: str
    granted_by: str | None


class Me(BaseModel):
    user: str
    roles: dict[str, str]


@router.get("/me", response_model=Me, summary="The caller and their roles")
def me(caller: CallerDep) -> Me:
    return Me(user=caller.name, roles={m: r.label for m, r in caller.grants.by_mission.items()})


@router.get("/missions", response_model=list[MissionOut], summary="Missions the caller may see")
def list_missions(caller: CallerDep, catalog: CatalogDep) -> list[MissionOut]:
    with catalog.session() as session:
        everything = missions_out(session)
    return [
        m.model_copy(update={"role": caller.grants.role(m.code).label})  # type: ignore[union-attr]
        for m in everything
        if caller.grants.allows(m.code, Role.VIEWER)
    ]


@router.get("/missions/{mission}", response_model=MissionOut)
def show_mission(mission: str, caller: CallerDep, catalog: CatalogDep) -> MissionOut:
    caller.require(mission, Role.VIEWER)
    with catalog.session() as session:
        get_mission(session, mission)  # NotFoundError names the mission
        found = missions_out(session, mission)
    role = caller.grants.role(mission)
    return found[0].model_copy(update={"role": role.label if role else None})


@router.get("/missions/{mission}/product-classes", response_model=list[ProductClassOut])
def list_product_classes(mission: str, caller: CallerDep, catalog: CatalogDep) -> list[ProductClassOut]:
    caller.require(mission, Role.VIEWER)
    with catalog.session() as session:
        return product_classes_out(session, get_mission(session, mission).id)


@router.post("/missions/validate", response_model=Validation, summary="Check a mission file; writes nothing")
def validate_mission(body: MissionFile, caller: CallerDep) -> Validation:
    try:
        loaded = load_mission(body.file_name, text=body.text, orbit_files=False)
    except ConfigError as exc:
        return Validation(valid=False, issues=[str(i) for i in exc.issues])
    return Validation(valid=True, mission=describe(loaded))


@router.post(
    "/missions",
    response_model=LoadResult,
    status_code=status.HTTP_200_OK,
    summary="Onboard or update a mission (mission admin); a changed file becomes a new revision",
)
def load_mission_file(body: MissionFile, caller: CallerDep, catalog: CatalogDep) -> LoadResult:
    """The file says which mission it is: someone who is admin of no mission is refused before it is read."""
    if not any(role >= Role.ADMIN for role in caller.grants.by_mission.values()):
        caller.require("(any mission)", Role.ADMIN)
    loaded = load_mission(body.file_name, text=body.text, orbit_files=False)  # ConfigError -> 422
    caller.require(loaded.config.mission.code, Role.ADMIN)
    with catalog.session() as session:
        result = sync_mission(session, loaded)
    return LoadResult(
        mission=result.mission, revision=result.revision, status=result.status, changes=result.changes
    )


@router.get("/missions/{mission}/roles", response_model=list[RoleOut])
def list_roles(mission: str, caller: AdminDep, catalog: CatalogDep) -> list[RoleOut]:
    with catalog.session() as session:
        rows = access.list_roles(session, mission)
        return [
            RoleOut(user=r.username, mission=r.mission, role=r.role, granted_by=r.granted_by) for r in rows
        ]


@router.put(
    "/missions/{mission}/roles/{user}", response_model=RoleOut, summary="Grant a role (mission admin)"
)
def grant_role(mission: str, user: User, body: RoleGrant, caller: AdminDep, catalog: CatalogDep) -> RoleOut:
    with catalog.session() as session:
        row = access.grant(session, user, mission, body.role, by=caller.name)
        return RoleOut(user=row.username, mission=row.mission, role=row.role, granted_by=row.granted_by)


@router.delete("/missions/{mission}/roles/{user}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_role(mission: str, user: User, caller: AdminDep, catalog: CatalogDep) -> None:
    with catalog.session() as session:
        access.revoke(session, user, mission)
