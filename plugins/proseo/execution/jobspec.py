"""From a planned job step in the catalogue to what a backend needs to run it.

:func:`build_job_spec` reads the job step, its order, the order's mission revision,
the configured processor and the step's facility (chosen at release when the order
named several, else the order's), and returns a :class:`StepContext`:
the wrapper's :class:`~proseo.wrapper.spec.JobSpec` (the fixed contract) plus what the
backends need around it (image, resources, namespace, pool, ...). The context is a
plain frozen dataclass that round-trips through JSON, so operators can take it as a
constructor argument and the wrapper never needs the catalogue.

This module imports no Airflow: it runs in the scheduler's DAG factory, in the CLI
and in tests alike.

Keys:

* inputs: a product file's key is its storage URL relative to the root of the facility
  that holds it. Files at the order's facility use that facility's storage; a product
  held only at another facility is read from that facility's storage, which becomes a
  second named entry of ``JobSpec.storages`` (storages are named after facilities).
* outputs: ``<product_type>/<yyyy>/<mm>/<dd>/<file_name>`` by sensing start, the scheme
  ingestion uses, so a retry writes the same keys.
* ``logs/<order>/<job_step_id>/processor.log`` and
  ``joborders/<order>/<job_step_id>/JobOrder.<job_step_id>.xml`` under the output storage.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.configs import revision_config_of
from proseo.catalog.model_mission import ConfiguredProcessor as ConfiguredProcessorRow
from proseo.catalog.model_mission import Facility as FacilityRow
from proseo.catalog.model_mission import Mission, MissionRevision
from proseo.catalog.model_mission import ProductClass as ProductClassRow
from proseo.catalog.model_order import Job, JobStep, JobStepOutput, ProcessingOrder
from proseo.catalog.model_product import Product, ProductFile, ProductStatus
from proseo.errors import NotFoundError, StorageError
from proseo.execution.errors import ExecutionError, InputsNotReady
from proseo.missions.models import (
    DEFAULT_CONFIGURATION,
    Configuration,
    KubernetesSettings,
    MissionConfig,
    ProcessorVersion,
    SlurmSettings,
)
from proseo.missions.types import quantity_value
from proseo.planning.stepinputs import read_step_inputs
from proseo.storage.keys import check_key, parse_root
from proseo.wrapper.spec import (
    ConfigFile,
    InputFile,
    JobSpec,
    OutputSpec,
    StorageRef,
    TaskSpec,
)

#: Time a run may take beyond the processor's ``max_run_time``: image pull, stage-in,
#: Job Order, checksums and upload. The wrapper enforces ``max_run_time`` on the
#: processor itself; this allowance bounds the whole run (pod deadline, local safety net).
STAGING_ALLOWANCE_S = 600.0


@dataclass(frozen=True)
class TaskResources:
    """One task of the processor and what it needs (Kubernetes quantities)."""

    name: str
    cpu: str
    memory: str


@dataclass(frozen=True)
class StepContext:
    """Everything a backend needs to run one job step."""

    spec: JobSpec
    mission: str
    order_identifier: str
    order_id: int
    priority: int
    facility: str
    backend: str
    scratch_path: str
    image: str | None  # None for a processor without one (local facilities need none)
    tasks: tuple[TaskResources, ...]
    min_disk: str
    max_run_time_s: float
    pool: str
    pool_size: int  # slots of the pool: the facility's max_concurrent_job_steps
    namespace: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    pod_template_file: str | None = None  # the facility's pod template (backend kubernetes)
    slurm: SlurmSettings | None = None  # the facility's Slurm settings (backend slurm)
    try_number: int = 1

    # --- derived values ---------------------------------------------------------

    @property
    def job_step_id(self) -> int:
        return int(self.spec.job_step_id)

    @property
    def cpu_request(self) -> str:
        """Sum of the tasks' cpu (the tasks of one run share the container)."""
        return sum_cpu(t.cpu for t in self.tasks)

    @property
    def memory_request(self) -> str:
        """Sum of the tasks' memory."""
        return sum_memory(t.memory for t in self.tasks)

    @property
    def deadline_s(self) -> int:
        """Upper bound for the whole run: processor time plus the staging allowance."""
        return math.ceil(self.max_run_time_s + STAGING_ALLOWANCE_S)

    @property
    def log_url(self) -> str:
        """Where the wrapper keeps the processor log (success or failure)."""
        root = parse_root(self.spec.storages[self.spec.output_storage].url)
        return root.join(self.spec.log_key)

    def scratch_dir(self, try_number: int | None = None) -> PurePosixPath:
        """``<scratch_path>/<mission>/<order>/<job_step_id>/try-<n>`` (local backend)."""
        n = self.try_number if try_number is None else try_number
        return PurePosixPath(self.scratch_path, self.mission, self.order_identifier) / (
            f"{self.job_step_id}/try-{n}"
        )

    def task_defaults(self) -> dict[str, Any]:
        """Suggested operator arguments: the facility's pool and the order's priority."""
        return {"pool": self.pool, "priority_weight": self.priority}


