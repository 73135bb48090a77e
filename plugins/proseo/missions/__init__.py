"""Mission configuration: YAML files in mission_configs/ turned into checked models.

No Airflow import here (enforced by ruff): the planner, the CLI and the processor
wrapper all use these models outside Airflow.

The names below are imported on first use (PEP 562), so importing a light submodule
such as ``proseo.missions.types`` (the processor wrapper does, once per job step) does
not load the loader, the cross-reference checks and the rule parser with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proseo.missions.loader import LoadedMission, describe, load_mission, load_missions
    from proseo.missions.models import MissionConfig
    from proseo.missions.orbits import Orbit

_EXPORTS = {
    "LoadedMission": "proseo.missions.loader",
    "describe": "proseo.missions.loader",
    "load_mission": "proseo.missions.loader",
    "load_missions": "proseo.missions.loader",
    "MissionConfig": "proseo.missions.models",
    "Orbit": "proseo.missions.orbits",
}

__all__ = ["LoadedMission", "MissionConfig", "Orbit", "describe", "load_mission", "load_missions"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
