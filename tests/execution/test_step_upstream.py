"""A step's upstream check: pending and failed upstream steps, and those it gave up waiting for."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from tests_execution_helpers import COLLECTION, plan, steps_of

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import InputQuery, InputQueryOutput, JobStep
from proseo.execution.steptask import UpstreamPending, check_upstream, failed_upstream
from proseo.planning import readiness


def test_upstream_pending_failed_and_given_up(s5p_cat: Catalog) -> None:
    plan(
        s5p_cat,
        "S5P",
        requested_classes=["L2__CLOUD_"],
        orbit_from=37300,
        orbit_to=37300,
        output_parameters=COLLECTION,
    )
    steps = steps_of(s5p_cat)
    (cloud,) = steps["L2__CLOUD_"]
    (l1b,) = steps["L1B_______"]
    with s5p_cat.session() as s:
        with pytest.raises(UpstreamPending, match=rf"upstream job step\(s\) \[{l1b}\] have not completed"):
            check_upstream(s, cloud)
        s.execute(update(JobStep).where(JobStep.id == l1b).values(state="FAILED"))
        assert failed_upstream(s, cloud) == [l1b]
        # The input timeout ran out with RUN_WITH_AVAILABLE: the sensor gave up on the L1B run.
        s.execute(update(JobStep).where(JobStep.id == l1b).values(state="PLANNED"))
        readiness.give_up_waiting(s, cloud, "input timeout after 60 s")
        given_up = s.scalars(
            select(InputQueryOutput.given_up_at)
            .join(InputQuery, InputQuery.id == InputQueryOutput.query_id)
            .where(InputQuery.job_step_id == cloud)
        ).all()
        assert given_up and all(at is not None for at in given_up)
        s.execute(update(JobStep).where(JobStep.id == l1b).values(state="FAILED"))
        assert failed_upstream(s, cloud) == []
        check_upstream(s, cloud)  # no longer waits for it
