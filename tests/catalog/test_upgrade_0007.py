"""Migration 0007 (``product_file.xxh128``) in place, both ways, and what old rows mean for stage-in.

A catalogue with ingested products is downgraded to 0006 (the column goes, every row
stays) and upgraded again: the files catalogued meanwhile have no XXH3-128, so stage-in
verifies them by SHA-256, refusing one changed byte all the same; files ingested after
the upgrade record it again. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import xxhash
from sqlalchemy import inspect, select, text

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.models import ProductFile
from proseo.catalog.schema import current_revision, downgrade, head_revision, upgrade
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.storage import open_storage
from proseo.wrapper.failure import WrapperError
from proseo.wrapper.spec import JobSpec
from proseo.wrapper.stagein import stage_inputs

from tests_paths import MISSION_DIR

DAY = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
ROW = "SELECT file_name, size, md5, sha256, storage_url FROM product_file ORDER BY id"


def _spec(rows: list[ProductFile], data: Path) -> JobSpec:
    """A job spec staging ``rows`` as the orchestrator would hand it (execution/jobspec.py)."""
    root = f"file://{data}"
    return JobSpec.model_validate(
        {
            "job_step_id": 1,
            "mission": "S5P",
            "processor": "NONE",
            "version": "1",
            "configuration": "1",
            "file_class": "TEST",
            "tasks": [{"name": "NONE", "version": "1"}],
            "command": ["true"],
            "sensing_start": DAY[0],
            "sensing_stop": DAY[1],
            "inputs": [
                {
                    "product_id": f.product_id,
                    "product_type": "AUX",
                    "file_name": f.file_name,
                    "storage": "archive",
                    "key": open_storage(root).key_of(f.storage_url),
                    "size": f.size,
                    "md5": f.md5,
                    "sha256": f.sha256,
                    "xxh128": f.xxh128,
                    "start": DAY[0],
                    "stop": DAY[1],
                }
                for f in rows
            ],
            "outputs": [
                {"product_type": "OUT", "file_name": "OUT", "key": "OUT/x", "start": DAY[0], "stop": DAY[1]}
            ],
            "storages": {"archive": {"url": root}},
            "output_storage": "archive",
            "log_key": "logs/1.log",
            "job_order_key": "joborders/1.xml",
            "max_run_time_s": 10,
        }
    )


def test_0007_downgrades_and_upgrades_in_place_and_old_rows_stage_by_sha256(
    catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path
) -> None:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
        mission = loaded_from_catalog(s, "S5P")
    files = write_inputs(mission, *DAY, tmp_path / "in", classes={"AUX_MET_TP"})
    assert Ingestor(catalog, mission).run(files).ok
    engine = catalog.engine
    with engine.connect() as conn:
        before = conn.execute(text(ROW)).all()
    assert before

    downgrade(engine, "0006")
    assert current_revision(engine) == "0006"
    assert "xxh128" not in {c["name"] for c in inspect(engine).get_columns("product_file")}
    with engine.connect() as conn:
        assert conn.execute(text(ROW)).all() == before

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text(ROW)).all() == before
    with catalog.session() as s:
        old = s.scalars(select(ProductFile).order_by(ProductFile.id)).all()
        assert all(f.xxh128 is None for f in old)

    # Stage-in of the old rows: verified by SHA-256, and one changed byte is refused.
    spec = _spec(old, data_dirs["data"])
    assert all(f.xxh128 is None for f in spec.inputs)
    staged = stage_inputs(spec, tmp_path / "work", note=lambda _: None)
    for f, path in zip(old, staged, strict=True):
        assert hashlib.sha256((tmp_path / "work" / path).read_bytes()).hexdigest() == f.sha256
    victim = Path(old[0].storage_url.removeprefix("file://"))
    body = bytearray(victim.read_bytes())
    body[len(body) // 2] ^= 0x20
    victim.chmod(0o644)
    victim.write_bytes(bytes(body))  # changed in place behind the catalogue's back, same size
    with pytest.raises(WrapperError) as caught:
        stage_inputs(spec, tmp_path / "again", note=lambda _: None)
    assert caught.value.stage == "stage-in"
    assert "SHA-256" in caught.value.reason and repr(old[0].file_name) in caught.value.reason

    # Files ingested after the upgrade record XXH3-128 again.
    later = write_inputs(mission, DAY[1], datetime(2025, 3, 3, tzinfo=UTC), tmp_path / "later")
    later = [p for p in later if p.name not in {f.name for f in files}]
    assert later and Ingestor(catalog, mission).run(later).ok
    with catalog.session() as s:
        new = s.scalars(select(ProductFile).where(ProductFile.file_name.in_([p.name for p in later]))).all()
        assert {f.file_name: f.xxh128 for f in new} == {
            p.name: xxhash.xxh3_128_hexdigest(p.read_bytes()) for p in later
        }
