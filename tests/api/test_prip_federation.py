"""Federation: a second proseo catalogue pulls a class from the first one's PRIP (interfaces/pull.py).

The first catalogue is served over HTTP (uvicorn); the second is a catalogue of its own
with its own storage. Pulled twice, it holds every product exactly once with the first
one's checksums; a checksum the source publishes wrongly is refused with nothing
ingested; a pull that fails half-way resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_interface import InterfaceCursor
from proseo.catalog.model_mission import Mission, ProductClass
from proseo.catalog.model_product import Product, ProductFile
from proseo.catalog.schema import upgrade
from proseo.errors import ChecksumMismatch
from proseo.interfaces.pull import PullError, Source, pull
from proseo.missions import load_mission

from tests_paths import MISSION_DIR

CLASS = "L0__ODB_1_"
FILTER = (
    "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
    f"and att/OData.CSC.StringAttribute/Value eq '{CLASS}')"
)


def _held(catalog: Catalog) -> list[tuple[str, str, str, str]]:
    """(uuid, file name, md5, sha256) of every product of the class, one row per file."""
    with catalog.session() as s:
        return sorted(
            tuple(r)  # type: ignore[misc]
            for r in s.execute(
                select(Product.uuid, ProductFile.file_name, ProductFile.md5, ProductFile.sha256)
                .join(ProductFile, ProductFile.product_id == Product.id)
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .join(Mission, Mission.id == Product.mission_id)
                .where(Mission.code == "S5P", ProductClass.product_type == CLASS)
            ).all()
        )


@pytest.fixture
def second(prip_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """Another catalogue, its S5P facility storing under a directory of its own."""
    monkeypatch.setenv("PROSEO_DATA", str(tmp_path / "second-data"))
    catalog = Catalog(f"sqlite:///{tmp_path / 'second.db'}")
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


@pytest.fixture
def source(prip_url: str, airflow_credentials: tuple[str, str]) -> Source:
    user, password = airflow_credentials
    return Source("first-prip", prip_url, FILTER, username=user, password=password)


def test_pulled_twice_every_product_is_held_once_with_the_same_checksums(
    world: Catalog, second: Catalog, source: Source, tmp_path: Path
) -> None:
    published = _held(world)
    assert len(published) > 3
    first = pull(second, "S5P", source)
    assert sorted(first.taken) == sorted(name for _, name, _, _ in published)
    again = pull(second, "S5P", source)
    assert again.taken == [] and again.known, "the second pull takes nothing new"
    assert _held(second) == published
    with second.session() as s:
        cursor = s.scalars(select(InterfaceCursor)).one()
        assert cursor.source == "first-prip" and cursor.taken == len(published)
        newest = s.scalar(select(func.max(ProductFile.storage_url)))
    assert newest is not None and str(tmp_path / "second-data") in newest


def test_a_wrongly_published_checksum_ingests_nothing(
    world: Catalog, second: Catalog, source: Source
) -> None:
    with world.session() as s:
        s.execute(update(ProductFile).values(md5="0" * 32))
    with pytest.raises(ChecksumMismatch, match="MD5"):
        pull(second, "S5P", source)
    assert _held(second) == []
    with second.session() as s:
        assert s.scalar(select(func.count()).select_from(InterfaceCursor)) == 0


def test_a_pull_stopped_half_way_resumes_where_it_stopped(
    world: Catalog, second: Catalog, source: Source
) -> None:
    published = _held(world)
    # The source loses the file of its third product (in publication order): the pull stops there.
    with world.session() as s:
        third = (
            s.execute(
                select(ProductFile.storage_url)
                .join(Product, Product.id == ProductFile.product_id)
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .where(ProductClass.product_type == CLASS)
                .order_by(Product.created_at, Product.uuid)
                .offset(2)
            )
            .scalars()
            .first()
        )
    assert third is not None
    lost = Path(third.removeprefix("file://"))
    kept = lost.read_bytes()
    lost.unlink()
    with pytest.raises(PullError):
        pull(second, "S5P", source)
    taken = _held(second)
    assert 0 < len(taken) < len(published)
    lost.write_bytes(kept)
    resumed = pull(second, "S5P", source)
    assert len(resumed.taken) == len(published) - len(taken)
    assert _held(second) == published


def test_without_credentials_the_pull_says_so(world: Catalog, second: Catalog, prip_url: str) -> None:
    with pytest.raises(PullError, match="no token and no user name"):
        pull(second, "S5P", Source("first-prip", prip_url, FILTER))
    bad: Any = Source("first-prip", prip_url, FILTER, username="admin", password="wrong")
    with pytest.raises(PullError, match="token refused"):
        pull(second, "S5P", bad)


def test_the_conformance_suite_passes_on_our_prip(
    world: Catalog, prip_url: str, airflow_credentials: tuple[str, str]
) -> None:
    from proseo.demo import proseo_cli

    user, password = airflow_credentials
    out = proseo_cli(
        "interfaces", "check", prip_url, "--user", user, "--password", password, "--format", "json"
    )
    report = json.loads(out[out.index("{") :])
    outcomes = {r["name"]: r["outcome"] for r in report["results"]}
    assert report["failed"] == 0 and set(outcomes.values()) == {"pass"}, report
    assert len(outcomes) == 9


def test_the_conformance_suite_reports_what_fails(
    world: Catalog, prip_url: str, airflow_credentials: tuple[str, str]
) -> None:
    from proseo.interfaces.conformance import Prip, run_checks

    user, password = airflow_credentials
    # The source publishes wrong checksums and a caller without a role sees nothing.
    with world.session() as s:
        s.execute(update(ProductFile).values(sha256="0" * 64, md5="0" * 32))
    results = {r.name: r for r in run_checks(Prip(prip_url, user=user, password=password))}
    assert results["download with checksum and Range"].outcome == "fail"
    assert "differs from the published one" in results["download with checksum and Range"].detail
    assert results["ContentDate window"].outcome == "pass"
