"""A CADIP source, a pull's report and error, and the catalogue rows that make a pull restartable.

Each write is its own short transaction: a session is recorded (pending) before anything
of it is downloaded, the cursor moves past a session once it is recorded, and a session
is marked taken (with its files) only after its products are committed. Whatever a pull
was doing when it stopped, the next one finds the session pending and looks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.model_cadip import CadipFile, CadipSession, CadipState
from proseo.catalog.model_interface import InterfaceCursor
from proseo.interfaces.odata_http import PullError
from proseo.missions.loader import LoadedMission

if TYPE_CHECKING:
    from proseo.interfaces.cadip_session import BlockFile


@dataclass(frozen=True)
class CadipSource:
    """A CADIP to pull from: its OData root, the satellite wanted, authentication, the L0 class.

    ``product_type`` is the class the sessions' channels are ingested as; None takes the
    mission's only input-only L0 class (an error when it has several).
    """

    name: str
    root: str  # e.g. https://host/cadip/odata/v1
    satellite: str | None = None  # the Sessions' Satellite, e.g. S1A; None: every satellite
    username: str | None = None
    password: str | None = None
    token: str | None = None
    product_type: str | None = None
    timeout: float = 60.0
    #: A pending session whose examination still fails this long after it was first seen is
    #: given up (gone, with the last failure): a pull does not fail on it forever.
    give_up_after: timedelta = timedelta(days=7)


@dataclass
class CadipReport:
    source: str
    taken: list[str] = field(default_factory=list)  # SessionIds taken by this pull
    products: list[str] = field(default_factory=list)  # file names ingested (one per session and channel)
    pending: dict[str, str] = field(default_factory=dict)  # SessionId -> why it is not taken yet
    known: list[str] = field(default_factory=list)  # SessionIds seen again, taken before
    gone: dict[str, str] = field(default_factory=dict)  # SessionId -> why it is given up (by this pull)
    failures: list[CadipError] = field(default_factory=list)  # downloads or ingestions that failed


class CadipError(PullError):
    """A CADIP pull failed; names the source, and the session and file when there is one."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        session: str | None = None,
        file: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        where = "".join([f"session {session}: " if session else "", f"file {file}: " if file else ""])
        super().__init__(where + message, source=source, url=url, status=status)
        self.session, self.file = session, file
        self.report: CadipReport | None = None


def input_class(mission: LoadedMission, source: CadipSource) -> str:
    """The L0 class the sessions become: the source's, or the mission's only input-only L0 class."""
    cfg = mission.config
    if source.product_type is not None:
        if source.product_type not in cfg.product_classes:
            raise CadipError(
                f"mission {mission.code} has no product class {source.product_type!r}", source=source.name
            )
        return source.product_type
    raw = [t for t, c in cfg.product_classes.items() if str(c.level) == "L0" and cfg.producer_of(t) is None]
    if len(raw) != 1:
        raise CadipError(
            f"give the product class to ingest sessions as; mission {mission.code} has "
            f"{len(raw)} input-only L0 classes ({', '.join(raw) or 'none'})",
            source=source.name,
        )
    return raw[0]


class SessionFacts(Protocol):
    entity_id: str
    session_id: str
    satellite: object
    channels: int
    published: datetime
    start: datetime | None
    stop: datetime | None


def _row(s: Session, mission_id: int, source: str, entity_id: str) -> CadipSession | None:
    return s.scalar(
        select(CadipSession)
        .where(
            CadipSession.mission_id == mission_id,
            CadipSession.source == source,
            CadipSession.entity_id == entity_id,
        )
        .with_for_update()
    )


def record(catalog: Catalog, mission_id: int, source: str, session: SessionFacts, *, examine: bool) -> str:
    """Create or refresh the session's row; its state (taken or gone: nothing to do)."""
    with catalog.session() as s:
        row = _row(s, mission_id, source, session.entity_id)
        if row is None:
            row = CadipSession(
                mission_id=mission_id,
                source=source,
                entity_id=session.entity_id,
                session_id=session.session_id,
                state=CadipState.PENDING.value,
                examined=0,
                products=0,
            )
            s.add(row)
        if row.state != CadipState.PENDING.value:
            return row.state
        satellite = session.satellite
        row.satellite = str(satellite)[:16] if satellite is not None else None
        row.channels, row.published = session.channels, session.published
        row.downlink_start, row.downlink_stop = session.start, session.stop
        row.session_id = session.session_id
        row.examined += 1 if examine else 0
        return row.state


