"""Mission configuration: YAML files in mission_configs/ turned into checked models.

No Airflow import here (enforced by ruff): the planner, the CLI and the processor
wrapper all use these models outside Airflow.
"""

from proseo.missions.loader import LoadedMission, describe, load_mission, load_missions
from proseo.missions.models import MissionConfig
from proseo.missions.orbits import Orbit

__all__ = ["LoadedMission", "MissionConfig", "Orbit", "describe", "load_mission", "load_missions"]
