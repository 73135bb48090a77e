"""Pulling downlink sessions from a CADIP (the CADU interface delivery point) as L0 products.

A pull first looks again at the sessions it left pending, then pages
``Sessions?$filter=Satellite eq '<sat>' and PublicationDate ge <cursor>`` ordered by
``PublicationDate asc`` with ``$expand=QualityInfo`` (following ``@odata.nextLink``). For each
session it lists ``Files?$filter=SessionId eq '<SessionId>'`` and judges the session
(:mod:`proseo.interfaces.cadip_session`): whole only when every channel's blocks and
QualityInfo agree. A session that is not whole is recorded as pending with its reasons
and nothing of it is downloaded. A whole one is downloaded and ingested as one L0 product
per channel (:mod:`proseo.interfaces.cadip_download`); only then is it marked taken.

Restartable and idempotent: the cursor (:class:`InterfaceCursor`) only says how far new
sessions have been *seen*; what is taken is per session (:class:`CadipSession`), and
ingestion is idempotent by identity, so a pull stopped anywhere ingests each channel once.
A failed download leaves the session pending with the failure as reason; the other
sessions are still examined, and the pull then raises the first failure. Nothing stays
stuck: a pending session the CADIP answers 404 for is gone (final, with the reason), one
that still fails ``give_up_after`` after it was first seen is given up (gone), and an
entity that cannot be parsed is recorded (pending under its Id, else gone) and passed
by the cursor, never dropped silently nor failing every pull. No Airflow here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import get_mission, loaded_from_catalog
from proseo.catalog.model_cadip import CadipSession, CadipState
from proseo.catalog.model_interface import cursor_published
from proseo.interfaces.cadip_download import fetch_and_ingest
from proseo.interfaces.cadip_entity import SessionEntity, entity_key, loose_published, loose_session_id
from proseo.interfaces.cadip_record import (
    CadipError,
    CadipReport,
    CadipSource,
    advance,
    input_class,
    mark_gone,
    mark_taken,
    record,
    record_unusable,
    set_reason,
)
from proseo.interfaces.cadip_session import BlockFile, Quality, Verdict, judge
from proseo.interfaces.odata_http import ODataHttp, PullError
from proseo.interfaces.prip_entity import odata_time
from proseo.missions.loader import LoadedMission

__all__ = ["CadipError", "CadipReport", "CadipSource", "input_class", "pull_sessions"]


def pull_sessions(
    catalog: Catalog, mission: str, source: CadipSource, *, progress: Callable[[str], None] | None = None
) -> CadipReport:
    """Examine pending and newly published sessions; take the whole ones. Returns what happened."""
    report = CadipReport(source.name)
    with catalog.session() as s:
        mission_id = get_mission(s, mission).id
        loaded = loaded_from_catalog(s, mission)
        since = cursor_published(s, mission_id, source.name)
        pending = list(
            s.execute(
                select(CadipSession.entity_id, CadipSession.session_id)
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
            for entity_id, session_id in pending:
                puller.again(entity_id, session_id)
            try:
                for page in puller.session_pages(since):
                    for entity in page:
                        puller.examine(entity, new=True)
            except CadipError as exc:
                exc.report = report  # what this pull took before the listing failed
                raise
            puller.confirm_gone()
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
        self.missing: list[tuple[str, str, str]] = []  # 404 on re-examination: entity, session, reason
        self.give_up_before = utcnow() - source.give_up_after

    def get(self, url: str, params: dict[str, str] | None, session: str | None) -> dict[str, Any]:
        try:
            return self.http.get(url, params)
        except PullError as exc:
            raise CadipError(
                exc.detail, source=self.source.name, session=session, url=url, status=exc.status
            ) from exc

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

    def again(self, entity_id: str, session_id: str) -> None:
        """Look at a pending session again (its entity afresh: QualityInfo may have come)."""
        url = f"{self.source.root}/Sessions({entity_id})"
        try:
            entity = self.get(url, {"$expand": "QualityInfo"}, session_id)
        except CadipError as exc:
            if exc.status == 404:  # evicted or withdrawn, once the listing shows the root is right
                reason = f"no longer served by the CADIP: {exc}"
                set_reason(self.catalog, self.mission_id, self.source.name, entity_id, reason)
                self.report.pending[session_id] = reason
                self.missing.append((entity_id, session_id, reason))
            else:  # refused, unreachable: stays pending with the reason, until given up
                self.failed(entity_id, session_id, exc)
            return
        self.examine(entity)

    def confirm_gone(self) -> None:
        """The Sessions listing answered: a session its entity URL says 404 for is gone (final).

        Not before: a wrong root answers 404 for every session, and would end them all."""
        for entity_id, session_id, reason in self.missing:
            mark_gone(self.catalog, self.mission_id, self.source.name, entity_id, reason)
            self.report.pending.pop(session_id, None)
            self.report.gone[session_id] = reason

    def failed(self, entity_id: str, session_id: str, exc: CadipError) -> None:
        """A failure: the session stays pending (the pull fails), or it failed too long and is gone."""
        state = set_reason(
            self.catalog,
            self.mission_id,
            self.source.name,
            entity_id,
            str(exc),
            give_up_before=self.give_up_before,
        )
        if state == CadipState.GONE.value:
            self.report.gone[session_id] = f"given up (pending since over {self.source.give_up_after}): {exc}"
            return
        self.report.pending[session_id] = str(exc)
        self.report.failures.append(exc)

    def examine(self, entity: dict[str, Any], *, new: bool = False) -> None:
        """Record the session, judge it, and take it if it is whole."""
        try:
            session = SessionEntity.of(entity)
        except ValueError as exc:
            self.unusable(entity, f"unusable session entity: {exc}", new=new)
            return
        if session.entity_id in self.seen:
            return  # pending, examined already by this pull (ge repeats the cursor's instant)
        self.seen.add(session.entity_id)
        state = record(self.catalog, self.mission_id, self.source.name, session, examine=True)
        if state == CadipState.TAKEN.value:
            self.report.known.append(session.session_id)  # taken before
        elif state == CadipState.PENDING.value:
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
                self.failed(session.entity_id, session.session_id, exc)
        if new:  # recorded: a later pull finds it among the pending ones, not by the cursor
            advance(self.catalog, self.mission_id, self.source.name, session.published, session.entity_id)
        if self.progress:
            self.progress(session.session_id)

    def unusable(self, entity: dict[str, Any], reason: str, *, new: bool) -> None:
        """An entity that cannot be pulled is recorded (pending under its Id, else gone), not lost.

        Then the cursor moves past it like past any other session, and no pull fails on it."""
        key, again = entity_key(entity)
        if key in self.seen:
            return
        self.seen.add(key)
        name, published = loose_session_id(entity, key), loose_published(entity)
        state, changed = record_unusable(
            self.catalog,
            self.mission_id,
            self.source.name,
            key,
            name,
            published or utcnow(),
            reason,
            again=again,
            give_up_before=self.give_up_before,
        )
        if state == CadipState.PENDING.value:
            self.report.pending[name] = reason
        elif state == CadipState.GONE.value and changed:
            self.report.gone[name] = reason
        if new and published is not None:
            advance(self.catalog, self.mission_id, self.source.name, published, key)
        if self.progress:
            self.progress(name)

    def verdict(self, session: SessionEntity, entity: dict[str, Any]) -> Verdict:
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

    def pending(self, session: SessionEntity, reason: str) -> None:
        set_reason(self.catalog, self.mission_id, self.source.name, session.entity_id, reason)
        self.report.pending[session.session_id] = reason

    def take(self, session: SessionEntity, verdict: Verdict) -> None:
        """Download and ingest every channel together; only then is the session taken."""
        products, names = fetch_and_ingest(
            self.http,
            self.ingestor,
            self.source.name,
            self.source.root,
            self.scratch,
            self.product_type,
            session,
            verdict,
        )
        mark_taken(
            self.catalog, self.mission_id, self.source.name, session.entity_id, verdict.blocks, products
        )
        self.report.taken.append(session.session_id)
        self.report.products += names
