"""The fields of a CADIP ``Sessions`` entity a pull uses, and a key for one it cannot use.

Parsing is strict (a wrong field is a ValueError naming it): a session whose Id,
SessionId, NumChannels or PublicationDate cannot be trusted is not downloaded. Such an
entity is still recorded (:func:`entity_key`, :func:`loose_published`), so the cursor
can move past it without losing it and a pull does not fail on it again and again.
Pure functions over the entity's JSON: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from proseo.missions.types import parse_utc

#: Ids and SessionIds go into URLs and file names: plain names only.
SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,120}")
#: The longest entity Id the catalogue keeps (cadip_session.entity_id).
MAX_ID = 64


class SessionEntity:
    """A Sessions entity that can be pulled: plain names, an integer NumChannels, instants."""

    def __init__(self, entity: dict[str, Any]) -> None:
        self.entity_id = str(entity.get("Id") or "")
        self.session_id = str(entity.get("SessionId") or "")
        plain = SAFE.fullmatch(self.entity_id) and len(self.entity_id) <= MAX_ID
        if not plain or not SAFE.fullmatch(self.session_id):
            raise ValueError(f"Id {self.entity_id!r} / SessionId {self.session_id!r} is not a plain name")
        channels = entity.get("NumChannels")
        if not isinstance(channels, int) or isinstance(channels, bool):
            raise ValueError(f"NumChannels is {channels!r}, expected an integer")
        self.channels = channels
        self.satellite = entity.get("Satellite")
        published = instant(entity, "PublicationDate")
        if published is None:
            raise ValueError("no PublicationDate")
        self.published: datetime = published
        self.start = instant(entity, "DownlinkStart")
        self.stop = instant(entity, "DownlinkStop")
        orbit = entity.get("DownlinkOrbit")
        self.orbit = orbit if isinstance(orbit, int) and not isinstance(orbit, bool) and orbit >= 0 else None

    @classmethod
    def of(cls, entity: dict[str, Any]) -> SessionEntity:
        return cls(entity)


def instant(entity: dict[str, Any], name: str) -> datetime | None:
    """The field as a UTC instant; None when absent; a ValueError naming it when not an instant."""
    value = entity.get(name)
    if value is None:
        return None
    try:
        return parse_utc(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is {value!r}, not an instant") from exc


def entity_key(entity: dict[str, Any]) -> tuple[str, bool]:
    """The key an unusable entity is recorded under, and whether it can be asked for again.

    Its Id when that is a plain name (``Sessions(<Id>)`` can be fetched at the next pull);
    else a digest of the entity, so the same broken entity listed again is the same row."""
    entity_id = entity.get("Id")
    if isinstance(entity_id, str) and SAFE.fullmatch(entity_id) and len(entity_id) <= MAX_ID:
        return entity_id, True
    digest = hashlib.sha256(json.dumps(entity, sort_keys=True, default=str).encode()).hexdigest()
    return f"unusable-{digest[:40]}", False


def loose_session_id(entity: dict[str, Any], key: str) -> str:
    """A name for the report: the SessionId as given (shortened), else the key."""
    sid = entity.get("SessionId")
    return str(sid)[:128] if isinstance(sid, str) and sid.strip() else key


def loose_published(entity: dict[str, Any]) -> datetime | None:
    """The PublicationDate if it is an instant, else None (the cursor then stays where it is)."""
    try:
        return instant(entity, "PublicationDate")
    except ValueError:
        return None
