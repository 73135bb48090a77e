"""What the order form can offer, read from the catalogue when the DAG file is parsed.

The DAG processor parses the file every 30 s: the choices (missions, producible
classes, modes, file classes, facilities, processors) come from ONE query, and any
failure (no catalogue, not migrated, unreachable) yields no choices instead of a
DAG file that does not parse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from proseo.catalog.configs import config_for
from proseo.catalog.db import default_url, make_engine, normalize_url
from proseo.catalog.model_mission import Mission, MissionRevision
from proseo.missions.filenames import template_fields
from proseo.missions.models import MissionConfig
from proseo.missions.types import ProcessingLevel

log = logging.getLogger(__name__)

#: How long parsing waits for an unreachable PostgreSQL catalogue before falling back.
PARSE_CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class MissionChoices:
    """What the form can offer for one mission (from its latest revision)."""

    code: str
    name: str
    modes: tuple[str, ...]
    file_classes: tuple[str, ...]
    #: Classes an order may request (they have a processor), with their descriptions.
    producible: dict[str, str] = field(default_factory=dict)
    #: The requested classes the form proposes by default (highest level first).
    default_classes: tuple[str, ...] = ()
    facilities: tuple[str, ...] = ()
    configured_processors: tuple[str, ...] = ()
    #: Mission parameters the product file names need (``output_parameters["*"]``), with types.
    name_parameters: dict[str, str] = field(default_factory=dict)


def _choices(code: str, name: str, cfg: MissionConfig) -> MissionChoices:
    producible = {n: pc.description for n, pc in cfg.product_classes.items() if cfg.producer_of(n)}
    levels = list(ProcessingLevel)

    def rank(n: str) -> int:
        level = cfg.product_classes[n].level
        return levels.index(level) if level in levels else -1

    top = max((rank(n) for n in producible), default=-1)
    in_names = {f.name for n in producible for f in template_fields(cfg.class_template(n))}
    return MissionChoices(
        code=code,
        name=name,
        modes=tuple(cfg.mission.processing_modes),
        file_classes=tuple(cfg.mission.file_classes),
        producible=producible,
        default_classes=tuple(n for n in producible if rank(n) == top)[:1],
        facilities=tuple(cfg.facilities),
        configured_processors=tuple(cp.id for cp in cfg.configured_processors() if cp.enabled),
        name_parameters={k: v.value for k, v in cfg.mission.parameters.items() if k in in_names},
    )


def known_missions(url: str | None = None) -> list[MissionChoices]:
    """The missions of the catalogue and what the form offers for them: ONE query.

    Returns ``[]`` (and logs why) when the catalogue is empty, missing, not migrated or
    unreachable; a missing SQLite file is not created. Never raises: the DAG file that
    calls this must always parse.
    """
    try:
        url = normalize_url(url) if url else default_url()
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:" and not Path(parsed.database).exists():
                log.info("proseo catalogue %s does not exist yet: the order form offers no choices", url)
                return []
        else:
            kwargs["connect_args"] = {"connect_timeout": PARSE_CONNECT_TIMEOUT_S}
        latest = (
            select(MissionRevision.mission_id, func.max(MissionRevision.number).label("number"))
            .group_by(MissionRevision.mission_id)
            .subquery()
        )
        query = (
            select(
                Mission.code, Mission.name, MissionRevision.id, MissionRevision.digest, MissionRevision.config
            )
            .join(latest, latest.c.mission_id == Mission.id)
            .join(
                MissionRevision,
                (MissionRevision.mission_id == Mission.id) & (MissionRevision.number == latest.c.number),
            )
            .order_by(Mission.code)
        )
        engine = make_engine(url, **kwargs)
        try:
            with engine.connect() as conn:
                rows = conn.execute(query).all()
        finally:
            engine.dispose()
    except Exception as exc:  # the DAG file must parse whatever the catalogue does
        log.warning(
            "proseo catalogue not readable (%s: %s): the order form offers no choices",
            type(exc).__name__,
            exc,
        )
        return []
    out = []
    for code, name, revision_id, digest, config in rows:
        try:
            out.append(_choices(code, name, config_for(revision_id, digest, config)))
        except Exception as exc:
            log.warning(
                "mission %s: its configuration does not validate here (%s); left out of the form", code, exc
            )
    return out
