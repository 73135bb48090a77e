"""CADIP ingestion over real HTTP: two-channel sessions whose final blocks and QualityInfo come late.

The CADIP is the test server of cadip_server.py (uvicorn in a thread); the catalogue is
the ``catalog`` fixture (SQLite and PostgreSQL) with the sample S5P mission. A session is
taken only when every channel is whole; then each channel is one L0 product holding the
channel's blocks in order, ingested once however often the pull runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cadip_server import CadipWorld, serve
from sqlalchemy import delete, func, select, update

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_cadip import CadipFile, CadipSession
from proseo.catalog.model_product import Product, ProductFile
from proseo.interfaces.cadip import CadipError, CadipSource, input_class, pull_sessions
from proseo.missions import load_mission

from tests_paths import MISSION_DIR

CLASS = "L0__ODB_1_"


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Any]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


@pytest.fixture
def world() -> CadipWorld:
    return CadipWorld(page_size=1)  # one entity per page: every listing follows nextLinks


@pytest.fixture
def source(world: CadipWorld) -> Iterator[CadipSource]:
    with serve(world) as root:
        yield CadipSource(
            "cgs1", root, "S5P", username=world.user, password=world.password, product_type=CLASS
        )


def _two_channels(world: CadipWorld, sid: str, *, blocks: int = 3, late: int = 1, quality: int = 1) -> None:
    """Channel 1 whole at tick 0; channel 2's final block at ``late``; QualityInfo at ``quality``."""
    world.add_session(sid)
    for b in range(1, blocks + 1):
        world.add_block(sid, 1, b, final=b == blocks, size=700 + b)
    world.add_quality(sid, 1)
    for b in range(1, blocks + 1):
        world.add_block(sid, 2, b, final=b == blocks, tick=late if b == blocks else 0, size=900 + b)
    world.add_quality(sid, 2, tick=quality)


def _products(catalog: Catalog) -> list[tuple[str, str, int]]:
    """(file name, sha256, size) of every product held, one row each."""
    with catalog.session() as s:
        rows = s.execute(
            select(ProductFile.file_name, ProductFile.sha256, ProductFile.size).join(
                Product, Product.id == ProductFile.product_id
            )
        ).all()
    return sorted((str(n), str(h), int(z)) for n, h, z in rows)


def _expected(world: CadipWorld, sid: str, channel: int) -> tuple[str, str, int]:
    data = b"".join(
        e.data
        for e in sorted(world.files, key=lambda e: e.json["BlockNumber"])
        if e.json["SessionId"] == sid and e.json["Channel"] == channel
    )
    return f"{sid}_ch{channel:02d}.raw", hashlib.sha256(data).hexdigest(), len(data)


def _states(catalog: Catalog) -> dict[str, tuple[str, str | None]]:
    with catalog.session() as s:
        return {r.session_id: (r.state, r.reason) for r in s.scalars(select(CadipSession))}


