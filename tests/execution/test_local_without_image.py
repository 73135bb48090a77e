"""A processor that runs only on local facilities needs no container image.

The SKY sample without its Kubernetes facility and without any ``image`` loads, plans
and runs a job step through the local backend; with a Kubernetes facility the same
file is refused with the place of each version that lacks its image, and a pod is
never asked for without one.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests_execution_helpers import DAY, ingest, plan

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_order import JobStep
from proseo.catalog.register import RunIdentity, register_manifest
from proseo.errors import ConfigError
from proseo.execution.errors import ExecutionError
from proseo.execution.jobspec import build_job_spec
from proseo.execution.local import run_wrapper
from proseo.missions import load_mission

from tests_paths import MISSION_DIR, without_triggers

LOG = logging.getLogger("test")


def _without_images(text: str) -> str:
    stripped = re.sub(r"^ +image: .*\n", "", text, flags=re.MULTILINE)
    assert stripped.count("\n") == text.count("\n") - 4  # the four SKY processors
    return stripped


def _local_only(text: str) -> str:
    text = without_triggers(text)  # the facilities end the file then
    head, sep, tail = text.partition("  observatory_hpc:\n")  # the last facility, the file's end
    assert sep and "backend: kubernetes" in tail and "\n  " not in tail.replace("\n   ", "")
    return head


def test_a_kubernetes_facility_requires_every_image_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "sky.yaml"
    path.write_text(_without_images((MISSION_DIR / "sky.yaml").read_text()))
    with pytest.raises(ConfigError) as info:
        load_mission(path)
    issues = [str(i) for i in info.value.issues]
    assert len(issues) == 4
    assert all(
        "needs an 'image': facility 'observatory_hpc' runs job steps as Kubernetes pods" in i for i in issues
    )
    assert any(
        re.search(rf"{path}:\d+: processors\.CALIB\.versions\[0\]: version '1\.2\.0'", i) for i in issues
    )


def test_a_local_only_processor_without_image_runs(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    path = tmp_path / "sky.yaml"
    path.write_text(_local_only(_without_images((MISSION_DIR / "sky.yaml").read_text())))
    loaded = load_mission(path)
    assert list(loaded.config.facilities) == ["local"]
    assert all(v.image is None for p in loaded.config.processors.values() for v in p.versions)
    with catalog.session() as s:
        sync_mission(s, loaded)
    ingest(catalog, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    plan(catalog, "SKY", requested_classes=["CALEXP_G"], start=DAY, stop=DAY + timedelta(days=1))
    with catalog.session() as s:
        (step_id,) = s.scalars(select(JobStep.id)).all()
        ctx = build_job_spec(s, step_id)
    assert ctx.image is None and ctx.backend == "local"
    manifest = run_wrapper(ctx, 1, log=LOG)
    assert manifest.status.value == "SUCCESS", (manifest.stage, manifest.reason)
    with catalog.session() as s:
        register_manifest(s, step_id, manifest, run=RunIdentity(dag_id="d", run_id="r"))
        assert s.get(JobStep, step_id).state == "COMPLETED"

    # A pod is never asked for without an image (a revision stored before the check).
    from proseo.execution.kubernetes import pod_settings

    pod = dataclasses.replace(ctx, backend="kubernetes", namespace="sky-pipelines")
    with pytest.raises(ExecutionError, match="has no image to run as a pod"):
        pod_settings(pod)
