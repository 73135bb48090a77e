"""Pulling downlink sessions from a CADIP (the CADU interface delivery point) as L0 products.

A pull first looks again at the sessions it left pending, then pages
``Sessions?$filter=Satellite eq '<sat>' and PublicationDate ge <cursor>`` ordered by
``PublicationDate asc`` with ``$expand=QualityInfo`` (following ``@odata.nextLink``). For each
session it lists ``Files?$filter=SessionId eq '<SessionId>'`` and judges the session
(:mod:`proseo.interfaces.cadip_session`): whole only when every channel's blocks and
QualityInfo agree. A session that is not whole is recorded as pending with its reasons
and nothing of it is downloaded. A whole one is downloaded channel by channel, each
channel's blocks streamed in order into one file (``Files(<Id>)/$value``, every block's
size checked), and the channels are ingested together as one L0 product per session and
channel: validity DownlinkStart..DownlinkStop, generation the session's PublicationDate,
parameters ``session`` and ``channel``. Only then is the session marked taken.

Restartable and idempotent: the cursor (:class:`InterfaceCursor`) only says how far new
sessions have been *seen*; what is taken is per session (:class:`CadipSession`), and
ingestion is idempotent by identity, so a pull stopped anywhere ingests each channel once.
A failed download leaves the session pending with the failure as reason; the other
sessions are still examined, and the pull then raises the first failure. No Airflow here.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.describe import SIDECAR_SUFFIX
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import get_mission, loaded_from_catalog
from proseo.catalog.model_cadip import CadipSession, CadipState
from proseo.catalog.model_interface import InterfaceCursor
from proseo.interfaces.cadip_record import CadipReport, CadipSource, advance, mark_taken, record, set_reason
from proseo.interfaces.cadip_session import BlockFile, Quality, Verdict, judge
from proseo.interfaces.odata_http import ODataHttp, PullError
from proseo.interfaces.prip_entity import odata_time
from proseo.missions.loader import LoadedMission
from proseo.missions.types import parse_utc

__all__ = ["CadipError", "CadipReport", "CadipSource", "pull_sessions"]

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,120}")


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
    ) -> None:
        where = "".join([f"session {session}: " if session else "", f"file {file}: " if file else ""])
        super().__init__(where + message, source=source, url=url)
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


def pull_sessions(
    catalog: Catalog, mission: str, source: CadipSource, *, progress: Callable[[str], None] | None = None
) -> CadipReport:
    """Examine pending and newly published sessions; take the whole ones. Returns what happened."""
    report = CadipReport(source.name)
    with catalog.session() as s:
        mission_id = get_mission(s, mission).id
        loaded = loaded_from_catalog(s, mission)
        cursor = s.scalar(
            select(InterfaceCursor).where(
                InterfaceCursor.mission_id == mission_id, InterfaceCursor.source == source.name
            )
        )
        since = cursor.published if cursor is not None else None
        pending = list(
            s.scalars(
                select(CadipSession.entity_id)
                .where(
                    CadipSession.mission_id == mission_id,
                    CadipSession.source == source.name,
                    CadipSession.state == CadipState.PENDING.value,
                )
                .order_by(CadipSession.published, CadipSession.id)
            )
        )
    puller = _Puller(catalog, loaded, mission_id, source, input_class(loaded, source), report, progress)
    try:
        with tempfile.TemporaryDirectory(prefix="proseo-cadip-") as scratch:
            puller.scratch = Path(scratch)
            for entity_id in pending:
                puller.again(entity_id)
            for page in puller.session_pages(since):
                for entity in page:
                    puller.examine(entity, new=True)
    finally:
        puller.http.close()
    if report.failures:
        first = report.failures[0]
        first.report = report
        raise first
    return report


class _Puller:
    """One pull's state: the HTTP client, the ingestor, where to download, what happened."""

    def __init__(
        self,
        catalog: Catalog,
        mission: LoadedMission,
        mission_id: int,
        source: CadipSource,
        product_type: str,
        report: CadipReport,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.catalog, self.mission, self.mission_id = catalog, mission, mission_id
        self.source, self.product_type, self.report, self.progress = source, product_type, report, progress
        self.http = ODataHttp(
            source.name,
            source.root,
            username=source.username,
            password=source.password,
            token=source.token,
            timeout=source.timeout,
        )
        self.ingestor = Ingestor(catalog, mission)
        self.scratch = Path(".")
        self.seen: set[str] = set()

    def get(self, url: str, params: dict[str, str] | None, session: str | None) -> dict[str, Any]:
        try:
            return self.http.get(url, params)
        except PullError as exc:
            raise CadipError(exc.detail, source=self.source.name, session=session, url=url) from exc

    def pages(self, url: str, params: dict[str, str], session: str | None) -> Iterator[list[dict[str, Any]]]:
        next_url: str | None = url
        query: dict[str, str] | None = params  # no $top: the server pages, the links carry on
        while next_url:
            body = self.get(next_url, query, session)
            yield [e for e in body.get("value", []) if isinstance(e, dict)]
            next_url, query = body.get("@odata.nextLink"), None  # the link carries every option

    def session_pages(self, since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        satellite = (self.source.satellite or "").replace("'", "''")  # an OData string literal
        clauses = [f"Satellite eq '{satellite}'"] if satellite else []
        if since is not None:
            clauses.append(f"PublicationDate ge {odata_time(since)}")  # ms, rounded down: ge still holds
        params = {"$orderby": "PublicationDate asc", "$expand": "QualityInfo"}
        if clauses:
            params["$filter"] = " and ".join(clauses)
        return self.pages(f"{self.source.root}/Sessions", params, None)

    def again(self, entity_id: str) -> None:
        """Look at a pending session again (its entity afresh: QualityInfo may have come)."""
        url = f"{self.source.root}/Sessions({entity_id})"
        try:
            entity = self.get(url, {"$expand": "QualityInfo"}, entity_id)
        except CadipError as exc:  # gone or refused: stays pending with the reason
            set_reason(self.catalog, self.mission_id, self.source.name, entity_id, str(exc))
            self.report.failures.append(exc)
            return
        self.examine(entity)

    def examine(self, entity: dict[str, Any], *, new: bool = False) -> None:
        """Record the session, judge it, and take it if it is whole."""
        name = str(entity.get("SessionId") or entity.get("Id") or "?")
        try:
            session = _Session.of(entity)
        except ValueError as exc:  # reported; the sessions after it are still examined
            self.report.failures.append(
                CadipError(f"unusable session entity: {exc}", source=self.source.name, session=name)
            )
            return
        if session.entity_id in self.seen:
            return  # pending, examined already by this pull (ge repeats the cursor's instant)
        self.seen.add(session.entity_id)
        if record(self.catalog, self.mission_id, self.source.name, session, examine=True):
            self.report.known.append(session.session_id)  # taken before
        else:
            try:
                if "QualityInfo" not in entity:  # a server that expands only single entities
                    url = f"{self.source.root}/Sessions({session.entity_id})"
                    entity = self.get(url, {"$expand": "QualityInfo"}, session.session_id)
                verdict = self.verdict(session, entity)
                if verdict.whole:
                    self.take(session, verdict)
                else:
                    self.pending(session, "; ".join(verdict.reasons))
            except CadipError as exc:  # left pending with the failure; the next pull tries again
                self.pending(session, str(exc))
                self.report.failures.append(exc)
        if new:  # recorded: a later pull finds it among the pending ones, not by the cursor
            advance(self.catalog, self.mission_id, self.source.name, session.published, session.entity_id)
        if self.progress:
            self.progress(session.session_id)

    def verdict(self, session: _Session, entity: dict[str, Any]) -> Verdict:
        sid = session.session_id
        url = f"{self.source.root}/Files"
        files: list[BlockFile] = []
        try:
            for page in self.pages(url, {"$filter": f"SessionId eq '{sid}'"}, sid):
                files += [BlockFile.of(e) for e in page]
            quality = [Quality.of(q) for q in entity.get("QualityInfo") or [] if isinstance(q, dict)]
        except ValueError as exc:
            raise CadipError(
                f"unusable Files or QualityInfo entity: {exc}", source=self.source.name, session=sid
            ) from exc
        return judge(session.channels, files, quality)

    def pending(self, session: _Session, reason: str) -> None:
        set_reason(self.catalog, self.mission_id, self.source.name, session.entity_id, reason)
        self.report.pending[session.session_id] = reason

    def take(self, session: _Session, verdict: Verdict) -> None:
        """Download every channel (blocks in order into one file), then ingest them together."""
        sid = session.session_id
        if session.start is None or session.stop is None:
            raise CadipError(
                "no DownlinkStart/DownlinkStop: no validity for the L0 products",
                source=self.source.name,
                session=sid,
            )
        paths: dict[int, Path] = {}
        try:
            for channel, blocks in verdict.blocks.items():
                paths[channel] = self.download_channel(session, channel, blocks)
            result = self.ingestor.run(list(paths.values()), product_type=self.product_type)
        finally:
            for path in paths.values():
                path.unlink(missing_ok=True)
                path.with_name(path.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
        if not result.ok:
            bad = "; ".join(
                o.message or o.status for o in result.outcomes if o.status not in ("new", "unchanged")
            )
            raise CadipError(f"not ingested: {bad}", source=self.source.name, session=sid)
        by_path = {o.file: o.product_id for o in result.outcomes}
        products = {c: by_path.get(str(p)) for c, p in paths.items()}
        mark_taken(
            self.catalog, self.mission_id, self.source.name, session.entity_id, verdict.blocks, products
        )
        self.report.taken.append(sid)
        self.report.products += [p.name for p in paths.values()]

    def download_channel(self, session: _Session, channel: int, blocks: list[BlockFile]) -> Path:
        sid = session.session_id
        target = self.scratch / f"{sid}_ch{channel:02d}.raw"
        with target.open("wb") as out:
            for block in blocks:
                url = f"{self.source.root}/Files({block.id})/$value"
                try:
                    _, _, size = self.http.stream_into(url, out)
                except PullError as exc:
                    raise CadipError(
                        exc.detail, source=self.source.name, session=sid, file=block.name, url=url
                    ) from exc
                if size != block.size:
                    raise CadipError(
                        f"{size} bytes received, Size says {block.size}",
                        source=self.source.name,
                        session=sid,
                        file=block.name,
                    )
        sidecar = {
            "product_type": self.product_type,
            "start": odata_time(session.start),
            "stop": odata_time(session.stop),
            "generation_time": odata_time(session.published),
            "orbit": session.orbit,
            "parameters": {"session": sid, "channel": channel},
        }
        target.with_name(target.name + SIDECAR_SUFFIX).write_text(json.dumps(sidecar), encoding="utf-8")
        return target


class _Session:
    """The fields of a Sessions entity a pull uses."""

    def __init__(self, entity: dict[str, Any]) -> None:
        self.entity_id = str(entity.get("Id") or "")
        self.session_id = str(entity.get("SessionId") or "")
        if not _SAFE.fullmatch(self.entity_id) or not _SAFE.fullmatch(self.session_id):
            raise ValueError(f"Id {self.entity_id!r} / SessionId {self.session_id!r} is not a plain name")
        channels = entity.get("NumChannels")
        if not isinstance(channels, int) or isinstance(channels, bool):
            raise ValueError(f"NumChannels is {channels!r}, expected an integer")
        self.channels = channels
        self.satellite = entity.get("Satellite")
        published = _instant(entity, "PublicationDate")
        if published is None:
            raise ValueError("no PublicationDate")
        self.published: datetime = published
        self.start = _instant(entity, "DownlinkStart")
        self.stop = _instant(entity, "DownlinkStop")
        orbit = entity.get("DownlinkOrbit")
        self.orbit = orbit if isinstance(orbit, int) and not isinstance(orbit, bool) and orbit >= 0 else None

    @classmethod
    def of(cls, entity: dict[str, Any]) -> _Session:
        return cls(entity)


def _instant(entity: dict[str, Any], name: str) -> datetime | None:
    value = entity.get(name)
    if value is None:
        return None
    try:
        return parse_utc(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is {value!r}, not an instant") from exc