def test_a_session_is_taken_once_every_channel_is_whole_and_only_once(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    _two_channels(world, "S5P_20250301T114500_A", late=1, quality=1)
    _two_channels(world, "S5P_20250301T120000_B", late=1, quality=2)

    first = pull_sessions(s5p, "S5P", source)
    assert first.taken == [] and _products(s5p) == []
    assert world.downloads == 0, "nothing of a session that is not whole is downloaded"
    states = _states(s5p)
    assert {state for state, _ in states.values()} == {"pending"}
    reason = states["S5P_20250301T114500_A"][1] or ""
    assert "channel 2: final block not in yet" in reason and "channel 1" not in reason

    world.tick = 1  # channel 2's final blocks; A's QualityInfo for channel 2, B's still to come
    second = pull_sessions(s5p, "S5P", source)
    assert second.taken == ["S5P_20250301T114500_A"]
    assert second.pending == {"S5P_20250301T120000_B": "channel 2: no QualityInfo yet"}
    assert _products(s5p) == sorted(_expected(world, "S5P_20250301T114500_A", c) for c in (1, 2))

    world.tick = 2
    third = pull_sessions(s5p, "S5P", source)
    assert third.taken == ["S5P_20250301T120000_B"] and third.pending == {}
    downloads = world.downloads
    fourth = pull_sessions(s5p, "S5P", source)
    assert fourth.taken == [] and fourth.pending == {} and fourth.failures == []
    assert world.downloads == downloads, "a taken session is not downloaded again"

    expected = sorted(
        _expected(world, sid, c) for sid in ("S5P_20250301T114500_A", "S5P_20250301T120000_B") for c in (1, 2)
    )
    assert _products(s5p) == expected, "every channel of every session exactly once, bytes in block order"
    with s5p.session() as s:
        assert s.scalar(select(func.count()).select_from(CadipFile)) == 12
        product = s.scalars(select(Product).order_by(Product.id)).first()
        assert product is not None and product.parameters == {
            "session": "S5P_20250301T114500_A",
            "channel": 1,
        }
        assert product.sensing_start < product.sensing_stop
    assert {state for state, _ in _states(s5p).values()} == {"taken"}


def test_a_quality_total_that_does_not_match_keeps_the_session_pending(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    sid = "S5P_20250301T114500_Q"
    world.add_session(sid)
    for channel in (1, 2):
        world.add_block(sid, channel, 1)
        world.add_block(sid, channel, 2, final=True)
    world.add_quality(sid, 1)
    wrong = world.add_quality(sid, 2, volume=1)

    report = pull_sessions(s5p, "S5P", source)
    assert report.pending == {
        sid: "channel 2: QualityInfo totals 2 chunks, 1 bytes; arrived 2 chunks, 2000 bytes"
    }
    assert _products(s5p) == [] and world.downloads == 0

    wrong.json["TotalVolume"] = 2000  # the station corrects its QualityInfo
    report = pull_sessions(s5p, "S5P", source)
    assert report.taken == [sid]
    assert _products(s5p) == sorted(_expected(world, sid, c) for c in (1, 2))


def test_a_download_cut_off_half_way_ingests_nothing_and_the_next_pull_completes(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    sid = "S5P_20250301T114500_C"
    _two_channels(world, sid, late=0, quality=0)
    final_2 = next(e for e in world.files if e.json["Channel"] == 2 and e.json["FinalBlock"])
    world.cut.add(final_2.json["Id"])  # channel 1 is downloaded whole, then channel 2 breaks

    with pytest.raises(CadipError) as failed:
        pull_sessions(s5p, "S5P", source)
    assert failed.value.session == sid and failed.value.file == final_2.json["Name"]
    assert f"session {sid}: file {final_2.json['Name']}" in str(failed.value)
    assert failed.value.report is not None and failed.value.report.taken == []
    assert _products(s5p) == [], "channel 1 is not ingested without channel 2"
    state, reason = _states(s5p)[sid]
    assert state == "pending" and final_2.json["Name"] in (reason or "")

    report = pull_sessions(s5p, "S5P", source)
    assert report.taken == [sid] and report.failures == []
    assert _products(s5p) == sorted(_expected(world, sid, c) for c in (1, 2))
    assert _states(s5p)[sid] == ("taken", None)


def test_sessions_of_other_satellites_are_not_looked_at(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    world.add_session("S1A_20250301T114500", satellite="S1A")
    report = pull_sessions(s5p, "S5P", source)
    assert report.taken == [] and report.pending == {} and _states(s5p) == {}


def test_the_cli_pulls_and_lists_pending_sessions_with_their_reason(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    import json

    from click.testing import CliRunner

    from proseo.cli.main import cli

    _two_channels(world, "S5P_20250301T114500_L", late=1, quality=1)
    args = ["--catalog", s5p.url, "interfaces", "cadip-pull", source.root, "-m", "S5P", "--name", "cgs1"]
    args += ["--satellite", "S5P", "--class", CLASS, "--user", world.user, "--password", world.password]
    first = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert first.exit_code == 0, first.output
    pending = json.loads(first.output)["pending"]
    assert pending == {"S5P_20250301T114500_L": "channel 2: final block not in yet (2 blocks so far)"}
    world.tick = 1
    second = CliRunner().invoke(cli, [*args, "--progress"])
    assert second.exit_code == 0, second.output
    assert "1 sessions taken (2 products), 0 pending" in second.output
    assert len(_products(s5p)) == 2


def test_a_pull_stopped_after_ingesting_but_before_marking_takes_the_session_once(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    sid = "S5P_20250301T114500_R"
    _two_channels(world, sid, late=0, quality=0)
    assert pull_sessions(s5p, "S5P", source).taken == [sid]
    held = _products(s5p)
    with s5p.session() as s:  # as if the pull had stopped between ingestion and marking
        s.execute(delete(CadipFile))
        s.execute(update(CadipSession).values(state="pending", taken_at=None))
    again = pull_sessions(s5p, "S5P", source)
    assert again.taken == [sid]
    assert _products(s5p) == held, "ingestion is idempotent: the same two products"
    with s5p.session() as s:
        assert s.scalar(select(func.count()).select_from(CadipFile)) == 6
        assert None not in set(s.scalars(select(CadipFile.product_id)))


def test_the_l0_class_is_the_sources_or_the_missions_only_raw_one() -> None:
    mission = load_mission(MISSION_DIR / "s5p.yaml")
    assert input_class(mission, CadipSource("c", "http://h", product_type="L0__ODB_4_")) == "L0__ODB_4_"
    with pytest.raises(CadipError, match=r"source c: mission S5P has no product class 'L0__NOPE_'"):
        input_class(mission, CadipSource("c", "http://h", product_type="L0__NOPE_"))
    with pytest.raises(CadipError, match=r"S5P has 4 input-only L0 classes \(L0__ODB_1_, L0__ODB_4_"):
        input_class(mission, CadipSource("c", "http://h"))


def test_quality_info_is_fetched_per_session_from_a_server_that_does_not_expand_lists(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    world.expand_in_lists = False
    sid = "S5P_20250301T114500_E"
    _two_channels(world, sid, late=0, quality=0)
    assert pull_sessions(s5p, "S5P", source).taken == [sid]
    assert _products(s5p) == sorted(_expected(world, sid, c) for c in (1, 2))


def test_a_pending_session_the_cadip_no_longer_serves_is_gone_not_a_failure_at_every_pull(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    import json

    from click.testing import CliRunner

    from proseo.cli.main import cli

    sid = "S5P_20250301T114500_G"
    _two_channels(world, sid, late=1, quality=1)
    assert pull_sessions(s5p, "S5P", source).pending == {
        sid: "channel 2: final block not in yet (2 blocks so far)"
    }
    world.sessions.clear()  # evicted before it was ever whole: Sessions(<Id>) answers 404
    world.listing_down = True  # ... but so would a wrong root: not gone while the listing fails
    with pytest.raises(CadipError, match="503") as down:
        pull_sessions(s5p, "S5P", source)
    assert down.value.report is not None and sid in down.value.report.pending
    args = ["--catalog", s5p.url, "interfaces", "cadip-pull", source.root, "-m", "S5P", "--name", "cgs1"]
    args += ["--satellite", "S5P", "--class", CLASS, "--user", world.user, "--password", world.password]
    failed = CliRunner().invoke(cli, args)
    assert failed.exit_code == 1 and "error: source cgs1: 503" in failed.output, failed.output
    assert _states(s5p)[sid][0] == "pending"
    world.listing_down = False

    shown = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    gone = json.loads(shown.output)["gone"]
    assert list(gone) == [sid] and "no longer served by the CADIP" in gone[sid] and "404" in gone[sid]
    state, reason = _states(s5p)[sid]
    assert state == "gone" and reason == gone[sid]
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0 and "0 pending, 0 gone" in table.output, "final: not looked at again"
    later = pull_sessions(s5p, "S5P", source)
    assert later.failures == [] and later.pending == {} and later.gone == {}


def test_a_session_that_keeps_failing_past_the_limit_is_given_up_with_its_reason(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    sid = "S5P_20250301T114500_F"
    _two_channels(world, sid, late=0, quality=0)
    final_2 = next(e for e in world.files if e.json["Channel"] == 2 and e.json["FinalBlock"])
    world.cut.add(final_2.json["Id"])
    with pytest.raises(CadipError):
        pull_sessions(s5p, "S5P", source)  # within the limit: a failure, retried next pull
    assert _states(s5p)[sid][0] == "pending"
    with s5p.session() as s:  # first seen longer ago than the source allows
        s.execute(update(CadipSession).values(first_seen=datetime.now(UTC) - timedelta(days=8)))
    world.cut.add(final_2.json["Id"])  # still failing

    report = pull_sessions(s5p, "S5P", source)
    assert report.failures == [] and report.pending == {} and list(report.gone) == [sid]
    assert "given up" in report.gone[sid] and final_2.json["Name"] in report.gone[sid]
    state, reason = _states(s5p)[sid]
    assert state == "gone" and final_2.json["Name"] in (reason or "")
    downloads = world.downloads
    again = pull_sessions(s5p, "S5P", source)
    assert again.failures == [] and again.gone == {} and world.downloads == downloads
    assert _products(s5p) == []


def test_an_unusable_session_entity_is_recorded_and_passed_neither_dropped_nor_failing_every_pull(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    broken, fine = "S5P_20250301T114500_U", "S5P_20250301T120000_V"
    _two_channels(world, broken, late=0, quality=0)
    _two_channels(world, fine, late=0, quality=0)
    entity = next(e for e in world.sessions if e.json["SessionId"] == broken)
    entity.json["NumChannels"] = "two"

    first = pull_sessions(s5p, "S5P", source)  # the valid session after it moves the cursor past it
    assert first.taken == [fine] and first.failures == []
    assert first.pending == {broken: "unusable session entity: NumChannels is 'two', expected an integer"}
    with s5p.session() as s:
        row = s.scalars(select(CadipSession).where(CadipSession.session_id == broken)).one()
        assert (row.entity_id, row.state) == (entity.json["Id"], "pending")

    entity.json["NumChannels"] = 2  # the CADIP corrects it: asked again by its Id, then taken
    second = pull_sessions(s5p, "S5P", source)
    assert second.taken == [broken] and second.failures == []
    assert _products(s5p) == sorted(_expected(world, sid, c) for sid in (broken, fine) for c in (1, 2))

    world.add_session("S5P_20250301T121500_W", tick=1)  # the newest, with an Id that is no name
    world.sessions[-1].json["Id"] = "not a name"
    world.tick = 1
    third = pull_sessions(s5p, "S5P", source)
    assert third.failures == [] and list(third.gone) == ["S5P_20250301T121500_W"]
    assert "is not a plain name" in third.gone["S5P_20250301T121500_W"]
    fourth = pull_sessions(s5p, "S5P", source)  # listed again at the cursor: known, quiet
    assert fourth.failures == [] and fourth.gone == {} and fourth.pending == {}


def test_a_pending_session_that_cannot_be_asked_for_again_is_given_up_after_the_limit(
    s5p: Catalog, world: CadipWorld, source: CadipSource
) -> None:
    sid = "S5P_20250301T114500_H"
    entity_id = world.add_session(sid, channels=1)
    assert pull_sessions(s5p, "S5P", source).pending == {
        sid: "channel 1: final block not in yet (0 blocks so far)"
    }
    world.refused.add(entity_id)  # Sessions(<Id>) answers 503: not gone, a failure
    with pytest.raises(CadipError, match=r"session S5P_20250301T114500_H: 503"):
        pull_sessions(s5p, "S5P", source)
    assert _states(s5p)[sid][0] == "pending"
    with s5p.session() as s:
        s.execute(update(CadipSession).values(first_seen=datetime.now(UTC) - timedelta(days=8)))
    report = pull_sessions(s5p, "S5P", source)
    assert report.failures == [] and list(report.gone) == [sid] and "503" in report.gone[sid]
    assert _states(s5p)[sid][0] == "gone"