def set_reason(
    catalog: Catalog,
    mission_id: int,
    source: str,
    entity_id: str,
    reason: str,
    *,
    give_up_before: datetime | None = None,
) -> str | None:
    """A pending session's reason; gone instead if first seen before ``give_up_before``.

    Returns the state it is left in (None: no such row)."""
    with catalog.session() as s:
        row = _row(s, mission_id, source, entity_id)
        if row is None:
            return None
        if row.state == CadipState.PENDING.value:
            row.reason = reason[:4000]
            if give_up_before is not None and row.first_seen < give_up_before:
                row.state = CadipState.GONE.value
        return row.state


def mark_gone(catalog: Catalog, mission_id: int, source: str, entity_id: str, reason: str) -> None:
    """A pending session is final: never looked at again, the reason kept."""
    with catalog.session() as s:
        row = _row(s, mission_id, source, entity_id)
        if row is not None and row.state == CadipState.PENDING.value:
            row.state, row.reason = CadipState.GONE.value, reason[:4000]


def record_unusable(
    catalog: Catalog,
    mission_id: int,
    source: str,
    key: str,
    session_id: str,
    published: datetime,
    reason: str,
    *,
    again: bool,
    give_up_before: datetime,
) -> tuple[str, bool]:
    """Record a session entity that cannot be used: pending if it can be asked for ``again``
    (its Id), else gone. Its state and whether that state is new (a first record, or given up)."""
    with catalog.session() as s:
        row = _row(s, mission_id, source, key)
        if row is None:
            row = CadipSession(
                mission_id=mission_id,
                source=source,
                entity_id=key,
                session_id=session_id,
                channels=0,
                published=published,
                state=CadipState.PENDING.value if again else CadipState.GONE.value,
                reason=reason[:4000],
                examined=1,
                products=0,
            )
            s.add(row)
            return row.state, True
        if row.state != CadipState.PENDING.value:
            return row.state, False
        row.reason, row.examined = reason[:4000], row.examined + 1
        if row.first_seen < give_up_before:
            row.state = CadipState.GONE.value
            return row.state, True
        return row.state, False


def mark_taken(
    catalog: Catalog,
    mission_id: int,
    source: str,
    entity_id: str,
    blocks: dict[int, list[BlockFile]],
    products: dict[int, int | None],
) -> None:
    """The session's products are committed: the session is taken, with its files."""
    with catalog.session() as s:
        row = _row(s, mission_id, source, entity_id)
        if row is None or row.state == CadipState.TAKEN.value:
            return  # a concurrent pull took it (ingestion made the products once)
        row.state, row.reason, row.taken_at = CadipState.TAKEN.value, None, utcnow()
        row.products = sum(1 for p in products.values() if p is not None)
        s.flush()
        s.add_all(
            CadipFile(
                session_id=row.id,
                file_id=f.id,
                name=f.name[:255],
                channel=f.channel,
                block=f.block,
                final=f.final,
                size=f.size,
                published=f.published,
                product_id=products.get(channel),
            )
            for channel, files in blocks.items()
            for f in files
        )


def advance(catalog: Catalog, mission_id: int, source: str, published: datetime, entity_id: str) -> None:
    """Move the source's cursor to a recorded session (never backwards)."""
    with catalog.session() as s:
        row = s.scalar(
            select(InterfaceCursor)
            .where(InterfaceCursor.mission_id == mission_id, InterfaceCursor.source == source)
            .with_for_update()
        )
        if row is None:
            row = InterfaceCursor(mission_id=mission_id, source=source, taken=0)
            s.add(row)
        if row.published is None or published >= row.published:
            row.published, row.last_id = published, entity_id[:36]
