"""Fixtures of the execution tests: the catalogue with a sample mission onboarded."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests_execution_helpers import DAY, STAND_IN, ingest, onboard

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.devtools.slurm import SlurmCluster, slurm_available
from proseo.missions import load_mission
from tests_slurm import SLURM_FACILITIES

from tests_paths import MISSION_DIR


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


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A single-node Slurm on localhost for the session; client commands reach it through
    ``SLURM_CONF``. A missing Slurm fails the tests with the install line.

    The node declares at least 8 CPUs and 32 GiB (more than this host may have): the SKY
    sample processors ask for up to 6 CPUs and 24Gi (COADD), and nothing here enforces
    the requests (task/none), so they run on what the host has.
    """
    if not slurm_available():
        pytest.fail("Slurm is not installed: make slurm  (or: bash tests/execution/install_slurm.sh)")
    cpus, memory_mb = max(8, os.cpu_count() or 1), 32 * 1024
    with SlurmCluster(tmp_path_factory.mktemp("slurm"), cpus=cpus, memory_mb=memory_mb) as cluster:
        before = os.environ.get("SLURM_CONF")
        os.environ.update(cluster.env())
        try:
            yield cluster
        finally:
            if before is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = before


@pytest.fixture
def slurm_sky(
    catalog: Catalog,
    data_dirs: dict[str, Path],
    slurm_cluster: SlurmCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Catalog:
    """The SKY mission with two Slurm facilities, onboarded; inputs for one night ingested."""
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("PROSEO_SLURM_SHARED", str(shared))
    path = MISSION_DIR / "sky.yaml"
    text = path.read_text().replace("facilities:\n", SLURM_FACILITIES, 1)
    with catalog.session() as s:
        sync_mission(s, load_mission(path, text=text))
    ingest(catalog, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    return catalog
