"""deploy/helm/values-production.yaml: the airflow.cfg options it sets are Airflow's, the counts
it sets are the ones deploy/sizing.md explains, and every image deploy/ and the mission files
name is one that docker/ builds.

Not checked: the chart's own values.schema.json (`helm lint`). The chart is published in the
Apache Airflow Helm repository, not on PyPI (no package carries its schema), and there is no
helm here; the keys used are the chart's documented ones, unverified."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import airflow
import yaml
from airflow.providers.cncf.kubernetes.get_provider_info import get_provider_info

from tests_paths import MISSION_DIR, REPO

VALUES = REPO / "deploy" / "helm" / "values-production.yaml"
SIZING = REPO / "deploy" / "sizing.md"
TEMPLATE = REPO / "deploy" / "kubernetes" / "processor-pod-template.yaml"
BUILD = re.compile(r"^docker build -f (docker/Dockerfile\.\S+)(?: --build-arg \S+)*\s+-t (\S+) \.$", re.M)


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


def _built_images() -> dict[str, str]:
    """Image reference -> its Dockerfile, from the build commands of docker/README.md."""
    return {
        image: dockerfile for dockerfile, image in BUILD.findall((REPO / "docker" / "README.md").read_text())
    }


def test_every_image_deploy_and_the_missions_name_is_built_by_docker() -> None:
    built = _built_images()
    assert all((REPO / dockerfile).is_file() for dockerfile in built.values()), built
    values = _values()
    airflow_image = values["images"]["airflow"]
    assert (values["defaultAirflowRepository"], values["defaultAirflowTag"]) == (
        airflow_image["repository"],
        airflow_image["tag"],
    )
    # The values name the image as pushed to the cluster's registry: registry host + built name.
    pushed = airflow_image["repository"].split("/", 1)[1] + ":" + airflow_image["tag"]
    assert built[pushed] == "docker/Dockerfile.airflow"
    assert built[yaml.safe_load(TEMPLATE.read_text())["spec"]["containers"][0]["image"]] == (
        "docker/Dockerfile.wrapper"
    )
    named = {
        version["image"]
        for config in sorted(MISSION_DIR.glob("*.yaml"))
        for processor in yaml.safe_load(config.read_text())["processors"].values()
        for version in processor["versions"]
        if version.get("image")
    }
    assert len(named) >= 8 and named - set(built) == set()
