"""Pulling products from a delivery point (PRIP, AUXIP: the ICDs' Products model) into the catalogue.

One pull pages through ``Products?$filter=(<filter>) and PublicationDate ge <cursor>``
ordered by ``PublicationDate asc`` (following ``@odata.nextLink``), and for each product
not already catalogued (by Id: a product's UUID derives from its identity, which
ingestion reads from the file name, so a product pulled before keeps its Id) downloads
``Products(<Id>)/$value`` into a scratch directory, checks every byte against the entity's MD5 and SHA-256,
ingests it, and only then moves the source's cursor (:class:`InterfaceCursor`) past it.
A pull stopped anywhere resumes at the first product it had not finished; a product
fetched twice is ingested once (ingestion is idempotent too). No Airflow in here: the
scheduled task and the CLI both call :func:`pull`.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import get_mission, loaded_from_catalog
from proseo.catalog.model_interface import InterfaceCursor
from proseo.catalog.model_product import Product
from proseo.errors import ChecksumMismatch, ProseoError
from proseo.interfaces.prip_entity import odata_time
from proseo.missions.types import parse_utc

PAGE = 100
CHUNK = 1 << 20


class PullError(ProseoError):
    """The delivery point refused or answered something unusable; names the source and URL."""

    def __init__(self, message: str, *, source: str, url: str | None = None) -> None:
        super().__init__(f"source {source}: {message}")
        self.source, self.url = source, url


@dataclass(frozen=True)
class Source:
    """A delivery point to pull from: its OData root, the filter, and how to authenticate."""

    name: str
    root: str  # e.g. https://host/proseo/prip/odata/v1
    filter: str  # OData $filter of the wanted products, e.g. a productType attribute
    username: str | None = None
    password: str | None = None
    token: str | None = None
    timeout: float = 60.0


@dataclass
class PullReport:
    source: str
    taken: list[str] = field(default_factory=list)  # names ingested by this pull
    known: list[str] = field(default_factory=list)  # names already in the catalogue
    cursor: datetime | None = None


def password_token(client: httpx.Client, root: str, user: str, password: str, *, source: str) -> str:
    """A bearer token from a delivery point's OAuth2 route (password grant)."""
    url = f"{root}/oauth2/token"
    form = {"grant_type": "password", "username": user, "password": password}
    try:
        answer = client.post(url, data=form)
    except httpx.HTTPError as exc:
        raise PullError(f"token route: {type(exc).__name__}: {exc}", source=source, url=url) from exc
    if answer.status_code != 200:
        raise PullError(f"token refused ({answer.status_code}): {answer.text[:300]}", source=source, url=url)
    return str(answer.json()["access_token"])


class _Http:
    """The source's HTTP side: a bearer token (given, or from its OAuth2 route) on every call."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.client = httpx.Client(timeout=source.timeout, follow_redirects=True)
        self.token = source.token

    def bearer(self) -> str:
        if self.token:
            return self.token
        if not (self.source.username and self.source.password):
            raise PullError("no token and no user name and password to get one", source=self.source.name)
        self.token = password_token(
            self.client, self.source.root, self.source.username, self.source.password, source=self.source.name
        )
        return self.token

    def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            answer = self.client.get(url, params=params, headers={"Authorization": f"Bearer {self.bearer()}"})
        except httpx.HTTPError as exc:
            raise PullError(f"{type(exc).__name__}: {exc}", source=self.source.name, url=url) from exc
        if answer.status_code != 200:
            raise PullError(
                f"{answer.status_code}: {answer.text[:300]}", source=self.source.name, url=str(answer.url)
            )
        body = answer.json()
        if not isinstance(body, dict):
            raise PullError("the answer is not a JSON object", source=self.source.name, url=url)
        return body

    def download(self, product_id: str, target: Path) -> tuple[str, str, int]:
        """Stream ``$value`` into ``target``; the file's MD5, SHA-256 and size."""
        url = f"{self.source.root}/Products({product_id})/$value"
        md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
        headers = {"Authorization": f"Bearer {self.bearer()}"}
        try:
            with self.client.stream("GET", url, headers=headers) as answer, target.open("wb") as out:
                if answer.status_code != 200:
                    raise PullError(
                        f"download refused ({answer.status_code})", source=self.source.name, url=url
                    )
                for chunk in answer.iter_bytes(CHUNK):
                    md5.update(chunk)
                    sha256.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except httpx.HTTPError as exc:  # cut off, refused, timed out: the next pull tries again
            raise PullError(
                f"download failed: {type(exc).__name__}: {exc}", source=self.source.name, url=url
            ) from exc
        return md5.hexdigest(), sha256.hexdigest(), size


