"""Processor pods against the Kubernetes API's JSON schema: the pod template of deploy/, the
pods the backend makes from it, and the pods of both sample missions (test_pod_specs.py).

Validation is strict (tests/tests_k8s.py): unknown fields, wrong types, missing required
fields and integers out of range are errors, for the Kubernetes release the manifests are
written for (``KUBERNETES_VERSION``). The tests of broken templates show what it refuses.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiClient
from tests_execution_helpers import sample_context

from proseo.execution.kubernetes import JobStepPodOperator
from tests_k8s import KUBERNETES_VERSION, SchemaMissing, schema_errors

from tests_paths import REPO

TEMPLATE = REPO / "deploy" / "kubernetes" / "processor-pod-template.yaml"


def _template() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text())


def test_the_target_release_is_the_clients() -> None:
    """The schema's release is the one of the client API the provider builds pods with."""
    client_major = kubernetes.__version__.split(".")[0]
    assert f"1.{client_major}" == KUBERNETES_VERSION, kubernetes.__version__


def test_the_processor_pod_template_is_a_pod_of_the_schema() -> None:
    assert schema_errors(_template()) == []


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("spec", "tolerationz"), [], "spec: Additional properties are not allowed ('tolerationz' was"),
        (
            ("spec", "terminationGracePeriodSeconds"),
            "60 s",
            "spec.terminationGracePeriodSeconds: '60 s' is not of type 'integer', 'null'",
        ),
        (
            ("spec", "containers", 0, "resources"),
            {"requestz": {"cpu": "1"}},
            "spec.containers.0.resources: Additional properties are not allowed ('requestz' was",
        ),
        (
            ("metadata", "nodeSelector"),
            {"a": "b"},
            "metadata: Additional properties are not allowed ('nodeSelector' was",
        ),
        (("spec", "tolerations", 0, "tolerationSeconds"), 2**63, "is not a 'int64'"),
        (("spec", "containers"), {"name": "base"}, "spec.containers: {'name': 'base'} is not of type"),
    ],
    ids=["misspelt", "not-an-integer", "misplaced", "spec-field-under-metadata", "int64-range", "not-a-list"],
)
def test_the_schema_refuses_a_broken_template(path: tuple[Any, ...], value: Any, error: str) -> None:
    broken = copy.deepcopy(_template())
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (found,) = schema_errors(broken)
    assert error in found


def test_every_mistake_is_reported_with_its_place() -> None:
    broken = copy.deepcopy(_template())
    del broken["spec"]["containers"][0]["name"]
    broken["spec"]["priorityClassName"] = 5
    assert schema_errors(broken) == [
        "spec.containers.0: 'name' is a required property",
        "spec.priorityClassName: 5 is not of type 'string', 'null'",
    ]


def test_a_kind_or_release_without_a_schema_is_refused() -> None:
    with pytest.raises(SchemaMissing, match=r"no pod-v2\.json for Kubernetes 1\.36 "):
        schema_errors({**_template(), "apiVersion": "v2"})
    with pytest.raises(SchemaMissing, match=r"for Kubernetes 1\.9 "):
        schema_errors(_template(), version="1.9")


def test_a_processor_pod_made_from_the_template(tmp_path: Path) -> None:
    """The KPO lays proseo's settings over the facility's template (dry run, no cluster)."""
    ctx = dataclasses.replace(sample_context(backend="kubernetes"), pod_template_file=str(TEMPLATE))
    op = JobStepPodOperator(task_id="step_42", job_step_id=ctx.job_step_id, mission=ctx.mission)
    op.configure(ctx)
    pod = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(context=None, dry_run=True))
    assert schema_errors(pod) == []
    spec, base = pod["spec"], pod["spec"]["containers"][0]
    # The cluster's part, from the template.
    assert spec["priorityClassName"] == "proseo-processing"
    assert spec["tolerations"] == _template()["spec"]["tolerations"]
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert spec["automountServiceAccountToken"] is False and spec["terminationGracePeriodSeconds"] == 60
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "processor"
    # proseo's part wins where both speak.
    assert base["name"] == "base" and base["image"] == ctx.image
    assert pod["metadata"]["name"].startswith("proseo-s5p-42-")
    assert pod["metadata"]["namespace"] == "s5p-processing"
    assert base["resources"]["requests"]["cpu"] == "1" and base["resources"]["limits"]["memory"] == "2Gi"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert base["securityContext"]["readOnlyRootFilesystem"] is True
    assert {v["name"] for v in spec["volumes"]} == {"work", "tmp", "xcom"}
    assert {e["name"] for e in base["env"]} == {"PROSEO_JOB_SPEC", "PROSEO_SCRATCH"}
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == ctx.deadline_s


def test_without_a_template_nothing_of_it_appears() -> None:
    ctx = sample_context(backend="kubernetes")
    op = JobStepPodOperator(task_id="step_42", job_step_id=ctx.job_step_id, mission=ctx.mission)
    op.configure(ctx)
    pod = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(context=None, dry_run=True))
    assert schema_errors(pod) == []
    assert not pod["spec"].get("priorityClassName") and not pod["spec"].get("tolerations")
    assert "app.kubernetes.io/component" not in pod["metadata"]["labels"]


def test_a_facility_names_its_template_by_an_absolute_path() -> None:
    from pydantic import ValidationError

    from proseo.missions.models import KubernetesSettings

    assert KubernetesSettings(namespace="p", pod_template_file=str(TEMPLATE)).pod_template_file == str(
        TEMPLATE
    )
    with pytest.raises(ValidationError, match="pod_template_file"):
        KubernetesSettings(namespace="p", pod_template_file="deploy/template.yaml")
    # Absent, it is left out of the stored configuration (existing revisions keep their digest).
    assert "pod_template_file" not in KubernetesSettings(namespace="p").model_dump()
