"""Registering what a job step made: products, files, provenance and lineage, once.

The wrapper uploads outputs under deterministic keys and returns a manifest; this
module turns the manifest into catalogue rows in one transaction. A product's
identity is computed from the plan (class, file class, mode, validity, the order's
planning time as generation time, configured processor, parameters), so a retry
after a crash between upload and registration finds the products already there and
adds nothing; a different file under the same identity is a conflict, never a
silent overwrite. A manifest that lacks a planned output fails the step with the
names of what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from proseo.catalog.db import utcnow
from proseo.catalog.footprint_column import validated
from proseo.catalog.geometry import Geometry
from proseo.catalog.model_mission import ConfiguredProcessor, Mission
from proseo.catalog.model_order import Job, JobStep, JobStepOutput, ProcessingOrder
from proseo.catalog.model_product import Product, ProductFile, ProductInput, ProductStatus, Provenance
from proseo.catalog.products import class_ids, product_identity, product_uuid
from proseo.errors import CatalogError, ConflictError, NotFoundError
from proseo.planning.step_states import StepOp, move_step
from proseo.planning.stepinputs import read_step_inputs
from proseo.wrapper.spec import Manifest, Status


class RegistrationError(CatalogError):
    """A manifest cannot be registered (missing outputs, a failed run); names the job step."""


@dataclass(frozen=True)
class RunIdentity:
    """Where a run happened in Airflow (for provenance); all optional outside Airflow."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    map_index: int | None = None


@dataclass(frozen=True)
class Registered:
    product_ids: list[int]
    new: int  # 0 on a repeated registration
    by_class: dict[str, list[int]]


def _step_context(
    session: Session, job_step_id: int
) -> tuple[JobStep, ProcessingOrder, str, ConfiguredProcessor]:
    step = session.get(JobStep, job_step_id, with_for_update=True)
    if step is None:
        raise NotFoundError(f"job step {job_step_id} does not exist")
    order = session.scalar(select(ProcessingOrder).join(Job).where(Job.id == step.job_id))
    assert order is not None
    mission = session.scalar(select(Mission.code).where(Mission.id == order.mission_id))
    processor = session.get(ConfiguredProcessor, step.configured_processor_id)
    assert mission is not None and processor is not None
    return step, order, mission, processor


def _lineage(session: Session, step: JobStep, manifest: Manifest, where: str) -> list[int]:
    """The products the run read: the manifest's staged inputs, checked against the step's bindings.

    A manifest of an older wrapper (schema 1) names none; then the step's bindings,
    read the way the job spec read them to stage the inputs, stand in for it.
    """
    inputs = read_step_inputs(session, [step.id], names=False)[step.id]
    bound = {pid for i in inputs for pid in i.consumed()}
    if manifest.inputs is None:
        return sorted(bound)
    staged: list[int] = []
    for value in manifest.inputs:
        try:
            staged.append(int(value))
        except (TypeError, ValueError):
            raise RegistrationError(
                f"{where}: the manifest names input {value!r}, which is no product id"
            ) from None
    strangers = sorted(set(staged) - bound)
    if strangers:
        raise RegistrationError(
            f"{where}: the manifest lists staged input product(s) {', '.join(map(str, strangers))} "
            "that the job step is not bound to"
        )
    return sorted(set(staged))