# --- quantities ------------------------------------------------------------------------


def sum_cpu(values: Iterable[str]) -> str:
    """``["2", "500m"]`` -> ``"2500m"``; whole cores stay whole (``"6"``)."""
    millis = round(sum(quantity_value(v) for v in values) * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_DECIMAL = (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))


def sum_memory(values: Iterable[str]) -> str:
    """``["8Gi", "16Gi"]`` -> ``"24Gi"``; the largest exact unit, else bytes."""
    total = round(sum(quantity_value(v) for v in values))
    for suffix, size in (*_BINARY, *_DECIMAL):
        if total and total % size == 0:
            return f"{total // size}{suffix}"
    return str(total)


# --- building ----------------------------------------------------------------------------


def log_key(order_identifier: str, job_step_id: int) -> str:
    return check_key(f"logs/{order_identifier}/{job_step_id}/processor.log")


def job_order_key(order_identifier: str, job_step_id: int) -> str:
    return check_key(f"joborders/{order_identifier}/{job_step_id}/JobOrder.{job_step_id}.xml")


def pool_name(mission: str, facility: str) -> str:
    return f"proseo__{mission}__{facility}".lower()


def build_job_spec(session: Session, job_step_id: int, *, try_number: int = 1) -> StepContext:
    """The step context of one planned job step, read from the catalogue."""
    step = session.get(JobStep, job_step_id)
    if step is None:
        raise NotFoundError(f"job step {job_step_id} does not exist")
    job = session.get(Job, step.job_id)
    assert job is not None
    order = session.get(ProcessingOrder, job.order_id)
    assert order is not None
    mission = session.get(Mission, order.mission_id)
    revision = session.get(MissionRevision, order.revision_id)
    assert mission is not None and revision is not None
    where = f"{mission.code}/{order.identifier}"

    def fail(message: str) -> ExecutionError:
        return ExecutionError(message, job_step_id=step.id, order=where)

    cfg = revision_config_of(revision)  # validated once per revision and process
    cp = session.get(ConfiguredProcessorRow, step.configured_processor_id)
    assert cp is not None
    version, configuration = _processor(cfg, cp, fail)

    facilities = {
        f.id: f for f in session.scalars(select(FacilityRow).where(FacilityRow.mission_id == mission.id))
    }
    facility = _step_facility(step, order, facilities, fail)
    kube = KubernetesSettings.model_validate(facility.kubernetes) if facility.kubernetes else None

    storages: dict[str, StorageRef] = {
        facility.name: StorageRef(url=facility.storage_url, options=dict(facility.storage_options or {}))
    }
    inputs = _inputs(session, step, facility, facilities, storages, where)
    types = dict(
        session.execute(
            select(ProductClassRow.id, ProductClassRow.product_type).where(
                ProductClassRow.mission_id == mission.id
            )
        ).all()
    )
    outputs = [
        OutputSpec(
            product_type=types[o.product_class_id],
            file_name=o.file_name,
            key=o.storage_key,
            start=o.sensing_start,
            stop=o.sensing_stop,
            parameters=dict(o.parameters or {}),
        )
        for o in session.scalars(
            select(JobStepOutput)
            .where(JobStepOutput.job_step_id == step.id)
            .order_by(JobStepOutput.output_index)
        )
    ]
    if not outputs:
        raise fail("the job step has no planned outputs")

    spec = JobSpec(
        job_step_id=step.id,
        mission=mission.code,
        processor=cp.processor_class,
        version=cp.version,
        configuration=cp.configuration,
        mode=step.processing_mode,
        file_class=order.output_file_class,
        tasks=[TaskSpec(name=t.name, version=t.version or version.version) for t in version.tasks],
        command=list(version.command),
        dialect=version.dialect,
        stdout_log_level=version.stdout_log_level,
        processing_station=facility.name,
        sensing_start=step.start_time,
        sensing_stop=step.stop_time,
        # The order's values override the configuration's.
        dynamic_parameters={**configuration.dynamic_parameters, **(order.dynamic_parameters or {})},
        config_files=[
            ConfigFile(file_type=c.file_type, version=c.version, path=c.path)
            for c in configuration.config_files
        ],
        inputs=inputs,
        outputs=outputs,
        storages=storages,
        output_storage=facility.name,
        log_key=log_key(order.identifier, step.id),
        job_order_key=job_order_key(order.identifier, step.id),
        max_run_time_s=version.max_run_time.total_seconds(),
    )
    return StepContext(
        spec=spec,
        mission=mission.code,
        order_identifier=order.identifier,
        order_id=order.id,
        priority=order.priority,
        facility=facility.name,
        backend=facility.backend,
        scratch_path=facility.scratch_path,
        image=version.image,
        tasks=tuple(TaskResources(t.name, t.cpu, t.memory) for t in version.tasks),
        min_disk=version.min_disk,
        max_run_time_s=version.max_run_time.total_seconds(),
        pool=pool_name(mission.code, facility.name),
        pool_size=facility.max_concurrent_job_steps,
        namespace=kube.namespace if kube else None,
        node_selector=dict(kube.node_selector) if kube else {},
        service_account=kube.service_account if kube else None,
        image_pull_secrets=tuple(kube.image_pull_secrets) if kube else (),
        pod_template_file=kube.pod_template_file if kube else None,
        slurm=SlurmSettings.model_validate(facility.slurm) if facility.slurm else None,
        try_number=try_number,
    )


