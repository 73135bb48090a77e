"""Processor pods against the Kubernetes API's models: the pod template of deploy/, the pods
the backend makes from it, and the pods of both sample missions.

What the round trip (tests/tests_k8s.py) checks: the kubernetes client's models are
generated from the Kubernetes OpenAPI schema. Reading a manifest into ``V1Pod`` keeps
only the fields the schema defines, as the types it gives them (objects, lists, maps,
integers, booleans, strings), and refuses an object without a required field (a
container without a name); writing it back and comparing with the original therefore
catches unknown, misspelt or misplaced fields and values of the wrong type. It does not
check what only the API server does: enumerations (``restartPolicy: Sometimes``),
quantity and name syntax, Pod Security admission, or that the priority class, taints and
namespace exist in the cluster.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient
from tests_execution_helpers import sample_context

from proseo.execution.kubernetes import JobStepPodOperator
from tests_k8s import k8s_roundtrip

from tests_paths import REPO

TEMPLATE = REPO / "deploy" / "kubernetes" / "processor-pod-template.yaml"


def _template() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text())


def test_the_processor_pod_template_is_a_pod_of_the_schema() -> None:
    template = _template()
    assert k8s_roundtrip(template) == template


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "tolerationz"), []),  # misspelt: dropped by the model
        (("spec", "terminationGracePeriodSeconds"), "60 s"),  # not an integer
        (("spec", "containers", 0, "resources"), {"requestz": {"cpu": "1"}}),  # misplaced
        (("metadata", "nodeSelector"), {"a": "b"}),  # a spec field under metadata
    ],
)
def test_the_round_trip_catches_what_the_schema_forbids(path: tuple[Any, ...], value: Any) -> None:
    broken = copy.deepcopy(_template())
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        back = k8s_roundtrip(broken)
    except (ValueError, TypeError):
        return  # refused outright
    assert back != broken


def test_a_container_without_a_name_is_refused() -> None:
    broken = copy.deepcopy(_template())
    del broken["spec"]["containers"][0]["name"]
    with pytest.raises(ValueError, match="name"):
        k8s_roundtrip(broken)


def test_a_processor_pod_made_from_the_template(tmp_path: Path) -> None:
    """The KPO lays proseo's settings over the facility's template (dry run, no cluster)."""
    ctx = dataclasses.replace(sample_context(backend="kubernetes"), pod_template_file=str(TEMPLATE))
    op = JobStepPodOperator(task_id="step_42", job_step_id=ctx.job_step_id, mission=ctx.mission)
    op.configure(ctx)
    pod = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(context=None, dry_run=True))
    assert k8s_roundtrip(pod) == pod
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
    assert k8s_roundtrip(pod) == pod
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
