"""Upgrading a catalogue made at schema 0004 in place, and running one of its orders afterwards.

``fixtures/catalogue_0004.json`` was made by the code of schema 0004
(``fixtures/make_catalogue_0004.py``): SKY with two nights of exposures, ``night-done``
run to completion by the real wrapper, ``night-released`` planned and released but not
run, ``night-given-up`` waiting for exposures that never came, one step given up. The
test loads those rows into a catalogue at 0004 (on SQLite and PostgreSQL), upgrades it to
the head, checks that every planned output, binding and given-up binding became rows,
puts the delivered files back on storage, and runs ``night-released`` to completion.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xxhash
from sqlalchemy import MetaData, func, select, text

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryOutput,
    InputQueryProduct,
    Job,
    JobStep,
    JobStepOutput,
    ProcessingOrder,
)
from proseo.catalog.model_product import Product, ProductFile, ProductInput
from proseo.catalog.schema import current_revision, downgrade, head_revision, upgrade
from proseo.devtools.generate import content
from proseo.execution import steptask
from proseo.planning import orders
from proseo.storage import open_storage

from tests_registration import run_step

FIXTURE = Path(__file__).with_name("fixtures") / "catalogue_0004.json"
LOG = logging.getLogger("tests.upgrade")


def _value(value: Any, data: Path, scratch: Path) -> Any:
    if isinstance(value, dict) and "$dt" in value:
        return datetime.fromisoformat(value["$dt"]).astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, dict) and "$json" in value:
        raw = json.dumps(value["$json"]).replace("${DATA}", str(data)).replace("${SCRATCH}", str(scratch))
        return json.loads(raw)
    if isinstance(value, str):
        return value.replace("${DATA}", str(data)).replace("${SCRATCH}", str(scratch))
    return value


def _load_0004(catalog: Catalog, data: Path, scratch: Path) -> dict[str, list[dict[str, Any]]]:
    """The fixture's rows in a catalogue migrated to 0004 (downgraded from the head)."""
    engine = catalog.engine
    downgrade(engine, "0004")
    assert current_revision(engine) == "0004"
    tables = json.loads(FIXTURE.read_text())["tables"]
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            rows = [{k: _value(v, data, scratch) for k, v in r.items()} for r in tables.get(table.name, [])]
            if rows:
                conn.execute(table.insert(), rows)
        if engine.dialect.name == "postgresql":
            for table in meta.sorted_tables:
                if "id" in table.c and tables.get(table.name):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT max(id) FROM {table.name}))"
                        )
                    )
    return tables


def _steps(catalog: Catalog, identifier: str) -> list[int]:
    with catalog.session() as s:
        return list(
            s.scalars(
                select(JobStep.id)
                .join(Job, Job.id == JobStep.job_id)
                .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
                .where(ProcessingOrder.identifier == identifier)
                .order_by(JobStep.depth.desc(), JobStep.id)
            )
        )


