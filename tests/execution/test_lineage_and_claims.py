"""Lineage is what ran, and a product two orders need is made once.

Steps run for real here: the job spec from the catalogue, the real wrapper and sample
processors, the manifest registered (no Airflow).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from tests_execution_helpers import COLLECTION, DAY, ingest, orbit_inside, plan, steps_of

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Facility, ProductClass
from proseo.catalog.model_order import JobStepOutput, OrderEvent, ProcessingOrder
from proseo.catalog.model_product import Product, ProductFile, ProductInput
from proseo.execution import steptask
from proseo.planning import lifecycle, orders
from proseo.planning.claims import ClaimConflict
from proseo.planning.stepinputs import read_step_inputs
from proseo.storage import open_storage
from proseo.wrapper.spec import Manifest

from tests_registration import run_step

LOG = logging.getLogger("test")


def _run(catalog: Catalog, step_id: int) -> Manifest:
    return run_step(catalog, step_id)


def _inputs_of(catalog: Catalog, product_id: int) -> set[int]:
    with catalog.session() as s:
        return set(
            s.scalars(select(ProductInput.input_product_id).where(ProductInput.product_id == product_id))
        )


def test_lineage_lists_only_the_products_the_run_staged(sky_cat: Catalog, tmp_path: Path) -> None:
    ingest(sky_cat, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    plan(sky_cat, "SKY", requested_classes=["STACK_G"], start=DAY, stop=DAY + timedelta(days=1))
    steps = steps_of(sky_cat)
    (calexp,), (stack,) = steps["CALEXP_G"], steps["STACK_G"]
    _run(sky_cat, calexp)
    with sky_cat.session() as s:
        (made,) = s.scalars(
            select(Product)
            .join(ProductClass)
            .where(Product.job_step_id == calexp, ProductClass.product_type == "CALEXP_G")
        ).all()
        # The upstream step also has a second CALEXP_G in the catalogue, not the planned file
        # (registered by hand after the run, say): the stack never reads it.
        stray = Product(
            uuid=str(uuid.uuid4()),
            identity="stray-" + uuid.uuid4().hex,
            mission_id=made.mission_id,
            product_class_id=made.product_class_id,
            file_class=made.file_class,
            mode=made.mode,
            sensing_start=made.sensing_start,
            sensing_stop=made.sensing_stop,
            generation_time=made.generation_time + timedelta(hours=1),
            parameters=dict(made.parameters),
            configured_processor_id=made.configured_processor_id,
            job_step_id=calexp,
        )
        facility = s.scalar(
            select(Facility).where(Facility.mission_id == made.mission_id, Facility.is_default)
        )
        info = open_storage(facility.storage_url).put_bytes(b"not what was planned", "CALEXP_G/stray.fits")
        stray.files.append(
            ProductFile(
                facility_id=facility.id,
                file_name="stray.fits",
                storage_url=info.url,
                size=info.size,
                md5=info.md5,
                sha256=info.sha256,
            )
        )
        s.add(stray)
        s.flush()
        made_id, stray_id = made.id, stray.id
        calexp_inputs = {p for i in read_step_inputs(s, [stack])[stack] for p in i.consumed()}
    assert made_id in calexp_inputs and stray_id not in calexp_inputs
    manifest = _run(sky_cat, stack)
    assert made_id in set(map(int, manifest.inputs or [])) and stray_id not in set(
        map(int, manifest.inputs or [])
    )
    with sky_cat.session() as s:
        (stacked,) = s.scalars(select(Product.id).where(Product.job_step_id == stack)).all()
    lineage = _inputs_of(sky_cat, stacked)
    assert made_id in lineage and stray_id not in lineage
    assert lineage == {int(i) for i in manifest.inputs or []}  # exactly what the run staged
    # Raw availability follows lineage: an ingested product's catalogue time, a produced
    # one's latest over what it read (the stack's: the latest of the calibrated exposures').
    with sky_cat.session() as s:
        raw = s.get(Product, stacked).raw_available_at
        calexp = s.get(Product, made_id)
        exposures = s.scalars(
            select(Product)
            .join(ProductInput, ProductInput.input_product_id == Product.id)
            .where(ProductInput.product_id == made_id)
        ).all()
        assert all(e.raw_available_at == e.created_at for e in exposures if e.job_step_id is None)
        assert calexp.raw_available_at == max(e.raw_available_at for e in exposures)
        assert raw == calexp.raw_available_at


def _two_orders(catalog: Catalog, tmp_path: Path) -> int:
    """Inputs of one orbit; orders 'cloud' and 'ozone' both need that orbit's L1B run."""
    start, stop = DAY, DAY + timedelta(hours=6)
    ingest(catalog, "S5P", start, stop, tmp_path)
    orbit = orbit_inside(catalog, start, stop)
    for identifier, product in (("cloud", "L2__CLOUD_"), ("ozone", "L2__O3____")):
        plan(
            catalog,
            "S5P",
            identifier,
            requested_classes=[product],
            orbit_from=orbit,
            orbit_to=orbit,
            output_parameters=COLLECTION,
        )
    return orbit


def _l1b_products(catalog: Catalog) -> int:
    with catalog.session() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(Product)
                .join(ProductClass)
                .where(ProductClass.product_type == "L1B_______")
            )
            or 0
        )


def _check_storage(catalog: Catalog) -> None:
    """Every registered file's bytes are what the catalogue says."""
    with catalog.session() as s:
        for f in s.scalars(select(ProductFile)):
            path = Path(f.storage_url.removeprefix("file://"))
            assert open_storage(f"file://{path.parent}").checksum(path.name).sha256 == f.sha256, f.storage_url


