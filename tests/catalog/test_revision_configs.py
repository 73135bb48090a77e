"""A mission revision's configuration is validated once per process and revision."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from proseo.catalog import configs
from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import loaded_from_catalog, revision_config, sync_mission
from proseo.catalog.model_order import JobStep
from proseo.execution import InputsNotReady, build_job_spec
from proseo.missions import load_mission
from proseo.missions.models import MissionConfig
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)


class Counting:
    """Counts every validation of a MissionConfig in this process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = MissionConfig.model_validate.__func__  # type: ignore[attr-defined]

        def counted(cls: type[MissionConfig], data: Any, **kwargs: Any) -> MissionConfig:
            self.calls += 1
            return original(cls, data, **kwargs)

        monkeypatch.setattr(MissionConfig, "model_validate", classmethod(counted))


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counting]:
    configs.clear_config_cache()
    yield Counting(monkeypatch)
    configs.clear_config_cache()


def test_each_revision_is_validated_once(
    catalog: Catalog, data_dirs: dict[str, Path], counting: Counting
) -> None:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))  # validates the file itself
    counting.calls = 0
    with catalog.session() as s:
        orders.create_order(
            s,
            "SKY",
            OrderSpec(identifier="n", requested_classes=["STACK_G"], start=DAY, stop=DAY + timedelta(days=1)),
        )
    lifecycle.approve_order(catalog, "SKY", "n")
    lifecycle.plan_order(catalog, "SKY", "n")
    with catalog.session() as s:
        for _ in range(3):
            loaded_from_catalog(s, "SKY")
        steps = s.scalars(select(JobStep.id)).all()
        assert len(steps) == 2
        for step in steps:
            # No inputs were ingested: the steps wait, after their configuration was read.
            with pytest.raises(InputsNotReady):
                build_job_spec(s, step)
        number, first = revision_config(s, "SKY")
        assert revision_config(s, "SKY")[1] is first
    assert counting.calls == 1
    assert number == 1


def test_the_key_tells_catalogues_apart_and_the_cache_is_bounded(counting: Counting) -> None:
    sky = load_mission(MISSION_DIR / "sky.yaml")
    s5p = load_mission(MISSION_DIR / "s5p.yaml")
    sky_json = sky.config.model_dump(mode="json", by_alias=True)
    s5p_json = s5p.config.model_dump(mode="json", by_alias=True)
    counting.calls = 0
    # Revision 1 of two catalogues: the same id, other missions.
    assert configs.config_for(1, sky.digest, sky_json).code == "SKY"
    assert configs.config_for(1, s5p.digest, s5p_json).code == "S5P"
    assert configs.config_for(1, sky.digest, sky_json).code == "SKY"
    assert counting.calls == 2
    for n in range(configs.CACHE_SIZE):
        configs.config_for(100 + n, sky.digest, sky_json)
    configs.config_for(1, s5p.digest, s5p_json)  # evicted by then: validated again
    assert counting.calls == 2 + configs.CACHE_SIZE + 1