def _processor(
    cfg: MissionConfig, cp: ConfiguredProcessorRow, fail: Callable[[str], ExecutionError]
) -> tuple[ProcessorVersion, Configuration]:
    proc = cfg.processors.get(cp.processor_class)
    if proc is None:
        raise fail(f"processor {cp.processor_class} is not in the order's mission revision")
    version = next((v for v in proc.versions if v.version == cp.version), None)
    if version is None:
        raise fail(f"processor {cp.processor_class} has no version {cp.version} in the order's revision")
    configuration = next((c for c in proc.configurations if c.version == cp.configuration), None)
    if configuration is None:
        if cp.configuration != DEFAULT_CONFIGURATION or proc.configurations:
            raise fail(f"processor {cp.processor_class} has no configuration {cp.configuration}")
        configuration = Configuration(version=DEFAULT_CONFIGURATION)
    return version, configuration


def _step_facility(
    step: JobStep,
    order: ProcessingOrder,
    facilities: dict[int, FacilityRow],
    fail: Callable[[str], ExecutionError],
) -> FacilityRow:
    """The step's own facility (the facility choice's), else the order's, else the default."""
    chosen = step.facility_id if step.facility_id is not None else order.facility_id
    if chosen is not None:
        facility = facilities.get(chosen)
    else:
        facility = next((f for f in facilities.values() if f.is_default and not f.retired), None)
    if facility is None:
        raise fail("the order names no facility and the mission has no default facility")
    if facility.retired:
        raise fail(f"facility {facility.name} is retired")
    return facility