def test_orders_planned_apart_and_released_together_make_the_l1b_once(
    s5p_cat: Catalog, tmp_path: Path
) -> None:
    _two_orders(s5p_cat, tmp_path)
    # Both plans make the orbit's L1B: neither was released when the other was planned.
    assert len(steps_of(s5p_cat, "cloud")["L1B_______"]) == len(steps_of(s5p_cat, "ozone")["L1B_______"]) == 1
    lifecycle.release_order(s5p_cat, "S5P", "cloud")
    lifecycle.release_order(s5p_cat, "S5P", "ozone")
    # The second release found the L1B claimed and planned the order again: it waits for it.
    ozone = steps_of(s5p_cat, "ozone")
    assert "L1B_______" not in ozone and len(ozone["L2__O3____"]) == 1
    with s5p_cat.session() as s:
        order = orders.get_order(s, "S5P", "ozone")
        assert (
            order.state == "RELEASED" and order.dag_blueprint["levels"][0]["waiting"] == ozone["L2__O3____"]
        )
        replan = s.scalar(select(OrderEvent.message).where(OrderEvent.operation == "replan"))
        assert replan and "S5P/cloud" in replan
        (bound,) = {
            o.order
            for i in read_step_inputs(s, ozone["L2__O3____"])[ozone["L2__O3____"][0]]
            for o in i.outputs
        }
        assert bound == "S5P/cloud"
    # Run both: the ozone step cannot start before the cloud order made the L1B.
    with s5p_cat.session() as s, pytest.raises(steptask.UpstreamPending):
        steptask.check_upstream(s, ozone["L2__O3____"][0])
    for step in [*steps_of(s5p_cat, "cloud")["L1B_______"], *steps_of(s5p_cat, "cloud")["L2__CLOUD_"]]:
        _run(s5p_cat, step)
    (o3,) = ozone["L2__O3____"]
    manifest = _run(s5p_cat, o3)
    assert _l1b_products(s5p_cat) == 1
    with s5p_cat.session() as s:
        assert {orders.get_order(s, "S5P", n).state for n in ("cloud", "ozone")} == {"COMPLETED"}
        (l1b_run,) = steps_of(s5p_cat, "cloud")["L1B_______"]
        bands = set(s.scalars(select(JobStepOutput.product_id).where(JobStepOutput.job_step_id == l1b_run)))
        assert bands & {int(i) for i in manifest.inputs or []}  # the ozone run read the cloud order's bands
        assert (
            s.scalar(select(func.count()).select_from(JobStepOutput).where(JobStepOutput.claim.isnot(None)))
            == 0
        )
    _check_storage(s5p_cat)


def test_an_order_planned_after_a_release_waits_for_its_products(s5p_cat: Catalog, tmp_path: Path) -> None:
    start, stop = DAY, DAY + timedelta(hours=6)
    ingest(s5p_cat, "S5P", start, stop, tmp_path)
    orbit = orbit_inside(s5p_cat, start, stop)
    common = {"orbit_from": orbit, "orbit_to": orbit, "output_parameters": COLLECTION}
    plan(s5p_cat, "S5P", "cloud", requested_classes=["L2__CLOUD_"], **common)
    lifecycle.release_order(s5p_cat, "S5P", "cloud")
    plan(s5p_cat, "S5P", "ozone", requested_classes=["L2__O3____"], **common)
    assert set(steps_of(s5p_cat, "ozone")) == {"L2__O3____"}  # bound to the cloud order's L1B
    # Requested products another released order makes refuse the release, naming it.
    plan(s5p_cat, "S5P", "cloud-again", requested_classes=["L2__CLOUD_"], **common)
    with pytest.raises(ClaimConflict, match="S5P/cloud"):
        lifecycle.release_order(s5p_cat, "S5P", "cloud-again")
    with s5p_cat.session() as s:
        assert orders.get_order(s, "S5P", "cloud-again").state == "PLANNED"
    # Cancelling the cloud order gives its claims up; the ozone step then knows it will not come.
    lifecycle.cancel_order(s5p_cat, "S5P", "cloud")
    (o3,) = steps_of(s5p_cat, "ozone")["L2__O3____"]
    (l1b,) = steps_of(s5p_cat, "cloud")["L1B_______"]
    with s5p_cat.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(JobStepOutput).where(JobStepOutput.claim.isnot(None)))
            == 0
        )
        assert steptask.failed_upstream(s, o3) == [l1b]


def test_one_claim_per_product_in_the_catalogue(s5p_cat: Catalog, tmp_path: Path) -> None:
    _two_orders(s5p_cat, tmp_path)
    lifecycle.release_order(s5p_cat, "S5P", "cloud")
    (l1b,) = steps_of(s5p_cat, "ozone")["L1B_______"]  # still planned: nothing claimed
    with s5p_cat.session() as s:
        key = s.scalar(select(JobStepOutput.product_key).where(JobStepOutput.job_step_id == l1b).limit(1))
        claimed = s.scalar(select(func.count()).select_from(JobStepOutput).where(JobStepOutput.claim == key))
        assert claimed == 1
    with pytest.raises(IntegrityError), s5p_cat.session() as s:
        s.execute(
            update(JobStepOutput)
            .where(JobStepOutput.job_step_id == l1b)
            .values(claim=JobStepOutput.product_key)
        )
    with s5p_cat.session() as s:
        assert Counter(s.scalars(select(ProcessingOrder.state))) == {"RELEASED": 1, "PLANNED": 1}
