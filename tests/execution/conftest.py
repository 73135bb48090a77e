"""Fixtures of the execution tests: the catalogue with a sample mission onboarded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests_execution_helpers import STAND_IN, onboard

from proseo.catalog.db import Catalog


@pytest.fixture
def s5p_cat(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    onboard(catalog, "S5P")
    return catalog


@pytest.fixture
def sky_cat(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    onboard(catalog, "SKY")
    return catalog


@pytest.fixture
def stand_in(tmp_path: Path) -> list[str]:
    """The command of a stand-in wrapper (see ``STAND_IN``)."""
    script = tmp_path / "stand_in_wrapper.py"
    script.write_text(STAND_IN)
    return [sys.executable, str(script)]
