"""Paths of the repository's fixtures, importable from test modules."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MISSION_DIR = REPO / "mission_configs"
