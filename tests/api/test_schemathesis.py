"""Schemathesis against the published OpenAPI document, on the real app and catalogue: no 5xx.

What it covers: every operation of ``docs/openapi.json`` (the document clients read,
so generation follows what we publish), each with ``EXAMPLES`` generated requests,
schema-valid and schema-invalid ones, sent to the /proseo app mounted as Airflow's API
server mounts it, authenticated with an Airflow JWT of ``root`` (admin of every
mission, so requests pass authorisation and reach the code behind it). The catalogue
is SQLite with both sample missions, a night of SKY inputs and a planned order;
generated path parameters are, half of the time, replaced by names that exist
(``SKY``, ``night-1``, a real product, a real job step), so lookups succeed and the
code past them runs too. The only check is ``not_a_server_error``: whatever is sent,
the answer is a success or a 4xx, never a 5xx. Steering is off (there is no Airflow);
tests/api/test_steering.py covers it.

Runs in about 30-60 s on one core; hypothesis keeps failing examples in its database.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from sqlalchemy import select

from proseo.catalog import access
from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_order import JobStep
from proseo.catalog.model_product import Product
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR, REPO

EXAMPLES = 25
DAY = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def real_world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A SQLite catalogue with both missions, SKY inputs, a planned order; names that exist in it."""
    from proseo.devtools.generate import write_inputs

    root = tmp_path_factory.mktemp("schemathesis")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PROSEO_DATA", str(root / "data"))
        env.setenv("PROSEO_SCRATCH", str(root / "scratch"))
        path = root / "catalog.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
        catalog = Catalog(url, engine=make_engine(url))
        with catalog.session() as s:
            for name in ("s5p.yaml", "sky.yaml"):
                sync_mission(s, load_mission(MISSION_DIR / name))
            access.grant(s, "root", "*", "admin", by="test")
            mission = loaded_from_catalog(s, "SKY")
        files = write_inputs(
            mission, DAY, DAY + timedelta(hours=8), root / f"in-{uuid.uuid4().hex[:6]}", size=200
        )
        assert Ingestor(catalog, mission).run(files).ok
        with catalog.session() as s:
            spec = OrderSpec(
                identifier="night-1", requested_classes=["SRC_CAT"], start=DAY, stop=DAY + timedelta(hours=8)
            )
            orders.create_order(s, "SKY", spec)
        lifecycle.approve_order(catalog, "SKY", "night-1")
        lifecycle.plan_order(catalog, "SKY", "night-1")
        with catalog.session() as s:
            product = s.scalar(select(Product).order_by(Product.id).limit(1))
            assert product is not None
            names = {
                "mission": "SKY",
                "identifier": "night-1",
                "ref": str(product.id),
                "file_name": product.files[0].file_name,
                "step_id": s.scalar(select(JobStep.id).order_by(JobStep.id).limit(1)),
                "user": "root",
                "operation": "suspend",
            }
        yield {"catalog": catalog, "names": names}
        catalog.engine.dispose()


@pytest.fixture(scope="module")
def app(real_world: dict[str, Any], auth_manager: Any) -> Any:
    from fastapi import FastAPI

    from proseo.api.app import create_app

    outer = FastAPI()
    outer.mount("/proseo", create_app(catalog_url=real_world["catalog"].url, airflow_url=""))
    return outer


#: Names that exist in the catalogue, filled in by ``real_world`` before any case is generated.
NAMES: dict[str, Any] = {}

# Loaded when the module is collected: schemathesis's lazy fixture loader relies on a
# pytest attribute that pytest 9 no longer has; the app is given to each call instead.
schema = schemathesis.openapi.from_path(REPO / "docs" / "openapi.json")


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    """Half of the cases name things that exist, so the code past the lookups runs too."""
    if not isinstance(path_parameters, dict):  # none, or not a mapping in negative cases
        return st.just(path_parameters)
    known = {k: NAMES[k] for k in path_parameters if k in NAMES}
    if not known:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **known}])


@pytest.fixture(scope="module")
def names(real_world: dict[str, Any]) -> Iterator[None]:
    NAMES.update(real_world["names"])
    yield
    NAMES.clear()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: Any, app: Any, names: None, token_for: Any) -> None:
    response = case.call(app=app, headers={"Authorization": f"Bearer {token_for('root')}"})
    case.validate_response(response, checks=[not_a_server_error])
