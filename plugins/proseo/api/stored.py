"""Where a catalogued file lives: its facility's storage and its key there (downloads, logs)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from proseo.catalog.model_mission import Facility
from proseo.errors import NotFoundError, StorageError
from proseo.storage import Storage, open_storage


def stored_object(session: Session, facility_id: int | None, url: str) -> tuple[Storage, str]:
    """The shared Storage of the facility and the key of ``url`` under its root."""
    facility = session.get(Facility, facility_id) if facility_id is not None else None
    if facility is None:
        raise NotFoundError(f"{url}: no facility {facility_id} holds it")
    storage = open_storage(facility.storage_url, dict(facility.storage_options or {}))
    try:
        return storage, storage.key_of(url)
    except StorageError as exc:
        raise NotFoundError(f"{url} is outside the storage of facility {facility.name}: {exc}") from exc
