"""A job step that crashes after uploading and before registering is re-run safely.

The first try runs the real wrapper (outputs uploaded) and dies before registration;
the retry runs the step again: it writes the same keys, returns the same manifest and
registers each product exactly once. A third registration of the same manifest (a
retry of the registration alone) adds nothing either.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select
from tests_execution_helpers import DAY, ingest, plan

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import JobStep
from proseo.catalog.model_product import Product, ProductFile
from proseo.catalog.register import register_manifest
from proseo.execution.jobspec import build_job_spec
from proseo.execution.local import run_wrapper
from proseo.storage import open_storage

LOG = logging.getLogger("test")


def test_retry_after_crash_between_upload_and_registration(sky_cat: Catalog, tmp_path) -> None:
    ingest(sky_cat, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    plan(sky_cat, "SKY", requested_classes=["CALEXP_G"], start=DAY, stop=DAY + timedelta(days=1))
    with sky_cat.session() as s:
        (step_id,) = s.scalars(select(JobStep.id)).all()
        first_ctx = build_job_spec(s, step_id, try_number=1)
    first = run_wrapper(first_ctx, 1, log=LOG)
    assert first.status.value == "SUCCESS"
    store = open_storage(first_ctx.spec.storages[first_ctx.spec.output_storage].url)
    keys_after_crash = sorted(store.list())
    # ... the worker dies here: nothing registered.
    with sky_cat.session() as s:
        assert s.scalar(select(func.count()).select_from(Product).where(Product.job_step_id == step_id)) == 0

    with sky_cat.session() as s:
        retry_ctx = build_job_spec(s, step_id, try_number=2)
    second = run_wrapper(retry_ctx, 2, log=LOG)
    assert second == first  # same keys, same checksums, same manifest
    assert sorted(store.list()) == keys_after_crash  # overwritten in place, nothing new
    with sky_cat.session() as s:
        registered = register_manifest(s, step_id, second)
    with sky_cat.session() as s:
        again = register_manifest(s, step_id, second)
    assert registered.new == 1 and again.new == 0 and again.product_ids == registered.product_ids
    with sky_cat.session() as s:
        assert s.scalar(select(func.count()).select_from(Product).where(Product.job_step_id == step_id)) == 1
        urls = s.scalars(
            select(ProductFile.storage_url).join(Product).where(Product.job_step_id == step_id)
        ).all()
        assert urls == [second.products[0].files[0].url]