def _pages(http: _Http, source: Source, since: datetime | None) -> Iterator[list[dict[str, Any]]]:
    where = f"({source.filter})"
    if since is not None:
        where += f" and PublicationDate ge {odata_time(since)}"  # ms, rounded down: ge still holds
    url: str | None = f"{source.root}/Products"
    params: dict[str, str] | None = {"$filter": where, "$orderby": "PublicationDate asc", "$top": str(PAGE)}
    while url:
        body = http.get(url, params)
        yield list(body.get("value", []))
        url, params = body.get("@odata.nextLink"), None  # the link carries every option


def _check(entity: dict[str, Any], md5: str, sha256: str, size: int, source: str) -> None:
    expected = {
        c.get("Algorithm", "").upper(): str(c.get("Value", "")).lower() for c in entity.get("Checksum") or []
    }
    got = {"MD5": md5, "SHA256": sha256, "SHA-256": sha256}
    checked = [a for a in expected if a in got]
    if not checked:
        raise PullError(f"{entity.get('Name')}: no MD5 or SHA-256 checksum to verify against", source=source)
    for algorithm in checked:
        if expected[algorithm] != got[algorithm]:
            raise ChecksumMismatch(
                f"source {source}: {entity.get('Name')}: {algorithm} {got[algorithm]} received, "
                f"{expected[algorithm]} published; nothing ingested"
            )
    length = entity.get("ContentLength")
    if isinstance(length, int) and length != size:
        raise ChecksumMismatch(
            f"source {source}: {entity.get('Name')}: {size} bytes received, {length} published"
        )


def pull(
    catalog: Catalog, mission: str, source: Source, *, progress: Callable[[str], None] | None = None
) -> PullReport:
    """Take every product the source published since the cursor; returns what was taken."""
    report = PullReport(source.name)
    with catalog.session() as s:
        mission_id = get_mission(s, mission).id
        loaded = loaded_from_catalog(s, mission)
        cursor = s.scalar(
            select(InterfaceCursor).where(
                InterfaceCursor.mission_id == mission_id, InterfaceCursor.source == source.name
            )
        )
        since = cursor.published if cursor is not None else None
    ingestor = Ingestor(catalog, loaded)
    http = _Http(source)
    try:
        with tempfile.TemporaryDirectory(prefix="proseo-pull-") as scratch:
            for page in _pages(http, source, since):
                known = _known(catalog, [str(e.get("Id")) for e in page])
                for entity in page:
                    _take(
                        catalog,
                        ingestor,
                        http,
                        source,
                        mission_id,
                        entity,
                        entity.get("Id") in known,
                        Path(scratch),
                        report,
                    )
                    if progress:
                        progress(str(entity.get("Name")))
    finally:
        http.client.close()
    return report


def _known(catalog: Catalog, ids: list[str]) -> set[str]:
    with catalog.session() as s:
        return set(s.scalars(select(Product.uuid).where(Product.uuid.in_(ids))))


def _take(
    catalog: Catalog,
    ingestor: Ingestor,
    http: _Http,
    source: Source,
    mission_id: int,
    entity: dict[str, Any],
    known: bool,
    scratch: Path,
    report: PullReport,
) -> None:
    name, product_id = str(entity.get("Name", "")), str(entity.get("Id", ""))
    if not name or "/" in name or name in (".", ".."):
        raise PullError(f"product {product_id}: unusable Name {name!r}", source=source.name)
    if known:
        report.known.append(name)
    else:
        target = scratch / name
        try:
            md5, sha256, size = http.download(product_id, target)
            _check(entity, md5, sha256, size, source.name)
            result = ingestor.run([target])
        finally:
            target.unlink(missing_ok=True)
        if not result.ok:
            raise PullError(f"{name}: not ingested: {result.outcomes}", source=source.name)
        report.taken.append(name)
    published = parse_utc(str(entity["PublicationDate"]))
    _advance(catalog, mission_id, source.name, published, product_id, new=not known)
    report.cursor = published


def _advance(
    catalog: Catalog, mission_id: int, source: str, published: datetime, product_id: str, *, new: bool
) -> None:
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
            row.published, row.last_id = published, product_id
        row.taken += 1 if new else 0
