"""Per-mission roles: granting them, and deciding whether a user may do something.

Roles are ordered: a ``viewer`` reads a mission's orders and products, an
``operator`` also creates and steers orders and ingests, a ``admin`` (mission
admin) also loads the mission's configuration and grants roles on it. A role for
``*`` holds for every mission. The checks live here, not in the web layer, so the
REST API and any other front end decide the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from proseo.catalog.model_access import ALL_MISSIONS, MissionRole
from proseo.errors import CatalogError, NotFoundError
from proseo.text import check_text

#: Column sizes of mission_role: checked here so PostgreSQL never sees a value it refuses.
USER_LENGTH = 256
MISSION_LENGTH = 16


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            names = ", ".join(r.name.lower() for r in cls)
            raise CatalogError(f"unknown role {name!r}; roles are {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class AccessDenied(CatalogError):
    """The user is known but lacks the role the action needs on that mission."""

    def __init__(self, user: str, mission: str, needed: Role, held: Role | None) -> None:
        have = f"holds {held.label}" if held else "holds no role"
        super().__init__(f"{user} {have} on mission {mission}; this needs {needed.label}")
        self.user = user
        self.mission = mission
        self.needed = needed
        self.held = held


@dataclass(frozen=True)
class Grants:
    """The roles one user holds, read once per request."""

    user: str
    by_mission: dict[str, Role] = field(default_factory=dict)

    def role(self, mission: str) -> Role | None:
        own = self.by_mission.get(mission)
        every = self.by_mission.get(ALL_MISSIONS)
        held = [r for r in (own, every) if r is not None]
        return max(held) if held else None

    def allows(self, mission: str, needed: Role) -> bool:
        held = self.role(mission)
        return held is not None and held >= needed

    def require(self, mission: str, needed: Role) -> None:
        if not self.allows(mission, needed):
            raise AccessDenied(self.user, mission, needed, self.role(mission))

    def visible(self, missions: Iterable[str]) -> list[str]:
        """Of ``missions``, those this user may at least view."""
        return [m for m in missions if self.allows(m, Role.VIEWER)]

    @property
    def everywhere(self) -> bool:
        return ALL_MISSIONS in self.by_mission


def grants_of(session: Session, user: str) -> Grants:
    rows = session.execute(select(MissionRole.mission, MissionRole.role).where(MissionRole.username == user))
    return Grants(user, {mission: Role.parse(role) for mission, role in rows})


def grant(
    session: Session, user: str, mission: str, role: Role | str, *, by: str | None = None
) -> MissionRole:
    """Give ``user`` exactly ``role`` on ``mission`` (replacing what they held there)."""
    if not user.strip():
        raise CatalogError("a role needs a user name")
    if not mission.strip():
        raise CatalogError("a role needs a mission code (or * for every mission)")
    _storable(user, mission)
    if by is not None:
        _check("granted by", by, USER_LENGTH)
    role = role if isinstance(role, Role) else Role.parse(role)
    row = session.scalar(
        select(MissionRole).where(MissionRole.username == user, MissionRole.mission == mission)
    )
    if row is None:
        row = MissionRole(username=user, mission=mission, role=role.label, granted_by=by)
        session.add(row)
    else:
        row.role, row.granted_by = role.label, by
    session.flush()
    return row


def revoke(session: Session, user: str, mission: str) -> None:
    _storable(user, mission)
    result = session.execute(
        delete(MissionRole).where(MissionRole.username == user, MissionRole.mission == mission)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFoundError(f"{user} holds no role on mission {mission}")


def _check(field: str, value: str, max_length: int) -> None:
    try:
        check_text(value, field=field, max_length=max_length)
    except ValueError as exc:
        raise CatalogError(str(exc)) from None


def _storable(user: str, mission: str) -> None:
    """A user name and mission code the role table can hold (no NUL, within the columns)."""
    _check("user", user, USER_LENGTH)
    _check("mission", mission, MISSION_LENGTH)


def list_roles(session: Session, mission: str | None = None) -> list[MissionRole]:
    query = select(MissionRole).order_by(MissionRole.mission, MissionRole.username)
    if mission:
        query = query.where(MissionRole.mission.in_([mission, ALL_MISSIONS]))
    return list(session.scalars(query))
