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

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import get_mission, loaded_from_catalog
from proseo.catalog.model_interface import InterfaceCursor, cursor_published
from proseo.catalog.model_product import Product
from proseo.errors import ChecksumMismatch
from proseo.interfaces.odata_http import ODataHttp, PullError, password_token
from proseo.interfaces.prip_entity import odata_time
from proseo.missions.types import parse_utc

PAGE = 100

__all__ = ["PullError", "PullReport", "Source", "password_token", "pull"]


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


class _Http(ODataHttp):
    """The source's HTTP side (:class:`ODataHttp`) and where its products' bytes are."""

    def __init__(self, source: Source) -> None:
        super().__init__(
            source.name,
            source.root,
            username=source.username,
            password=source.password,
            token=source.token,
            timeout=source.timeout,
        )

    def download_product(self, product_id: str, target: Path) -> tuple[str, str, int]:
        """Stream ``Products(<Id>)/$value`` into ``target``; the file's MD5, SHA-256 and size."""
        return self.download(f"{self.root}/Products({product_id})/$value", target)


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
        since = cursor_published(s, mission_id, source.name)
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
        http.close()
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
            md5, sha256, size = http.download_product(product_id, target)
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
