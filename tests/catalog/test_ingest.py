"""Ingesting delivered files: storage and catalogue stay in step, on both backends."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import xxhash
from sqlalchemy import func, select, text

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor, storage_key
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.models import Orbit, Product, ProductClass, ProductFile
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission

from tests_paths import MISSION_DIR

DAY = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))


def _onboard(catalog: Catalog, name: str):
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / f"{name}.yaml"))
        return loaded_from_catalog(s, name.upper())


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _count(catalog: Catalog, model) -> int:
    with catalog.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_ingest_copies_checksums_and_registers(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    mission = _onboard(catalog, "s5p")
    files = write_inputs(mission, *DAY, tmp_path / "in")
    report = Ingestor(catalog, mission).run(files)
    assert report.ok and report.count("new") == len(files)
    stored = _files_under(data_dirs["data"] / "S5P")
    assert len(stored) == len(files)
    with catalog.session() as s:
        rows = s.execute(
            select(
                ProductFile.file_name,
                ProductFile.size,
                ProductFile.md5,
                ProductFile.sha256,
                ProductFile.xxh128,
                ProductFile.storage_url,
            )
        ).all()
        l0 = s.scalars(
            select(Product).join(ProductClass).where(ProductClass.product_type == "L0__ODB_1_")
        ).all()
        orbit_numbers = {p.id: s.scalar(select(Orbit.number).where(Orbit.id == p.orbit_id)) for p in l0}
    by_name = {p.name: p for p in files}
    for name, size, md5, sha256, xxh128, url in rows:
        body = by_name[name].read_bytes()
        assert (size, md5, sha256, xxh128) == (
            len(body),
            hashlib.md5(body).hexdigest(),
            hashlib.sha256(body).hexdigest(),
            xxhash.xxh3_128_hexdigest(body),  # what stage-in verifies with, from the same pass
        )
        assert Path(url.removeprefix("file://")).read_bytes() == body
    # L0 validity and orbit come from the file name; generation time too.
    assert len(l0) == 15 and all(n is not None for n in orbit_numbers.values())
    assert all((p.sensing_stop - p.sensing_start).total_seconds() == 6060 for p in l0)


def test_reingest_is_a_no_op(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    mission = _onboard(catalog, "s5p")
    files = write_inputs(mission, *DAY, tmp_path / "in")
    Ingestor(catalog, mission).run(files)
    before = (_count(catalog, Product), _count(catalog, ProductFile))
    report = Ingestor(catalog, mission).run(files)
    assert report.ok and report.count("unchanged") == len(files) and report.count("new") == 0
    assert (_count(catalog, Product), _count(catalog, ProductFile)) == before


def test_a_different_file_under_the_same_identity_is_a_conflict(
    catalog: Catalog, data_dirs, tmp_path: Path
) -> None:
    mission = _onboard(catalog, "s5p")
    files = write_inputs(mission, *DAY, tmp_path / "in", classes={"AUX_MET_TP"})
    Ingestor(catalog, mission).run(files)
    victim = files[0]
    original = victim.read_bytes()
    victim.write_bytes(b"tampered" + original[8:])
    report = Ingestor(catalog, mission).run([victim])
    (outcome,) = report.outcomes
    assert outcome.status == "conflict" and not report.ok
    assert "already exists with this identity but a different file" in outcome.message
    stored = data_dirs["data"] / "S5P" / storage_key_for(mission, victim)
    assert stored.read_bytes() == original  # the catalogued file was not overwritten


def storage_key_for(mission, path: Path) -> str:
    from proseo.catalog.describe import describe_file

    return storage_key(describe_file(path, mission))


def test_sidecar_parameters_are_typed_and_kept(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    mission = _onboard(catalog, "sky")
    files = write_inputs(mission, *DAY, tmp_path / "in", classes={"RAW_EXP"})
    assert Ingestor(catalog, mission).run(files).ok
    with catalog.session() as s:
        params = [p.parameters for p in s.scalars(select(Product))]
    assert len(params) == 30
    assert all(isinstance(p["exposure_id"], int) and p["exposure_time_s"] == 300.0 for p in params)
    assert {p["filter"] for p in params} == {"g", "r"}


def test_unidentifiable_files_fail_alone(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    mission = _onboard(catalog, "sky")
    good = write_inputs(mission, *DAY, tmp_path / "in", classes={"CAL_BIAS"})
    stray = tmp_path / "in" / "notes.txt"
    stray.write_text("not a product")
    bad_sidecar = tmp_path / "in" / "SKY_OPER_RAW_EXP_g_20250301T101500_20250301T102000_000001.fits"
    bad_sidecar.write_bytes(b"x")
    bad_sidecar.with_name(bad_sidecar.name + ".json").write_text(json.dumps({"start": "yesterday"}))
    report = Ingestor(catalog, mission).run([*good, stray, bad_sidecar])
    errors = {Path(o.file).name: o.message for o in report.outcomes if o.status == "error"}
    assert "no product class's file-name pattern matches" in errors["notes.txt"]
    assert f"{bad_sidecar.name}.json: start" in errors[bad_sidecar.name]
    assert report.count("new") == len(good)
    assert _count(catalog, Product) == len(good)


def test_class_option_and_sidecar_validity_for_unpatterned_names(
    catalog: Catalog, data_dirs, tmp_path: Path
) -> None:
    mission = _onboard(catalog, "sky")
    path = tmp_path / "gaia_dr4_subset.parquet"
    path.write_bytes(b"reference catalogue")
    path.with_name(path.name + ".json").write_text(
        json.dumps(
            {
                "start": "2024-01-01T00:00:00Z",
                "stop": "2034-01-01T00:00:00Z",
                "generation_time": "2025-01-10T00:00:00Z",
            }
        )
    )
    report = Ingestor(catalog, mission).run([path], product_type="REF_CAT")
    assert report.ok, report.outcomes
    with catalog.session() as s:
        (p,) = s.scalars(select(Product)).all()
        assert p.generation_time == datetime(2025, 1, 10, tzinfo=UTC)


@contextlib.contextmanager
def _refusing_file_rows(catalog: Catalog) -> Iterator[None]:
    """A real database error: a trigger refuses every product_file insert while inside."""
    with catalog.engine.begin() as conn:
        if catalog.backend == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON product_file "
                    "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'disk quota exceeded'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON product_file "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    try:
        yield
    finally:
        with catalog.engine.begin() as conn:
            conn.execute(
                text("DROP TRIGGER refuse" + ("" if catalog.backend == "sqlite" else " ON product_file"))
            )
            if catalog.backend != "sqlite":
                conn.execute(text("DROP FUNCTION refuse()"))


def test_catalogue_failure_removes_the_copies(catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    """A real database error (a trigger refusing the insert) must not leave orphans on storage."""
    mission = _onboard(catalog, "s5p")
    files = write_inputs(mission, *DAY, tmp_path / "in", classes={"AUX_CTMFCT", "AUX_NISE__"})
    with _refusing_file_rows(catalog):
        report = Ingestor(catalog, mission).run(files)
    assert report.count("error") == len(files)
    assert all("copies removed" in o.message and "disk quota exceeded" in o.message for o in report.outcomes)
    assert _count(catalog, Product) == 0
    assert _files_under(data_dirs["data"]) == []
    # and once the database accepts writes again, the same files ingest normally
    assert Ingestor(catalog, mission).run(files).count("new") == len(files)


def test_a_file_already_stored_with_the_same_bytes_is_registered_without_rewriting(
    catalog: Catalog, data_dirs, tmp_path: Path
) -> None:
    """Left on storage by an interrupted ingestion (or copied by a concurrent one): used as it is."""
    mission = _onboard(catalog, "s5p")
    files = write_inputs(mission, *DAY, tmp_path / "in", classes={"AUX_MET_TP"})
    ingestor = Ingestor(catalog, mission)
    key = storage_key_for(mission, files[0])
    ingestor.storage.put_file(files[0], key)
    before = (data_dirs["data"] / "S5P" / key).stat()

    report = ingestor.run(files)

    assert report.ok and report.count("new") == len(files)
    assert [o.message for o in report.outcomes] == ["already stored"] + [None] * (len(files) - 1)
    after = (data_dirs["data"] / "S5P" / key).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _count(catalog, ProductFile) == len(files)


def test_other_bytes_under_the_storage_key_are_a_conflict_and_stay(
    catalog: Catalog, data_dirs, tmp_path: Path
) -> None:
    mission = _onboard(catalog, "s5p")
    (victim,) = write_inputs(mission, *DAY, tmp_path / "in", classes={"AUX_MET_TP"})[:1]
    ingestor = Ingestor(catalog, mission)
    key = storage_key_for(mission, victim)
    theirs = ingestor.storage.put_bytes(b"someone else's bytes", key)

    (outcome,) = ingestor.run([victim]).outcomes

    assert outcome.status == "conflict" and outcome.product_id is None
    assert f"key {key!r}" in outcome.message and theirs.sha256 in outcome.message
    assert hashlib.sha256(victim.read_bytes()).hexdigest() in outcome.message
    assert (data_dirs["data"] / "S5P" / key).read_bytes() == b"someone else's bytes"
    assert _count(catalog, Product) == 0


def test_the_rollback_never_removes_an_object_it_did_not_write(
    catalog: Catalog, data_dirs, tmp_path: Path
) -> None:
    """The one file another ingestion had stored stays when this batch's registration fails."""
    mission = _onboard(catalog, "s5p")
    files = write_inputs(mission, *DAY, tmp_path / "in", classes={"AUX_CTMFCT", "AUX_NISE__"})
    ingestor = Ingestor(catalog, mission)
    theirs = storage_key_for(mission, files[0])
    ingestor.storage.put_file(files[0], theirs)

    with _refusing_file_rows(catalog):
        report = ingestor.run(files)

    assert report.count("error") == len(files)
    assert _files_under(data_dirs["data"]) == [data_dirs["data"] / "S5P" / theirs]
    assert (data_dirs["data"] / "S5P" / theirs).read_bytes() == files[0].read_bytes()


def test_files_of_an_unknown_facility_are_refused(catalog: Catalog, data_dirs) -> None:
    mission = _onboard(catalog, "sky")
    from proseo.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no facility 'nowhere'"):
        Ingestor(catalog, mission, facility="nowhere")
