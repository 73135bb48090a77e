"""Fixtures of the execution tests: the catalogue with a sample mission onboarded."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_execution_helpers import onboard

from proseo.catalog.db import Catalog


@pytest.fixture
def s5p_cat(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    onboard(catalog, "S5P")
    return catalog


@pytest.fixture
def sky_cat(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    onboard(catalog, "SKY")
    return catalog
