"""deploy/helm/values-production.yaml: the airflow.cfg options it sets are Airflow's, and the
counts it sets are the ones deploy/sizing.md explains.

Not checked (no helm here): the chart's own values.schema.json (`helm lint`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import airflow
import yaml
from airflow.providers.cncf.kubernetes.get_provider_info import get_provider_info

from tests_paths import REPO

VALUES = REPO / "deploy" / "helm" / "values-production.yaml"
SIZING = REPO / "deploy" / "sizing.md"


def _values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def _airflow_options() -> dict[str, set[str]]:
    """Every [section] option of Airflow 3.3's own configuration and the Kubernetes provider's."""
    described = yaml.safe_load(
        (Path(airflow.__file__).parent / "config_templates" / "config.yml").read_text()
    )
    described.update(get_provider_info()["config"])
    return {section: set(body.get("options", {})) for section, body in described.items()}


def test_every_config_option_is_one_airflow_defines() -> None:
    known = _airflow_options()
    unknown = [
        f"[{section}] {option}"
        for section, options in _values()["config"].items()
        for option in options
        if option not in known.get(section, set())
    ]
    assert unknown == []


def test_the_executor_and_the_image_are_proseos() -> None:
    values = _values()
    assert values["executor"] == "KubernetesExecutor"
    dockerfile = (REPO / "docker" / "Dockerfile.airflow").read_text()
    assert f"apache/airflow:{values['airflowVersion']}-python3.11" in dockerfile
    assert values["config"]["kubernetes_executor"]["namespace"]
    assert not values["postgresql"]["enabled"] and values["pgbouncer"]["enabled"]


def test_the_counts_are_the_sizing_notes() -> None:
    values, sizing = _values(), SIZING.read_text()
    for component, key in (
        ("scheduler", "scheduler"),
        ("DAG processor", "dagProcessor"),
        ("triggerer", "triggerer"),
        ("API server", "apiServer"),
    ):
        assert f"| {component} | {values[key]['replicas']} |" in sizing, component
    assert f"`[core] parallelism` {values['config']['core']['parallelism']:,}" in sizing
    assert f"`[triggerer] capacity` {values['config']['triggerer']['capacity']:,}" in sizing
