"""Onboard a mission: write a checked configuration into the catalogue.

Loading is idempotent: the same meaning (digest) loads as "unchanged"; a changed
file becomes revision n+1 while orders keep pointing at the revision they were
planned with. Everything happens in the caller's transaction, so a failure writes
nothing. Rows that products or orders refer to are updated in place or retired,
never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from proseo.catalog.configs import revision_config_of
from proseo.catalog.db import utcnow
from proseo.catalog.model_mission import (
    ConfiguredProcessor,
    Facility,
    Mission,
    MissionRevision,
    Orbit,
    ProductClass,
    Spacecraft,
)
from proseo.errors import NotFoundError
from proseo.missions.loader import LoadedMission
from proseo.missions.models import MissionConfig, dump_config
from proseo.missions.orbits import Orbit as OrbitSpan


@dataclass(frozen=True)
class SyncResult:
    mission: str
    revision: int
    status: str  # "created" | "updated" | "unchanged"
    changes: dict[str, int]


def sync_mission(session: Session, loaded: LoadedMission) -> SyncResult:
    """Insert or update one mission; returns what changed."""
    cfg = loaded.config
    mission = session.scalar(select(Mission).where(Mission.code == cfg.mission.code))
    created = mission is None
    if mission is None:
        mission = Mission(code=cfg.mission.code, name=cfg.mission.name)
        session.add(mission)
        session.flush()
    latest = latest_revision(session, mission.id)
    if latest is not None and latest.digest == loaded.digest:
        return SyncResult(mission.code, latest.number, "unchanged", {})

    mission.name = cfg.mission.name
    number = latest.number + 1 if latest else 1
    session.add(
        MissionRevision(
            mission_id=mission.id,
            number=number,
            digest=loaded.digest,
            source_file=loaded.file,
            source_text=loaded.text,
            config=dump_config(cfg),
            loaded_at=utcnow(),
        )
    )
    changes = {
        "product_classes": _sync_classes(session, mission.id, cfg),
        "configured_processors": _sync_processors(session, mission.id, cfg),
        "facilities": _sync_facilities(session, mission.id, cfg),
        "orbits": _sync_orbits(session, mission.id, loaded),
    }
    session.flush()
    return SyncResult(mission.code, number, "created" if created else "updated", changes)


def latest_revision(session: Session, mission_id: int) -> MissionRevision | None:
    return session.scalar(
        select(MissionRevision)
        .where(MissionRevision.mission_id == mission_id)
        .order_by(MissionRevision.number.desc())
        .limit(1)
    )


def get_mission(session: Session, code: str) -> Mission:
    mission = session.scalar(select(Mission).where(Mission.code == code))
    if mission is None:
        known = session.scalars(select(Mission.code).order_by(Mission.code)).all()
        hint = f" (loaded: {', '.join(known)})" if known else " (no mission is loaded yet)"
        raise NotFoundError(f"mission {code!r} is not in the catalogue{hint}")
    return mission


def revision_config(session: Session, code: str, number: int | None = None) -> tuple[int, MissionConfig]:
    """The stored configuration of a mission revision (the latest by default)."""
    mission = get_mission(session, code)
    query = select(MissionRevision).where(MissionRevision.mission_id == mission.id)
    if number is not None:
        rev = session.scalar(query.where(MissionRevision.number == number))
    else:
        rev = latest_revision(session, mission.id)
    if rev is None:
        raise NotFoundError(f"mission {code!r} has no revision {number}")
    return rev.number, revision_config_of(rev)


def loaded_from_catalog(session: Session, code: str, number: int | None = None) -> LoadedMission:
    """A mission as stored in the catalogue (config of a revision plus the orbit table).

    Work that runs against the catalogue uses this, never the YAML file on disk, so it
    sees exactly the revision that was loaded.
    """
    rev, cfg = revision_config(session, code, number)
    rows = session.execute(
        select(Spacecraft.code, Orbit.number, Orbit.start_time, Orbit.stop_time)
        .join(Orbit, Orbit.spacecraft_id == Spacecraft.id)
        .join(Mission, Mission.id == Spacecraft.mission_id)
        .where(Mission.code == code)
        .order_by(Spacecraft.code, Orbit.number)
    )
    orbits: dict[str, list[OrbitSpan]] = {}
    for craft, n, start, stop in rows:
        orbits.setdefault(craft, []).append(OrbitSpan(n, start, stop))
    return LoadedMission(config=cfg, file=f"catalogue:{code}@{rev}", text="", orbits=orbits)


def _upsert(
    session: Session,
    model: Any,
    existing: dict[str, Any],
    key: str,
    wanted: dict[str, dict[str, Any]],
    mission_id: int,
) -> int:
    changed = 0
    for name, values in wanted.items():
        row = existing.get(name)
        if row is None:
            session.add(model(mission_id=mission_id, **{key: name}, **values, retired=False))
            changed += 1
            continue
        for attr, value in {**values, "retired": False}.items():
            if getattr(row, attr) != value:
                setattr(row, attr, value)
                changed += 1
    for name, row in existing.items():
        if name not in wanted and not row.retired:
            row.retired = True
            changed += 1
    return changed


def _sync_classes(session: Session, mission_id: int, cfg: MissionConfig) -> int:
    existing = {
        r.product_type: r
        for r in session.scalars(select(ProductClass).where(ProductClass.mission_id == mission_id))
    }
    wanted = {
        ptype: {
            "level": pc.level.value if pc.level else None,
            "visibility": pc.visibility.value,
            "processor_class": cfg.producer_of(ptype),
            "enclosing_type": cfg.enclosing_of(ptype),
            "slicing_type": pc.slicing.type.value,
            "description": pc.description,
        }
        for ptype, pc in cfg.product_classes.items()
    }
    return _upsert(session, ProductClass, existing, "product_type", wanted, mission_id)


def _sync_processors(session: Session, mission_id: int, cfg: MissionConfig) -> int:
    existing = {
        r.identifier: r
        for r in session.scalars(
            select(ConfiguredProcessor).where(ConfiguredProcessor.mission_id == mission_id)
        )
    }
    wanted = {
        cp.id: {
            "processor_class": cp.processor,
            "version": cp.version,
            "configuration": cp.configuration,
            "enabled": cp.enabled,
        }
        for cp in cfg.configured_processors()
    }
    return _upsert(session, ConfiguredProcessor, existing, "identifier", wanted, mission_id)


def _sync_facilities(session: Session, mission_id: int, cfg: MissionConfig) -> int:
    existing = {r.name: r for r in session.scalars(select(Facility).where(Facility.mission_id == mission_id))}
    default = cfg.default_facility()
    wanted = {
        name: {
            "backend": f.backend.value,
            "storage_url": f.storage_url,
            "storage_options": dict(f.storage_options),
            "scratch_path": f.scratch_path,
            "max_concurrent_job_steps": f.max_concurrent_job_steps,
            "kubernetes": f.kubernetes.model_dump(mode="json") if f.kubernetes else None,
            "slurm": f.slurm.model_dump(mode="json") if f.slurm else None,
            "is_default": name == default,
        }
        for name, f in cfg.facilities.items()
    }
    return _upsert(session, Facility, existing, "name", wanted, mission_id)


def _sync_orbits(session: Session, mission_id: int, loaded: LoadedMission) -> int:
    """Insert new orbits and correct changed ones in bulk (orbit tables run to 10^4-10^5 rows)."""
    changed = 0
    for sc in loaded.config.spacecraft:
        craft = session.scalar(
            select(Spacecraft).where(Spacecraft.mission_id == mission_id, Spacecraft.code == sc.code)
        )
        if craft is None:
            craft = Spacecraft(mission_id=mission_id, code=sc.code, name=sc.name)
            session.add(craft)
            session.flush()
        else:
            craft.name = sc.name
        have = {
            n: (i, a, b)
            for i, n, a, b in session.execute(
                select(Orbit.id, Orbit.number, Orbit.start_time, Orbit.stop_time).where(
                    Orbit.spacecraft_id == craft.id
                )
            )
        }
        new_rows, updates = [], []
        for orbit in loaded.orbits.get(sc.code, []):
            row = have.get(orbit.number)
            if row is None:
                new_rows.append(
                    {
                        "spacecraft_id": craft.id,
                        "number": orbit.number,
                        "start_time": orbit.start,
                        "stop_time": orbit.stop,
                    }
                )
            elif (row[1], row[2]) != (orbit.start, orbit.stop):
                updates.append({"id": row[0], "start_time": orbit.start, "stop_time": orbit.stop})
        if new_rows:
            session.execute(insert(Orbit), new_rows)
        if updates:
            session.execute(update(Orbit), updates)
        changed += len(new_rows) + len(updates)
    return changed
