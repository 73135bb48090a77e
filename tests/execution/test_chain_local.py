"""Planned orders of both missions run step by step on the local backend and are registered.

No Airflow here: each job step's specification is built from the catalogue, the real
wrapper runs the real sample processor, and the manifest is registered. Checks: every
planned output registered exactly once with checksums and provenance, lineage from the
last product back to the ingested inputs, idempotent re-registration, and a run that
made less than planned refused with the names of what is missing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests_execution_helpers import COLLECTION, DAY, ingest, orbit_inside, plan

from proseo.catalog.db import Catalog
from proseo.catalog.lineage import lineage
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import JobStep
from proseo.catalog.model_product import Product, ProductFile, Provenance
from proseo.catalog.register import RegistrationError, RunIdentity, register_manifest
from proseo.execution.jobspec import build_job_spec
from proseo.execution.local import run_wrapper
from proseo.wrapper.spec import Manifest

LOG = logging.getLogger("test")


def _run_all(catalog: Catalog) -> dict[int, Manifest]:
    with catalog.session() as s:
        steps = s.execute(select(JobStep.id).order_by(JobStep.depth.desc(), JobStep.id)).scalars().all()
    manifests = {}
    for step_id in steps:
        with catalog.session() as s:
            ctx = build_job_spec(s, step_id)
        manifest = run_wrapper(ctx, 1, log=LOG)
        assert manifest.status.value == "SUCCESS", (step_id, manifest.stage, manifest.reason)
        with catalog.session() as s:
            register_manifest(
                s, step_id, manifest, run=RunIdentity(dag_id="d", run_id="r", task_id=f"s{step_id}")
            )
        manifests[step_id] = manifest
    return manifests


def _lineage_types(catalog: Catalog, product_type: str) -> set[str]:
    """Product types in the whole lineage of the (first) product of ``product_type``."""
    with catalog.session() as s:
        root = s.scalar(
            select(Product.id).join(ProductClass).where(ProductClass.product_type == product_type)
        )
        assert root is not None
        return {node.product_type for node in lineage(s, root).nodes.values()} - {product_type}


def test_s5p_orbit_chain_runs_and_registers(s5p_cat: Catalog, tmp_path) -> None:
    ingest(s5p_cat, "S5P", DAY, DAY + timedelta(hours=6), tmp_path)
    orbit = orbit_inside(s5p_cat, DAY, DAY + timedelta(hours=6))
    plan(
        s5p_cat,
        "S5P",
        requested_classes=["L2__NO2___"],
        orbit_from=orbit,
        orbit_to=orbit,
        output_parameters=COLLECTION,
        processing_mode="OFFL",
    )
    manifests = _run_all(s5p_cat)
    assert len(manifests) == 3  # L1B, L2 cloud, L2 NO2
    with s5p_cat.session() as s:
        made = dict(
            s.execute(
                select(ProductClass.product_type, func.count())
                .join(Product)
                .where(Product.job_step_id.isnot(None))
                .group_by(ProductClass.product_type)
            ).all()
        )
        assert made == {
            "L1B_______": 1,
            "L1B_RA_BD3": 1,
            "L1B_RA_BD4": 1,
            "L1B_RA_BD6": 1,
            "L1B_IR_UVN": 1,
            "L2__CLOUD_": 1,
            "L2__NO2___": 1,
        }
        assert s.scalar(select(func.count()).select_from(Provenance)) == 7
        files = s.scalars(select(ProductFile).join(Product).where(Product.job_step_id.isnot(None))).all()
        assert len(files) == 7 and all(len(f.sha256) == 64 and len(f.md5) == 32 for f in files)
        steps = s.scalars(select(JobStep.state)).all()
        assert set(steps) == {"COMPLETED"}
        bands = s.scalars(
            select(Product).join(ProductClass).where(ProductClass.product_type == "L1B_RA_BD3")
        ).all()
        assert bands[0].enclosing_product_id is not None  # a component of its L1B product set
        # The processors report the orbit's swath, which is where its L0 look (their sidecars).
        (l0,) = s.scalars(
            select(Product)
            .join(ProductClass)
            .where(ProductClass.product_type == "L0__ODB_1_", Product.orbit_id.isnot(None))
            .where(Product.sensing_start == bands[0].sensing_start)
        ).all()
        produced = s.scalars(select(Product).where(Product.job_step_id.isnot(None))).all()
        assert l0.footprint is not None and {p.footprint for p in produced} == {l0.footprint}
    assert {"L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "AUX_MET_TP", "L1B_RA_BD4"} <= _lineage_types(
        s5p_cat, "L2__NO2___"
    )


def test_sky_night_chain_and_idempotent_registration(sky_cat: Catalog, tmp_path) -> None:
    ingest(sky_cat, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    plan(sky_cat, "SKY", requested_classes=["SRC_CAT"], start=DAY, stop=DAY + timedelta(days=1))
    manifests = _run_all(sky_cat)
    assert len(manifests) == 5
    assert {"RAW_EXP", "CAL_BIAS", "CAL_FLAT", "REF_CAT", "STACK_G", "CALEXP_R"} <= _lineage_types(
        sky_cat, "SRC_CAT"
    )
    with sky_cat.session() as s:
        before = s.scalar(select(func.count()).select_from(Product))
    # A retry after a crash between upload and registration: the same manifest again.
    step_id, manifest = next(iter(manifests.items()))
    with sky_cat.session() as s:
        again = register_manifest(s, step_id, manifest)
    assert again.new == 0 and again.product_ids
    with sky_cat.session() as s:
        assert s.scalar(select(func.count()).select_from(Product)) == before
    # A run that made less than planned is refused, naming what is missing.
    short = manifest.model_copy(update={"products": manifest.products[:0]})
    with (
        sky_cat.session() as s,
        pytest.raises(RegistrationError, match="produced less than planned; missing 1 of 1"),
    ):
        register_manifest(s, step_id, short)
