"""Test helpers: a job step's planned outputs, running it for real, registering it without a processor.

``register_planned`` writes bytes for every planned output under its storage key and
registers them with the real :func:`proseo.catalog.register.register_manifest`, as the
step task does after a run (products, files, provenance, lineage, the outputs linked to
their products, the step COMPLETED). Only the processor is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Facility, ProductClass
from proseo.catalog.model_order import Job, JobStep, JobStepOutput, ProcessingOrder
from proseo.catalog.register import RunIdentity, register_manifest
from proseo.execution import steptask
from proseo.execution.local import run_wrapper
from proseo.planning.stepinputs import read_step_inputs
from proseo.storage import open_storage
from proseo.wrapper.spec import Manifest, ManifestFile, ManifestProduct, Status

LOG = logging.getLogger("tests.run")


def planned_outputs(session: Any, job_step_id: int) -> list[dict[str, Any]]:
    """The step's planned outputs as plain dicts (product_type, file_name, start, stop, ...)."""
    rows = session.execute(
        select(JobStepOutput, ProductClass.product_type)
        .join(ProductClass, ProductClass.id == JobStepOutput.product_class_id)
        .where(JobStepOutput.job_step_id == job_step_id)
        .order_by(JobStepOutput.output_index)
    ).all()
    return [
        {
            "id": o.id,
            "index": o.output_index,
            "product_type": ptype,
            "file_name": o.file_name,
            "start": o.sensing_start,
            "stop": o.sensing_stop,
            "orbit": o.orbit,
            "parameters": dict(o.parameters or {}),
            "key": o.storage_key,
            "product_id": o.product_id,
        }
        for o, ptype in rows
    ]


def _facility(session: Any, job_step_id: int, name: str | None) -> Facility:
    """The named facility of the step's mission, else the order's, else the mission's default."""
    step = session.get(JobStep, job_step_id)
    assert step is not None, job_step_id
    order = session.get(ProcessingOrder, session.get(Job, step.job_id).order_id)
    query = select(Facility).where(Facility.mission_id == order.mission_id)
    if name is not None:
        query = query.where(Facility.name == name)
    elif order.facility_id is not None:
        query = query.where(Facility.id == order.facility_id)
    else:
        query = query.where(Facility.is_default)
    found = session.scalar(query)
    assert found is not None, (job_step_id, name)
    return found


def manifest_product(o: dict[str, Any], url: str, size: int, md5: str, sha256: str) -> ManifestProduct:
    """What the wrapper reports for a planned output (a dict of :func:`planned_outputs`) stored at ``url``."""
    return ManifestProduct(
        product_type=o["product_type"],
        file_name=o["file_name"],
        start=o["start"],
        stop=o["stop"],
        parameters=o["parameters"],
        files=[
            ManifestFile(file_name=o["file_name"], key=o["key"], url=url, size=size, md5=md5, sha256=sha256)
        ],
    )


def manifest_for(
    catalog: Catalog,
    job_step_id: int,
    *,
    facility: str | None = None,
    content: Callable[[dict[str, Any]], bytes] | None = None,
    status: Status = Status.SUCCESS,
) -> Manifest:
    """Store bytes for each planned output (``content``, default: its name) and return the
    manifest a successful run would return, staged inputs included."""
    with catalog.session() as s:
        fac = _facility(s, job_step_id, facility)
        outputs = planned_outputs(s, job_step_id)
        staged = [pid for i in read_step_inputs(s, [job_step_id])[job_step_id] for pid in i.consumed()]
    storage = open_storage(fac.storage_url, fac.storage_options)
    products = []
    for o in outputs:
        info = storage.put_bytes(content(o) if content else f"output {o['file_name']}".encode(), o["key"])
        products.append(manifest_product(o, info.url, info.size, info.md5, info.sha256))
    return Manifest(
        job_step_id=job_step_id,
        status=status,
        exit_code=0,
        inputs=list(dict.fromkeys(staged)),
        products=products,
    )


def run_step(catalog: Catalog, job_step_id: int, *, dag_id: str = "test") -> Manifest:
    """One job step as the local operator runs it: start, the real wrapper, register, roll up."""
    with catalog.session() as s:
        ctx = steptask.start_step(s, job_step_id, task_id="process", try_number=1)
    manifest = run_wrapper(ctx, 1, log=LOG)
    assert manifest.status.value == "SUCCESS", (job_step_id, manifest.stage, manifest.reason)
    with catalog.session() as s:
        steptask.complete_step(s, job_step_id, manifest, RunIdentity(dag_id=dag_id, run_id="r1"))
    return manifest


def register_planned(catalog: Catalog, job_step_id: int, *, facility: str | None = None) -> list[int]:
    """Register the step's planned outputs as a successful run would; their product ids."""
    manifest = manifest_for(catalog, job_step_id, facility=facility)
    with catalog.session() as s:
        fac_id = _facility(s, job_step_id, facility).id
        registered = register_manifest(
            s, job_step_id, manifest, facility_id=fac_id, run=RunIdentity(dag_id="test", run_id="r")
        )
    return registered.product_ids
