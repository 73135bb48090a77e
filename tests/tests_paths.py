"""Paths of the repository's fixtures, importable from test modules."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MISSION_DIR = REPO / "mission_configs"


def without_triggers(text: str) -> str:
    """A sample mission file without its systematic-production sections (for tests that edit
    classes the triggers name)."""
    cut = text.find("\n# --- systematic production")
    return text if cut < 0 else text[:cut] + "\n"