def _inputs(
    session: Session,
    step: JobStep,
    facility: FacilityRow,
    facilities: dict[int, FacilityRow],
    storages: dict[str, StorageRef],
    where: str,
) -> list[InputFile]:
    """The files to stage: every product the step's inputs are bound to, read the one way
    (:func:`proseo.planning.stepinputs.read_step_inputs`), existing products first (by
    validity), then the outputs of upstream steps, query by query."""
    inputs = read_step_inputs(session, [step.id])[step.id]
    product_ids: list[int] = []
    for i in inputs:
        if i.mandatory and not i.satisfied:
            raise InputsNotReady(
                f"mandatory input {i.source_type} is not satisfied ({i.rule_text}); the step waits for input",
                job_step_id=step.id,
                product_type=i.source_type,
                order=where,
            )
        for o in i.pending():
            raise InputsNotReady(
                f"input {o.product_type} is output {o.output_index} ({o.file_name}) of upstream job step "
                f"{o.job_step_id} ({o.order}), which has not registered it yet (run that step first)",
                job_step_id=step.id,
                product_type=o.product_type,
                upstream_step_id=o.job_step_id,
                order=where,
            )
        product_ids.extend(i.consumed())
    product_ids = list(dict.fromkeys(product_ids))
    if not product_ids:
        return []
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(product_ids)))}
    unavailable = [pid for pid in product_ids if products[pid].status != ProductStatus.AVAILABLE.value]
    if unavailable:
        raise ExecutionError(
            f"input product(s) {', '.join(map(str, unavailable))} are not AVAILABLE "
            f"({', '.join(sorted({products[p].status for p in unavailable}))})",
            job_step_id=step.id,
            order=where,
        )

    files: dict[int, dict[int, list[ProductFile]]] = defaultdict(lambda: defaultdict(list))
    for f in session.scalars(
        select(ProductFile).where(ProductFile.product_id.in_(product_ids)).order_by(ProductFile.id)
    ):
        files[f.product_id][f.facility_id].append(f)

    out: list[InputFile] = []
    seen: set[tuple[str, str]] = set()
    for pid in product_ids:
        product = products[pid]
        ptype = product.product_class.product_type
        held = files.get(pid, {})
        if not held:
            raise ExecutionError(
                f"input product {pid} ({ptype}) has no stored file (status {product.status})",
                job_step_id=step.id,
                order=where,
            )
        if facility.id in held:
            at = facility
        else:  # only elsewhere: read it from that facility's storage (active facilities first)
            at = min((facilities[fid] for fid in held), key=lambda f: (f.retired, f.id))
            storages.setdefault(
                at.name, StorageRef(url=at.storage_url, options=dict(at.storage_options or {}))
            )
        for f in held[at.id]:
            key = _relative_key(f.storage_url, at, step.id, where)
            if (at.name, key) in seen:
                continue
            seen.add((at.name, key))
            out.append(
                InputFile(
                    product_id=pid,
                    product_type=ptype,
                    file_name=f.file_name,
                    storage=at.name,
                    key=key,
                    size=f.size,
                    md5=f.md5,
                    sha256=f.sha256,
                    xxh128=f.xxh128,
                    start=product.sensing_start,
                    stop=product.sensing_stop,
                )
            )
    return out


def _relative_key(url: str, facility: FacilityRow, job_step_id: int, where: str) -> str:
    try:
        return parse_root(facility.storage_url).key_of(url)
    except StorageError as exc:
        raise ExecutionError(
            f"product file of facility {facility.name}: {exc}", job_step_id=job_step_id, order=where
        ) from exc
