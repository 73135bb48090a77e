"""Structural rules: the core imports no Airflow, and ruff enforces it."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from tests_paths import REPO

# Every package of the core; each has a .ruff.toml banning Airflow. Later core packages
# (rules, planning, wrapper) join this list when they are created.
CORE = ["missions", "catalog", "storage", "rules", "planning", "wrapper", "interfaces"]


def test_core_packages_import_without_airflow() -> None:
    code = (
        "import sys\n"
        "import proseo.missions, proseo.catalog.ingest, proseo.catalog.models, proseo.storage\n"
        "import proseo.cli.main\n"
        "import proseo.interfaces.prip_entity, proseo.interfaces.prip_query\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize("package", CORE)
def test_ruff_bans_airflow_in_core_packages(package: str) -> None:
    """A probe file checked *as if* it lived in the package (ruff reads the package's config)."""
    probe = "from airflow.sdk import DAG\n\nprint(DAG)\n"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--stdin-filename",
            f"plugins/proseo/{package}/probe.py",
            "-",
        ],
        input=probe,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert "TID251" in result.stdout and "must not import Airflow" in result.stdout


def test_the_plugin_entry_point_resolves() -> None:
    (ep,) = [e for e in entry_points(group="airflow.plugins") if e.name == "proseo"]
    assert ep.value == "proseo.plugin:ProseoPlugin"


def test_plugins_folder_hides_the_package_from_airflows_file_loader() -> None:
    assert "proseo/" in (REPO / "plugins" / ".airflowignore").read_text().splitlines()
