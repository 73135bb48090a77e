"""Ingest delivered files (L0, AUX, raw exposures) into storage and the catalogue.

Per batch: describe the files, look their identities up in one query, copy the
new ones into the facility's storage in parallel (checksummed while copying),
then register products and files in one transaction. Re-ingesting the same file
is a no-op; a different file under the same identity is a conflict. If the
catalogue write fails, the objects copied for that batch are removed again, so
storage never holds a product the catalogue does not know.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.describe import Described, describe_file
from proseo.catalog.mission_sync import get_mission
from proseo.catalog.model_mission import Facility, Orbit, Spacecraft
from proseo.catalog.model_product import Product, ProductFile, ProductionType, ProductStatus
from proseo.catalog.products import class_ids, product_identity
from proseo.errors import IngestError, NotFoundError, ProseoError
from proseo.missions.loader import LoadedMission
from proseo.missions.orbits import Orbit as OrbitSpan
from proseo.storage import FileInfo, Storage, hash_file, open_storage

PRODUCT_NAMESPACE = uuid.UUID("6f0b7c1e-3d55-4c1e-9a53-70726f73656f")


@dataclass(frozen=True)
class Outcome:
    file: str
    status: str  # new | unchanged | conflict | error
    product_id: int | None = None
    message: str | None = None


@dataclass
class IngestReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return all(o.status in ("new", "unchanged") for o in self.outcomes)


def storage_key(d: Described) -> str:
    """Deterministic location: ``<type>/<yyyy>/<mm>/<dd>/<file name>`` by sensing start."""
    return f"{d.product_type}/{d.start:%Y/%m/%d}/{d.path.name}"


class Ingestor:
    """Ingests files for one mission into one facility."""

    def __init__(
        self,
        catalog: Catalog,
        mission: LoadedMission,
        *,
        facility: str | None = None,
        workers: int = 8,
        batch_size: int = 500,
    ) -> None:
        self.catalog, self.mission = catalog, mission
        self.workers, self.batch_size = workers, batch_size
        with catalog.session() as s:
            m = get_mission(s, mission.code)
            self.mission_id = m.id
            name = facility or mission.config.default_facility()
            fac = s.scalar(select(Facility).where(Facility.mission_id == m.id, Facility.name == name))
            if fac is None or fac.retired:
                raise NotFoundError(f"mission {mission.code} has no facility {name!r}")
            self.facility_id, self.facility = fac.id, name
            self.storage: Storage = open_storage(fac.storage_url, fac.storage_options)
            self.class_ids = class_ids(s, m.id)
            self.orbits = self._orbits(s, m.id)

    def _orbits(self, s: Session, mission_id: int) -> dict[int, tuple[int, OrbitSpan]]:
        rows = s.execute(
            select(Orbit.id, Orbit.number, Orbit.start_time, Orbit.stop_time)
            .join(Spacecraft, Spacecraft.id == Orbit.spacecraft_id)
            .where(Spacecraft.mission_id == mission_id)
        )
        return {n: (i, OrbitSpan(n, a, b)) for i, n, a, b in rows}

    def run(
        self,
        files: Sequence[Path],
        *,
        product_type: str | None = None,
        file_class: str | None = None,
        mode: str | None = None,
        production_type: ProductionType = ProductionType.SYSTEMATIC,
        progress: Callable[[int], None] | None = None,
    ) -> IngestReport:
        report = IngestReport()
        spans = {n: span for n, (_, span) in self.orbits.items()}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="ingest") as pool:
            for i in range(0, len(files), self.batch_size):
                batch = files[i : i + self.batch_size]
                described: list[Described] = []
                for path in batch:
                    try:
                        described.append(
                            describe_file(
                                Path(path),
                                self.mission,
                                product_type=product_type,
                                file_class=file_class,
                                mode=mode,
                                orbits=spans,
                            )
                        )
                    except IngestError as exc:
                        report.outcomes.append(Outcome(str(path), "error", message=str(exc)))
                report.outcomes += self._batch(described, pool, production_type)
                if progress:
                    progress(len(batch))
        return report

    def _identity(self, d: Described) -> str:
        return product_identity(
            mission=self.mission.code,
            product_type=d.product_type,
            file_class=d.file_class,
            mode=d.mode,
            start=d.start,
            stop=d.stop,
            generation=d.generation,
            configured_processor=None,
            parameters=d.parameters,
        )

    def _batch(
        self, items: list[Described], pool: ThreadPoolExecutor, production_type: ProductionType
    ) -> list[Outcome]:
        if not items:
            return []
        outcomes: list[Outcome] = []
        ids = [self._identity(d) for d in items]
        with self.catalog.session() as s:
            existing = {
                p.identity: p for p in s.scalars(select(Product).where(Product.identity.in_(set(ids))))
            }
            known_files = {
                pid: (size, sha)
                for pid, size, sha in s.execute(
                    select(ProductFile.product_id, ProductFile.size, ProductFile.sha256).where(
                        ProductFile.product_id.in_([p.id for p in existing.values()])
                    )
                )
            }
            urls = [self.storage.url_for(storage_key(d)) for d in items]
            taken = dict(
                s.execute(
                    select(ProductFile.storage_url, ProductFile.product_id).where(
                        ProductFile.storage_url.in_(urls)
                    )
                ).all()
            )

        fresh: list[tuple[Described, str, str]] = []
        repeats: list[tuple[Described, int]] = []
        first_in_batch: dict[str, Described] = {}
        for d, ident, url in zip(items, ids, urls, strict=True):
            if ident in existing:
                repeats.append((d, existing[ident].id))
            elif ident in first_in_batch:
                outcomes.append(
                    Outcome(
                        str(d.path),
                        "conflict",
                        message=(f"same product identity as {first_in_batch[ident].path} in this ingest"),
                    )
                )
            elif url in taken:
                outcomes.append(
                    Outcome(
                        str(d.path),
                        "conflict",
                        message=(f"{url} already holds product {taken[url]} with a different identity"),
                    )
                )
            else:
                first_in_batch[ident] = d
                fresh.append((d, ident, url))

        hashes = pool.map(lambda r: hash_file(r[0].path), repeats)
        for (d, pid), info in zip(repeats, hashes, strict=True):
            have = known_files.get(pid)
            if have is not None and have == (info.size, info.sha256):
                outcomes.append(Outcome(str(d.path), "unchanged", pid))
            else:
                known = f"sha256 {have[1][:12]}…, {have[0]} bytes" if have else "no file"
                message = (
                    f"product {pid} already exists with this identity but a different file "
                    f"(catalogue: {known}; this file: sha256 {info.sha256[:12]}…, {info.size} bytes)"
                )
                outcomes.append(Outcome(str(d.path), "conflict", pid, message))

        copied: list[tuple[Described, str, FileInfo]] = []
        results = pool.map(self._copy, fresh)
        for (d, ident, _url), result in zip(fresh, results, strict=True):
            if isinstance(result, ProseoError):
                outcomes.append(Outcome(str(d.path), "error", message=str(result)))
            else:
                copied.append((d, ident, result))
        if copied:
            outcomes += self._register(copied, production_type)
        return outcomes

    def _copy(self, item: tuple[Described, str, str]) -> FileInfo | ProseoError:
        d = item[0]
        try:
            return self.storage.put_file(d.path, storage_key(d))
        except ProseoError as exc:
            return IngestError(
                f"copy to {self.storage.url_for(storage_key(d))} failed: {exc}",
                file=str(d.path),
                mission=self.mission.code,
            )
        except OSError as exc:
            return IngestError(f"cannot read: {exc}", file=str(d.path), mission=self.mission.code)

    def _register(
        self, copied: list[tuple[Described, str, FileInfo]], production_type: ProductionType
    ) -> list[Outcome]:
        now = utcnow()
        rows = [
            {
                "uuid": str(uuid.uuid5(PRODUCT_NAMESPACE, ident)),
                "identity": ident,
                "mission_id": self.mission_id,
                "product_class_id": self.class_ids[d.product_type],
                "file_class": d.file_class,
                "mode": d.mode,
                "sensing_start": d.start,
                "sensing_stop": d.stop,
                "generation_time": d.generation or now,
                "production_type": production_type.value,
                "status": ProductStatus.AVAILABLE.value,
                "parameters": d.parameters,
                "orbit_id": self.orbits[d.orbit][0] if d.orbit in self.orbits else None,
                "created_at": now,
            }
            for d, ident, _ in copied
        ]
        try:
            with self.catalog.session() as s:
                ids = s.scalars(
                    insert(Product).returning(Product.id, sort_by_parameter_order=True), rows
                ).all()
                s.execute(
                    insert(ProductFile),
                    [
                        {
                            "product_id": pid,
                            "facility_id": self.facility_id,
                            "file_name": d.path.name,
                            "storage_url": info.url,
                            "size": info.size,
                            "md5": info.md5,
                            "sha256": info.sha256,
                            "created_at": now,
                        }
                        for pid, (d, _, info) in zip(ids, copied, strict=True)
                    ],
                )
        except Exception as exc:
            self._undo_copies([(info.url, storage_key(d)) for d, _, info in copied])
            message = f"catalogue write failed, copies removed: {type(exc).__name__}: {exc}"
            return [Outcome(str(d.path), "error", message=message[:500]) for d, _, _ in copied]
        return [Outcome(str(d.path), "new", pid) for pid, (d, _, _) in zip(ids, copied, strict=True)]

    def _undo_copies(self, objects: list[tuple[str, str]]) -> None:
        """Remove objects this batch wrote, except any another process registered meanwhile."""
        with self.catalog.session() as s:
            registered = set(
                s.scalars(
                    select(ProductFile.storage_url).where(
                        ProductFile.storage_url.in_([u for u, _ in objects])
                    )
                )
            )
        for url, key in objects:
            if url not in registered:
                self.storage.delete(key)
