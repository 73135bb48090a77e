"""Onboarding missions into the catalogue: idempotent, revisioned, all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import revision_config, sync_mission
from proseo.catalog.models import (
    ConfiguredProcessor,
    Facility,
    Mission,
    MissionRevision,
    Orbit,
    ProductClass,
)
from proseo.errors import NotFoundError
from proseo.missions import load_mission

from tests_paths import MISSION_DIR, without_triggers


def _count(catalog: Catalog, model) -> int:
    with catalog.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_load_creates_everything_and_is_idempotent(catalog: Catalog, data_dirs) -> None:
    s5p = load_mission(MISSION_DIR / "s5p.yaml")
    with catalog.session() as s:
        first = sync_mission(s, s5p)
    assert (first.status, first.revision) == ("created", 1)
    assert first.changes["orbits"] == len(s5p.orbits["S5P"])
    assert _count(catalog, ProductClass) == len(s5p.config.product_classes)
    assert _count(catalog, ConfiguredProcessor) == 9
    with catalog.session() as s:
        again = sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    assert (again.status, again.revision) == ("unchanged", 1)
    assert _count(catalog, MissionRevision) == 1
    with catalog.session() as s:
        fac = s.scalar(select(Facility).where(Facility.name == "local"))
        assert fac.storage_url == f"file://{data_dirs['data']}/S5P"  # ${PROSEO_DATA} expanded
        assert fac.is_default


def test_changed_file_is_a_new_revision_and_old_ones_stay_readable(
    catalog: Catalog, tmp_path: Path, data_dirs
) -> None:
    text = without_triggers((MISSION_DIR / "sky.yaml").read_text())
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    changed = tmp_path / "sky.yaml"
    # Drop OBJ_CAT and its processor, retune a facility.
    cut = text[text.index("  OBJ_CAT:") : text.index("processors:")]
    proc = text[text.index("  ASSOCIATE:") : text.index("facilities:")]
    changed.write_text(
        text.replace(cut, "")
        .replace(proc, "")
        .replace("max_concurrent_job_steps: 64", "max_concurrent_job_steps: 128")
    )
    with catalog.session() as s:
        result = sync_mission(s, load_mission(changed))
    assert (result.status, result.revision) == ("updated", 2)
    with catalog.session() as s:
        retired = s.scalar(select(ProductClass).where(ProductClass.product_type == "OBJ_CAT"))
        assert retired.retired  # kept for the products that refer to it
        assert s.scalar(
            select(ConfiguredProcessor).where(ConfiguredProcessor.processor_class == "ASSOCIATE")
        ).retired
        assert (
            s.scalar(select(Facility).where(Facility.name == "observatory_hpc")).max_concurrent_job_steps
            == 128
        )
        n1, old = revision_config(s, "SKY", 1)
        n2, new = revision_config(s, "SKY")
    assert (n1, n2) == (1, 2)
    assert "OBJ_CAT" in old.product_classes and "OBJ_CAT" not in new.product_classes


def test_orbit_changes_update_in_place(catalog: Catalog, tmp_path: Path, data_dirs) -> None:
    text = (MISSION_DIR / "s5p.yaml").read_text()
    original = load_mission(MISSION_DIR / "s5p.yaml")
    with catalog.session() as s:
        sync_mission(s, original)
    longer = tmp_path / "s5p.yaml"
    longer.write_text(text.replace("until: 2027-01-01T00:00:00Z", "until: 2027-01-02T00:00:00Z"))
    extended = load_mission(longer)
    added = [o for o in extended.orbits["S5P"] if o.number > original.orbits["S5P"][-1].number]
    assert added and all(o.start < o.stop for o in added)
    with catalog.session() as s:
        result = sync_mission(s, extended)
    assert result.changes["orbits"] == len(added)
    with catalog.session() as s:
        assert s.scalar(select(func.max(Orbit.number))) == added[-1].number
        assert s.scalar(select(func.count()).select_from(Orbit)) == len(extended.orbits["S5P"])


def test_a_failing_transaction_writes_nothing(catalog: Catalog, data_dirs) -> None:
    s5p = load_mission(MISSION_DIR / "s5p.yaml")
    with pytest.raises(RuntimeError), catalog.session() as s:
        sync_mission(s, s5p)
        raise RuntimeError("crash after the sync, before commit")
    assert _count(catalog, Mission) == 0
    assert _count(catalog, Orbit) == 0


def test_unknown_mission_names_what_is_loaded(catalog: Catalog, data_dirs) -> None:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    with (
        pytest.raises(NotFoundError, match=r"'XYZ' is not in the catalogue \(loaded: SKY\)"),
        catalog.session() as s,
    ):
        revision_config(s, "XYZ")
