"""Remembered evaluations change nothing: a plan made with the memo equals one made without.

The memo (planning/sources.py) keys an evaluation by rule, window and the candidates it
could choose; whole-class reads are checked by version on a hit. Planned here: two days
of every S5P L2 class and the daily L3, whose L2 classes share input rules per orbit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import Mission
from proseo.catalog.products import class_ids, processor_ids
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.planning import sources
from proseo.planning.candidates import CandidateCache
from proseo.planning.claims import ClaimedOutputs
from proseo.planning.model import Plan
from proseo.planning.planner import Planner
from proseo.planning.spec import OrderSpec
from proseo.rules.evaluate import evaluate

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)
CLASSES = ["L2__CLOUD_", "L2__NO2___", "L2__O3____", "L2__CH4___", "L3__NO2___"]


def _plan(catalog: Catalog) -> Plan:
    spec = OrderSpec(
        identifier="memo",
        requested_classes=CLASSES,
        start=DAY,
        stop=DAY + timedelta(days=2),
        processing_mode="OFFL",
        output_parameters={"*": {"collection": 1}},
    )
    with catalog.session() as s:
        loaded = loaded_from_catalog(s, "S5P")
        mission_id = s.scalars(select(Mission.id).where(Mission.code == "S5P")).one()
        classes, processors = class_ids(s, mission_id), processor_ids(s, mission_id)
        planner = Planner(
            loaded.config,
            next(iter(loaded.orbits.values())),
            spec,
            CandidateCache(s, classes, {v: k for k, v in processors.items()}),
            now=utcnow(),
            max_steps=10_000,
            claimed=ClaimedOutputs(s, classes, -1),
        )
        return planner.run()


def _shape(plan: Plan) -> list[Any]:
    return [
        (
            s.product_type,
            s.slice.start,
            s.slice.stop,
            s.processor.id,
            sorted(s.upstream),
            [(i.rule_text, i.origin, i.satisfied, i.chosen, i.coverage, i.explanation) for i in s.inputs],
        )
        for s in plan.steps
    ]


def test_the_memo_changes_no_plan(
    catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
        mission = loaded_from_catalog(s, "S5P")
    files = write_inputs(
        mission,
        DAY - timedelta(hours=6),
        DAY + timedelta(days=2, hours=6),
        tmp_path / uuid.uuid4().hex,
        size=64,
    )
    assert Ingestor(catalog, mission).run(files).ok
    evaluated: list[int] = []

    def counted(*args: Any) -> Any:
        evaluated.append(1)
        return evaluate(*args)

    monkeypatch.setattr(sources, "evaluate", counted)
    remembered = _plan(catalog)
    inputs = sum(len(s.inputs) for s in remembered.steps)
    assert 0 < len(evaluated) < 0.8 * inputs  # the memo was used (L2 classes share rules per orbit)

    calls: list[int] = []

    def every_time(self: sources.Evaluations, rule: Any, start: datetime, stop: datetime) -> Any:
        calls.append(1)
        return evaluate(rule, self.pool(rule, start, stop), start, stop)

    monkeypatch.setattr(sources.Evaluations, "evaluate", every_time)
    fresh = _plan(catalog)
    assert calls and len(fresh.steps) == len(remembered.steps) > 100
    assert _shape(fresh) == _shape(remembered)
