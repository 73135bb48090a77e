"""The triggerer's side of a scheduled source: the probe, and credentials resolved at run time.

:class:`SourceProbeTrigger` asks a Products source (PRIP, AUXIP) every ``poll_s`` for
the products published from the cursor on (Ids, usually one page) and the catalogue
which of them it holds, until one is new or the interval is over; it holds no secret
(its kwargs are JSON and name where the credentials are). Credentials are resolved when
they are needed: an Airflow connection (:func:`resolve_secret` in the worker, the async
lookup in the triggerer) or the environment variables the mission file names; a token
is fetched by :func:`proseo.interfaces.odata_http.apassword_token`, the same parsing
and errors as the pull's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_product import Product
from proseo.interfaces.clients import Secret, env_secret
from proseo.interfaces.odata_http import PullError, apassword_token
from proseo.missions.sources import Credentials

#: The longest the triggerer waits between two looks at a source.
MAX_POLL_S = 60.0
#: Entities per page of a probe (the products at the cursor's time, taken already, are listed too).
PROBE_TOP = 100


def _from_connection(login: str | None, password: str | None) -> Secret:
    """A connection with a login: a password grant; with only a password: a bearer token."""
    if login:
        return Secret(username=login, password=password)
    return Secret(token=password)


def resolve_secret(mission: str, name: str, creds: Credentials) -> Secret:
    """The source's credentials now (in a worker): its Airflow connection, else its env variables."""
    if creds.connection is not None:
        conn = BaseHook.get_connection(creds.connection)
        return _from_connection(conn.login, conn.password)
    return env_secret(mission, name, creds)


class SourceProbeTrigger(BaseTrigger):
    """Fires when the source has a product published after the cursor, or when ``until`` comes."""

    def __init__(
        self,
        mission: str,
        source: str,
        root: str,
        filter: str,
        since: str | None,
        until: str,
        poll_s: float,
        credentials: dict[str, Any],
        timeout_s: float = 60.0,
        catalog_url: str | None = None,
    ) -> None:
        super().__init__()
        self.mission, self.source, self.root, self.filter = mission, source, root, filter
        self.since, self.until, self.poll_s = since, until, float(poll_s)
        self.catalog_url = catalog_url
        self._catalog: Catalog | None = None
        self.credentials, self.timeout_s = dict(credentials), float(timeout_s)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.SourceProbeTrigger",
            {
                "mission": self.mission,
                "source": self.source,
                "root": self.root,
                "filter": self.filter,
                "since": self.since,
                "until": self.until,
                "poll_s": self.poll_s,
                "credentials": self.credentials,
                "timeout_s": self.timeout_s,
                "catalog_url": self.catalog_url,
            },
        )

    def query(self) -> dict[str, str]:
        """The probe's query: products from the cursor on, oldest first, a page of them."""
        where = f"({self.filter})"
        if self.since is not None:
            where += f" and PublicationDate ge {self.since}"
        return {"$filter": where, "$top": str(PROBE_TOP), "$orderby": "PublicationDate asc"}

    async def secret(self) -> Secret:
        creds = Credentials.model_validate(self.credentials)
        if creds.connection is not None:
            conn = await BaseHook.aget_connection(creds.connection)
            return _from_connection(conn.login, conn.password)
        return env_secret(self.mission, self.source, creds)

    async def probe(self, client: httpx.AsyncClient, secret: Secret) -> int:
        """How many products of the first page holding any are not in the catalogue yet.

        From the cursor on, as the pull asks: products share a publication time (batch by
        batch) and the cursor is that time in ms, so the products at the cursor, taken
        already, are listed again; they are told from new ones by their Ids. Usually one
        page (the last batch taken, then nothing or something new)."""
        token = secret.token
        if token is None:
            if not (secret.username and secret.password):
                raise PullError("no token and no user name and password to get one", source=self.source)
            token = await apassword_token(
                client, self.root, secret.username, secret.password, source=self.source
            )
        headers = {"Authorization": f"Bearer {token}"}
        url: str | None = f"{self.root}/Products"
        params: dict[str, str] | None = self.query()
        while url:  # pages of Ids from the cursor on, until one the catalogue lacks
            answer = await client.get(url, params=params, headers=headers)
            answer.raise_for_status()
            body = answer.json()
            listed = [str(e.get("Id")) for e in body.get("value") or []]
            known = await asyncio.to_thread(self.known, listed) if listed else set()
            if new := len(set(listed) - known):
                return new
            url, params = body.get("@odata.nextLink"), None  # the link carries every option
        return 0

    def known(self, ids: list[str]) -> set[str]:
        """Which of these Ids the catalogue holds already (blocking: run in a thread)."""
        if self._catalog is None:  # engines are cached per URL: one per triggerer, not per trigger
            self._catalog = Catalog(self.catalog_url)
        with self._catalog.session() as s:
            return set(s.scalars(select(Product.uuid).where(Product.uuid.in_(ids))))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        until = datetime.fromisoformat(self.until)
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=True) as client:
            while True:
                try:
                    count = await self.probe(client, await self.secret())
                except Exception as exc:  # unreachable, refused: the pull says why, or retries
                    self.log.warning("source %s of %s: probe failed: %s", self.source, self.mission, exc)
                    yield TriggerEvent({"status": "unanswered", "message": f"{type(exc).__name__}: {exc}"})
                    return
                if count > 0:
                    yield TriggerEvent({"status": "new", "count": count})
                    return
                left = (until - datetime.now(UTC)).total_seconds()
                if left <= 0:
                    yield TriggerEvent({"status": "idle"})
                    return
                await asyncio.sleep(min(self.poll_s, left))
