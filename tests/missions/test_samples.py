"""The two sample missions load, and have the shape later work relies on."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from proseo.missions import load_mission, load_missions
from proseo.missions.filenames import render
from proseo.missions.models import MissionConfig, dump_config
from proseo.missions.types import SlicingType

from tests_paths import MISSION_DIR, without_triggers


@pytest.fixture(scope="module")
def s5p():
    return load_mission(MISSION_DIR / "s5p.yaml")


@pytest.fixture(scope="module")
def sky():
    return load_mission(MISSION_DIR / "sky.yaml")


def test_both_samples_validate_together() -> None:
    codes = [m.code for m in load_missions(sorted(MISSION_DIR.glob("*.yaml")))]
    assert sorted(codes) == ["S5P", "SKY"]


def test_s5p_orbits_are_101_minutes_and_gap_free(s5p) -> None:
    orbits = s5p.orbits["S5P"]
    assert len(orbits) > 10_000
    assert all(o.stop - o.start == timedelta(minutes=101) for o in orbits)
    assert all(b.start == a.stop and b.number == a.number + 1 for a, b in itertools.pairwise(orbits))


def test_s5p_chain_shape(s5p) -> None:
    cfg = s5p.config
    inputs = {t for t in cfg.product_classes if cfg.producer_of(t) is None}
    assert inputs == {
        "L0__ODB_1_",
        "L0__ODB_4_",
        "L0__ODB_6_",
        "L0__ENG_A_",
        "AUX_L1_CKD",
        "AUX_MET_TP",
        "AUX_CTMFCT",
        "AUX_NISE__",
    }
    # L1B bands are components made by the L1B processor in the run of their enclosing class.
    assert cfg.producer_of("L1B_RA_BD4") == "L01B"
    assert cfg.enclosing_of("L1B_RA_BD4") == "L1B_______"
    l2 = [t for t, pc in cfg.product_classes.items() if pc.level and pc.level.value == "L2"]
    assert len(l2) >= 3 and all(cfg.product_classes[t].slicing.type is SlicingType.ORBIT for t in l2)
    assert cfg.product_classes["L3__NO2___"].slicing.type is SlicingType.CALENDAR_DAY
    # Two L01B versions where string order and version order disagree on nothing here, but the
    # newest by version must be 02.10.00 (as strings, "02.10.00" < "02.9..." would bite).
    versions = [v.version for v in cfg.processors["L01B"].versions]
    assert "02.10.00" in versions
    # AUX inputs of the L2 classes are chosen by validity policies.
    no2_rules = " ".join(r.rule for r in cfg.product_classes["L2__NO2___"].selection_rules)
    assert "FOR AUX_CTMFCT SELECT LatestValCover" in no2_rules
    assert any(r.mode == "NRTI" for r in cfg.product_classes["L2__NO2___"].selection_rules)


def test_sky_chain_shape(sky) -> None:
    cfg = sky.config
    assert sky.orbits == {}
    assert {t for t in cfg.product_classes if cfg.producer_of(t) is None} == {
        "RAW_EXP",
        "CAL_BIAS",
        "CAL_FLAT",
        "REF_CAT",
    }
    calexp_rules = [r.rule for r in cfg.product_classes["CALEXP_G"].selection_rules]
    assert any(r.startswith("FOR RAW_EXP/filter:g ") for r in calexp_rules)
    assert any(r.startswith("FOR CAL_BIAS ") for r in calexp_rules)
    assert any(r.startswith("FOR CAL_FLAT/filter:g ") for r in calexp_rules)
    assert cfg.product_classes["OBJ_CAT"].slicing.type is SlicingType.CALENDAR_MONTH
    assert cfg.producer_of("STACK_R") == "COADD"


@pytest.mark.parametrize(
    ("mission", "ptype", "name", "expected"),
    [
        (
            "s5p",
            "L0__ODB_1_",
            "S5P_OPER_L0__ODB_1__20250301T000000_20250301T014100_37845_20250301T020000.RAW",
            {"orbit": 37845, "file_class": "OPER", "start": datetime(2025, 3, 1, tzinfo=UTC)},
        ),
        (
            "s5p",
            "AUX_MET_TP",
            "S5P_OPER_AUX_MET_TP_20250301T000000_20250301T060000_20250228T180000.nc",
            {
                "stop": datetime(2025, 3, 1, 6, tzinfo=UTC),
                "generation": datetime(2025, 2, 28, 18, tzinfo=UTC),
            },
        ),
        (
            "sky",
            "RAW_EXP",
            "SKY_OPER_RAW_EXP_r_20250301T101500_20250301T102000_004711.fits",
            {"parameters": {"filter": "r", "exposure_id": "004711"}},
        ),
        (
            "sky",
            "CAL_FLAT",
            "SKY_TEST_CAL_FLAT_g_20250301T000000_20250315T000000_20250228T120000.fits",
            {"file_class": "TEST", "parameters": {"filter": "g"}},
        ),
    ],
)
def test_input_file_names_identify_their_class(mission, ptype, name, expected, request) -> None:
    loaded = request.getfixturevalue(mission)
    assert loaded.classes_matching(name) == [ptype]
    meta = loaded.read_file_name(ptype, name)
    for key, value in expected.items():
        assert getattr(meta, key) == value


def test_every_class_template_renders_and_reads_back(s5p, sky) -> None:
    start = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    for loaded in (s5p, sky):
        cfg = loaded.config
        for ptype in cfg.product_classes:
            values = {
                "mission": cfg.mission.code,
                "file_class": cfg.mission.file_classes[0],
                "mode": cfg.mission.processing_modes[0],
                "product_type": ptype,
                "start": start,
                "stop": start + timedelta(hours=1),
                "generation": start + timedelta(hours=2),
                "orbit": 37001,
                "collection": 3,
                "filter": "g",
                "exposure_id": 17,
            }
            name = render(cfg.class_template(ptype), values)
            assert ptype in loaded.classes_matching(name), name
            meta = loaded.read_file_name(ptype, name)
            assert meta is not None and meta.start is not None
            # Round trip at the template's own precision: the metadata read back renders the same name.
            back = {
                **values,
                "start": meta.start,
                "stop": meta.stop or values["stop"],
                "generation": meta.generation or values["generation"],
            }
            assert render(cfg.class_template(ptype), back) == name


def test_configured_processors_cover_every_version_and_configuration(s5p) -> None:
    ids = {c.id for c in s5p.config.configured_processors() if c.processor == "L01B"}
    assert ids == {
        "L01B_02.01.00_2025.01",
        "L01B_02.01.00_2025.01-rpro",
        "L01B_02.10.00_2025.01",
        "L01B_02.10.00_2025.01-rpro",
    }


def test_digest_ignores_comments_but_not_meaning(tmp_path) -> None:
    text = (MISSION_DIR / "sky.yaml").read_text()
    a = tmp_path / "a.yaml"
    a.write_text("# a new comment\n" + text)
    b = tmp_path / "b.yaml"
    b.write_text(text.replace("max_concurrent_job_steps: 64", "max_concurrent_job_steps: 65"))
    base = load_mission(MISSION_DIR / "sky.yaml").digest
    assert load_mission(a).digest == base
    assert load_mission(b).digest != base


def test_a_slicing_anchor_is_stored_only_when_given(tmp_path) -> None:
    """Configurations without an anchor dump as before (same digest, no new revision on
    load); one with an anchor keeps it through the stored revision's JSON."""
    plain = load_mission(MISSION_DIR / "sky.yaml")
    dumped = dump_config(plain.config)
    assert all("anchor" not in pc["slicing"] for pc in dumped["product_classes"].values())
    text = without_triggers((MISSION_DIR / "sky.yaml").read_text())
    daily = "  CALEXP_G:\n    description: Bias-subtracted, flat-fielded exposures of one night in g\n"
    daily += "    level: L1\n    processor: CALIB\n    slicing: {type: CALENDAR_DAY}\n"
    hourly = daily.replace(
        "{type: CALENDAR_DAY}", '{type: TIME_SLICE, duration: 2h, anchor: "2025-01-01T01:15:00+01:00"}'
    )
    assert text.count(daily) == 1
    (tmp_path / "sky.yaml").write_text(text.replace(daily, hourly))
    anchored = load_mission(tmp_path / "sky.yaml")
    assert anchored.digest != plain.digest
    stored = dump_config(anchored.config)
    assert stored["product_classes"]["CALEXP_G"]["slicing"]["anchor"] == "2025-01-01T00:15:00Z"
    assert anchored.config.product_classes["CALEXP_G"].slicing.anchor == datetime(
        2025, 1, 1, 0, 15, tzinfo=UTC
    )
    assert MissionConfig.model_validate(stored) == anchored.config
