"""Deployment settings: one object read once per process, documented in one generated table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from proseo.api.airflow_runs import AirflowRuns
from proseo.catalog.db import default_url
from proseo.settings import SettingsError, get_settings, reset_settings, settings_doc

from tests_paths import REPO


def test_the_published_settings_table_is_current() -> None:
    published = (REPO / "docs" / "settings.md").read_text()
    assert published == settings_doc(), "regenerate: python -m proseo.settings > docs/settings.md"
    assert "(docs/settings.md)" in (REPO / "README.md").read_text()  # linked from the README


def test_values_are_read_once_and_the_tests_read_them_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROSEO_CATALOG_URL", "postgresql://u@db/cat")
    assert default_url() == "postgresql+psycopg://u@db/cat"
    monkeypatch.setenv("PROSEO_CATALOG_URL", "sqlite:///elsewhere.db")
    assert default_url() == "postgresql+psycopg://u@db/cat"  # cached for the process


def test_each_test_starts_with_fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_settings().catalog_url is None  # the previous test's value is gone
    monkeypatch.setenv("PROSEO_AIRFLOW_URL", "http://airflow:8080/")
    monkeypatch.setenv("PROSEO_AIRFLOW_TOKEN", "")
    monkeypatch.setenv("PROSEO_AIRFLOW_USER", "ops")
    reset_settings()  # what a test that changes the environment after a read does
    runs = AirflowRuns.from_env()
    assert runs is not None and runs.base_url == "http://airflow:8080"
    assert (runs.token, runs.username, runs.password) == (None, "ops", None)


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROSEO_DAG_SHARDS", "many")
    with pytest.raises(SettingsError, match="PROSEO_DAG_SHARDS: Input should be a valid integer"):
        get_settings()


def test_no_deployment_variable_is_read_from_the_environment_directly() -> None:
    """Every PROSEO_* deployment value goes through proseo.settings (grep, as a reviewer would)."""
    allowed = {
        "settings.py",  # the one reader
        "demo.py",  # PROSEO_DEMO_HOME: the demo's own switch
        "ipf.py",  # PROSEO_IPF_LOG_TIMESTAMPS: the sample processors import nothing of proseo
    }
    found = subprocess.run(
        ["grep", "-rnE", r"environ(\.get)?\(?\[?[\"']PROSEO_|getenv\([\"']PROSEO_", "plugins/proseo"],
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout.splitlines()
    offending = [line for line in found if line.split(":")[0].rsplit("/", 1)[-1] not in allowed]
    assert offending == []


def test_settings_import_no_airflow() -> None:
    code = (
        "import sys, proseo.settings, proseo.catalog.db\n"
        "assert not [m for m in sys.modules if m.startswith('airflow')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
