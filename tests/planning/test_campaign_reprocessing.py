"""Reprocessing semantics: a campaign pinning a newer processor version remakes what an older
version made. Both products stay in the catalogue, the "latest" policies choose the new
ones, and lineage and provenance tell them apart (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_mission import ConfiguredProcessor, ProductClass
from proseo.catalog.model_product import Product, ProductInput, Provenance
from proseo.missions import load_mission
from proseo.planning import campaign as camp
from proseo.planning.campaign_gaps import gap_report
from proseo.planning.campaign_spec import parse_campaign
from proseo.rules import parse
from proseo.rules.evaluate import evaluate
from proseo.rules.policies import Candidate
from tests_campaign import AUX, L0, ingest, order_rows, run_order

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)
OLD, NEW = "L01B_02.01.00_2025.01-rpro", "L01B_02.10.00_2025.01-rpro"


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


def _run(catalog: Catalog, name: str, pin: str, classes: list[str], collection: int) -> None:
    spec = parse_campaign(
        {
            "name": name,
            "requested_classes": classes,
            "start": DAY.isoformat(),
            "stop": (DAY + timedelta(days=1)).isoformat(),
            "configured_processors": [pin],
            "output_parameters": {"*": {"collection": collection}},
        }
    )
    with catalog.session() as s:
        camp.create_campaign(s, "S5P", spec)
    started = camp.start_campaign(catalog, "S5P", name)
    assert started.failed == [], started
    for identifier in started.released:
        run_order(catalog, identifier)
    assert camp.campaign_pass(catalog, "S5P", name).state == "COMPLETED"


def _products(catalog: Catalog, product_type: str) -> list[tuple[int, datetime, datetime, str | None]]:
    with catalog.session() as s:
        return list(
            s.execute(
                select(
                    Product.id, Product.sensing_start, Product.generation_time, ConfiguredProcessor.identifier
                )
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .outerjoin(ConfiguredProcessor, ConfiguredProcessor.id == Product.configured_processor_id)
                .where(ProductClass.product_type == product_type)
                .order_by(Product.id)
            ).all()
        )


def _made_by(catalog: Catalog, prefix: str, product_type: str) -> dict[int, set[int]]:
    """Products of a class made by the orders of a campaign, with their lineage inputs."""
    with catalog.session() as s:
        orders = {o.id for o in order_rows(catalog) if o.identifier.startswith(prefix)}
        from proseo.catalog.model_order import Job, JobStep

        rows = s.execute(
            select(Product.id)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .join(JobStep, JobStep.id == Product.job_step_id)
            .join(Job, Job.id == JobStep.job_id)
            .where(ProductClass.product_type == product_type, Job.order_id.in_(orders))
        ).all()
        return {
            pid: set(s.scalars(select(ProductInput.input_product_id).where(ProductInput.product_id == pid)))
            for (pid,) in rows
        }


def test_a_newer_version_reprocesses_what_an_older_one_made(s5p: Catalog, tmp_path: Path) -> None:
    ingest(s5p, DAY - timedelta(days=1), DAY + timedelta(days=2), tmp_path, AUX | L0)
    _run(s5p, "rpro_old", OLD, ["L1B_______", "L2__O3____"], 4)
    old = _products(s5p, "L1B_RA_BD3")
    assert old and {cp for *_, cp in old} == {OLD}
    old_l2 = _made_by(s5p, "rpro_old", "L2__O3____")
    time.sleep(1.1)  # generation times have whole seconds: the new products are newer

    # The same collection: the L1B is made again by the new version, but the planner finds
    # the L2 it would make (same class, slice, mode, file class, L2 processor, parameters)
    # and reuses it: the L2 stays the one made from the old L1B (planner.py, _identical).
    _run(s5p, "rpro_same", NEW, ["L1B_______", "L2__O3____"], 4)
    assert {cp for *_, cp in _products(s5p, "L1B_RA_BD3")} == {OLD, NEW}
    assert _made_by(s5p, "rpro_same", "L2__O3____") == {}
    assert len(_products(s5p, "L2__O3____")) == len(old_l2)
    time.sleep(1.1)

    # A new collection (what a real reprocessing declares) remakes the whole chain.
    _run(s5p, "rpro_new", NEW, ["L1B_______", "L2__O3____"], 5)
    both = _products(s5p, "L1B_RA_BD3")
    by_cp: dict[str | None, set[datetime]] = {}
    for _, start, _, cp in both:
        by_cp.setdefault(cp, set()).add(start)
    assert set(by_cp) == {OLD, NEW} and by_cp[OLD] == by_cp[NEW]
    with s5p.session() as s:
        assert gap_report(s, "S5P", "rpro_new").gaps == []
        assert gap_report(s, "S5P", "rpro_old").gaps == []  # its products are all still there
    new_l1b = set(_made_by(s5p, "rpro_new", "L1B_RA_BD3"))
    old_l1b = {pid for pid, *_, cp in both if cp == OLD}
    assert new_l1b and new_l1b.isdisjoint(old_l1b)

    # A "latest" policy chooses the new campaign's product.
    start = min(by_cp[NEW])
    with s5p.session() as s:
        rows = s.scalars(
            select(Product)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .where(ProductClass.product_type == "L1B_RA_BD3", Product.sensing_start == start)
        ).all()
        candidates = [
            Candidate(p.id, p.sensing_start, p.sensing_stop, p.generation_time, {"mode": p.mode})
            for p in rows
        ]
    assert len(candidates) == 3  # old version, new version collection 4, new version collection 5
    rule = next(iter(parse("FOR L1B_RA_BD3 SELECT LatestValIntersect(0, 0)")))
    chosen = evaluate(rule, {"L1B_RA_BD3": candidates}, start, start + timedelta(minutes=101))
    assert len(chosen.chosen) == 1 and chosen.chosen[0].candidate.id in new_l1b

    # Provenance names the version; lineage shows each new L2 read only the new L1B.
    with s5p.session() as s:
        cps = dict(
            s.execute(
                select(Provenance.product_id, ConfiguredProcessor.identifier).join(
                    ConfiguredProcessor, ConfiguredProcessor.id == Provenance.configured_processor_id
                )
            ).all()
        )
    assert {cps[pid] for pid in new_l1b} == {NEW} and {cps[pid] for pid in old_l1b} == {OLD}
    new_l2 = _made_by(s5p, "rpro_new", "L2__O3____")
    assert len(new_l2) == len(old_l2)
    assert all(inputs & new_l1b for inputs in new_l2.values())
    # Finding (reported to the lead, planner files untouched): L2__O3____'s rule
    # "FOR L1B_RA_BD3 SELECT ValIntersect(0, 0)" binds every product intersecting the
    # orbit, whatever its processor version or collection, so the new L2 reads the old
    # version's L1B as well as the new one. A mission that reprocesses needs a filter
    # (FOR L1B_RA_BD3/collection:5 ...) or a Latest* policy there.
    assert all(inputs & old_l1b for inputs in new_l2.values())
    assert all(inputs & old_l1b for inputs in old_l2.values())
