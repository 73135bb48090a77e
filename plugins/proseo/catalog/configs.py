"""A mission revision's configuration, validated once per process.

Revision rows never change (a changed mission file becomes a new revision), so the
stored ``mission_revision.config`` need not be validated again for every job step,
order or parse of the order form. :func:`revision_config_of` keeps the validated
:class:`~proseo.missions.models.MissionConfig` per revision in a bounded LRU cache;
every reader of a revision's configuration goes through it.

The key is (revision id, digest): ids repeat across catalogues (several in one
process: tests, a CLI pointed at two), and the digest, a hash of the validated
meaning, tells them apart. The models are frozen, so sharing one is safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from proseo.catalog.model_mission import MissionRevision
from proseo.missions.models import MissionConfig

#: Revisions kept (a deployment has a few missions with a few live revisions each).
CACHE_SIZE = 64

_cache: OrderedDict[tuple[int, str], MissionConfig] = OrderedDict()
_lock = threading.Lock()


def config_for(revision_id: int, digest: str, config: Mapping[str, Any]) -> MissionConfig:
    """The validated configuration of revision ``revision_id`` (validated on first use)."""
    key = (revision_id, digest)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    validated = MissionConfig.model_validate(config)  # outside the lock: it takes milliseconds
    with _lock:
        _cache[key] = validated
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return validated


def revision_config_of(revision: MissionRevision) -> MissionConfig:
    """The validated configuration of a revision row."""
    return config_for(revision.id, revision.digest, revision.config)


def clear_config_cache() -> None:
    with _lock:
        _cache.clear()