def test_a_0004_catalogue_upgrades_in_place_and_its_orders_run(
    catalog: Catalog, data_dirs: dict[str, Path]
) -> None:
    data, scratch = data_dirs["data"], data_dirs["scratch"]
    old = _load_0004(catalog, data, scratch)
    upgrade(catalog.engine)
    assert current_revision(catalog.engine) == head_revision()

    planned = {r["id"]: r["planned_outputs"]["$json"] for r in old["job_step"]}
    explanations = {r["id"]: r["explanation"]["$json"] for r in old["input_query"]}
    with catalog.session() as s:
        # Every planned output is a row, in order, under the storage key of its class and start.
        outputs = s.execute(
            select(JobStepOutput, ProductClass.product_type).join(
                ProductClass, ProductClass.id == JobStepOutput.product_class_id
            )
        ).all()
        assert len(outputs) == sum(len(p) for p in planned.values())
        for o, ptype in outputs:
            was = planned[o.job_step_id][o.output_index]
            assert (ptype, o.file_name) == (was["product_type"], was["file_name"])
            assert o.storage_key == f"{ptype}/{o.sensing_start:%Y/%m/%d}/{o.file_name}"
        # Outputs of the finished order point at their products; the released order claims its own.
        done, released = set(_steps(catalog, "night-done")), set(_steps(catalog, "night-released"))
        for o, _ in outputs:
            if o.job_step_id in done:
                assert o.product_id is not None and o.claim is None
                assert s.get(Product, o.product_id).job_step_id == o.job_step_id
            if o.job_step_id in released:
                assert o.product_id is None and o.claim == o.product_key
        # Upstream bindings and given-up bindings are rows; explanations are text again.
        chosen = sum(1 for e in explanations.values() for c in e.get("chosen", []) if "job_step" in c)
        bindings = s.scalars(select(InputQueryOutput)).all()
        assert sum(1 for b in bindings if b.given_up_at is None) == chosen
        given_up = {b.query_id for b in bindings if b.given_up_at is not None}
        assert given_up == {q for q, e in explanations.items() if e.get("given_up_upstream")}
        # Rows that reference altered tables survive (SQLite rebuilds a table to alter it).
        assert s.scalar(select(func.count()).select_from(InputQueryProduct)) == len(
            old["input_query_product"]
        )
        assert s.scalar(select(func.count()).select_from(ProductInput)) == len(old["product_input"])
        for q in s.scalars(select(InputQuery)):
            assert q.explanation == explanations[q.id]["text"] and q.origin == explanations[q.id]["origin"]
        # The given-up catalogue step no longer waits for the steps it gave up on.
        (gave_up,) = {s.get(InputQuery, q).job_step_id for q in given_up}
        assert steptask.upstream(s, gave_up) == []

    # The delivered exposures back on storage (their bytes follow from their names). They
    # were catalogued before XXH3-128 was recorded (0007), so stage-in verifies SHA-256.
    with catalog.session() as s:
        delivered = s.scalars(select(ProductFile).join(Product).where(Product.job_step_id.is_(None))).all()
        assert delivered and all(f.xxh128 is None for f in delivered)
        for f in delivered:
            path = Path(f.storage_url.removeprefix("file://"))
            assert path.is_relative_to(data), f.storage_url
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content(f.file_name, f.size))
            assert open_storage(f"file://{path.parent}").checksum(path.name).sha256 == f.sha256

    # The released order runs to completion with the upgraded rows.
    for step_id in _steps(catalog, "night-released"):
        run_step(catalog, step_id, dag_id="upgrade")
    with catalog.session() as s:
        order = orders.get_order(s, "SKY", "night-released")
        assert order.state == "COMPLETED"
        made = Counter(
            s.scalars(
                select(ProductClass.product_type)
                .join(Product, Product.product_class_id == ProductClass.id)
                .where(Product.job_step_id.in_(_steps(catalog, "night-released")))
            )
        )
        assert made == {"CALEXP_G": 1, "CALEXP_R": 1, "STACK_G": 1, "STACK_R": 1, "SRC_CAT": 1}
        # Its outputs are registered with XXH3-128, so their consumers stage on the fast path.
        new_files = s.scalars(
            select(ProductFile)
            .join(Product)
            .where(Product.job_step_id.in_(_steps(catalog, "night-released")))
        ).all()
        assert new_files
        for f in new_files:
            body = Path(f.storage_url.removeprefix("file://")).read_bytes()
            assert f.xxh128 == xxhash.xxh3_128_hexdigest(body)
        # Lineage of the catalogue: the stacks' inputs are the calibrated exposures the run staged.
        edges = s.scalar(
            select(func.count())
            .select_from(ProductInput)
            .join(Product, Product.id == ProductInput.product_id)
            .where(Product.job_step_id.in_(_steps(catalog, "night-released")))
        )
        assert edges and edges >= 4