def register_manifest(
    session: Session,
    job_step_id: int,
    manifest: Manifest,
    *,
    facility_id: int | None = None,
    run: RunIdentity | None = None,
    job_order_text: str | None = None,
) -> Registered:
    """Register the outputs of a finished job step (idempotent); marks the step COMPLETED."""
    run = run or RunIdentity()
    step, order, mission, processor = _step_context(session, job_step_id)
    where = f"{mission}/{order.identifier} job step {job_step_id}"
    if manifest.status is Status.FAILED:
        raise RegistrationError(f"{where}: the run failed at {manifest.stage}: {manifest.reason}")
    if str(manifest.job_step_id) != str(job_step_id):
        raise RegistrationError(f"{where}: the manifest is for job step {manifest.job_step_id}")
    outputs = list(
        session.scalars(
            select(JobStepOutput)
            .where(JobStepOutput.job_step_id == step.id)
            .order_by(JobStepOutput.output_index)
        )
    )
    classes = class_ids(session, order.mission_id)
    type_of = {v: k for k, v in classes.items()}
    planned = {o.file_name: o for o in outputs}
    made = {p.file_name: p for p in manifest.products}
    missing = sorted(set(planned) - set(made))
    if missing:
        raise RegistrationError(
            f"{where}: the processor produced less than planned; missing {len(missing)} of "
            f"{len(planned)}: {', '.join(missing)}"
        )
    unplanned = sorted(set(made) - set(planned))
    if unplanned:
        raise RegistrationError(f"{where}: the manifest lists unplanned outputs: {', '.join(unplanned)}")
    generation = order.planned_at or utcnow()
    # Where the outputs were stored: the step's facility (the facility choice's), else the order's.
    facility = facility_id if facility_id is not None else step.facility_id or order.facility_id
    products: dict[str, Product] = {}
    fresh: list[Product] = []
    for name, out in planned.items():
        product_type = type_of[out.product_class_id]
        result = made[name]
        identity = product_identity(
            mission=mission,
            product_type=product_type,
            file_class=order.output_file_class,
            mode=order.processing_mode,
            start=result.start,
            stop=result.stop,
            generation=generation,
            configured_processor=processor.identifier,
            parameters=dict(result.parameters),
        )
        existing = session.scalar(select(Product).where(Product.identity == identity))
        if existing is not None:
            _same_files(existing, result.files, where)
            products[name] = existing
            continue
        # created_at (the column default, stamped at flush) is the PRIP's PublicationDate: the
        # subscription matcher looks back subscription_match.LATE_COMMIT (5 min) before its
        # high-water mark, so the registration must commit within that of the flush.
        product = Product(
            uuid=product_uuid(identity),
            identity=identity,
            mission_id=order.mission_id,
            product_class_id=classes[product_type],
            file_class=order.output_file_class,
            mode=order.processing_mode,
            sensing_start=result.start,
            sensing_stop=result.stop,
            generation_time=generation,
            production_type=order.production_type,
            status=ProductStatus.AVAILABLE.value,
            # Planned parameters win over what the processor reported (its identity).
            parameters={**result.metadata, **dict(result.parameters)},
            configured_processor_id=processor.id,
            job_step_id=step.id,
            footprint=_footprint(result.footprint),
        )
        product.files = [
            ProductFile(
                facility_id=facility,
                file_name=f.file_name,
                storage_url=f.url,
                size=f.size,
                md5=f.md5,
                sha256=f.sha256,
                xxh128=f.xxh128,
            )
            for f in result.files
        ]
        session.add(product)
        products[name] = product
        fresh.append(product)
    session.flush()
    inputs = _lineage(session, step, manifest, where)
    _link(session, step, fresh, processor, run, manifest, job_order_text, inputs)
    if fresh and inputs:
        # Its raw data was available when the latest raw data behind its inputs was.
        raw = session.scalar(select(func.max(Product.raw_available_at)).where(Product.id.in_(inputs)))
        for product in fresh:
            product.raw_available_at = raw
    for name, out in planned.items():
        out.product_id = products[name].id
        out.claim = None  # a product now, no longer a claim (planning/claims.py)
    move_step(step, StepOp.COMPLETE, reason=manifest.reason if manifest.status is Status.WARNING else None)
    step.completed_at = step.completed_at or utcnow()
    step.exit_code = manifest.exit_code
    by_class: dict[str, list[int]] = {}
    for name, p in products.items():
        by_class.setdefault(type_of[planned[name].product_class_id], []).append(p.id)
    return Registered(sorted(p.id for p in products.values()), len(fresh), by_class)


def _same_files(existing: Product, files: list[Any], where: str) -> None:
    have = {f.file_name: f.sha256 for f in existing.files}
    got = {f.file_name: f.sha256 for f in files}
    if have != got:
        raise ConflictError(f"{where}: product {existing.id} is registered with other files ({sorted(have)})")


def _link(
    session: Session,
    step: JobStep,
    products: list[Product],
    processor: ConfiguredProcessor,
    run: RunIdentity,
    manifest: Manifest,
    job_order_text: str | None,
    inputs: list[int],
) -> None:
    """Enclosing/component links, provenance and lineage edges of newly registered products.

    The products are new rows of this transaction, so they have no provenance or
    lineage yet: nothing needs to be looked up first.
    """
    if not products:
        return
    enclosing = next((p for p in products if p.product_class_id == step.product_class_id), None)
    configuration = {
        "processor": processor.processor_class,
        "version": processor.version,
        "configuration": processor.configuration,
        "exit_code": manifest.exit_code,
        "status": manifest.status.value,
        "job_order_url": manifest.job_order.url if manifest.job_order else None,
        "log_url": manifest.log_url,
    }
    for product in products:
        if enclosing is not None and product is not enclosing:
            product.enclosing_product_id = enclosing.id
        session.add(
            Provenance(
                product_id=product.id,
                job_step_id=step.id,
                configured_processor_id=processor.id,
                configuration=configuration,
                job_order=job_order_text,
                dag_id=run.dag_id,
                run_id=run.run_id,
                task_id=run.task_id,
                try_number=run.try_number,
                map_index=run.map_index,
            )
        )
        session.add_all(ProductInput(product_id=product.id, input_product_id=i) for i in inputs)


def _footprint(geojson: dict[str, Any] | None) -> Geometry | None:
    """The footprint a processor reported (the wrapper checked it; checked again here)."""
    return None if geojson is None else validated(Geometry.from_geojson(geojson))
