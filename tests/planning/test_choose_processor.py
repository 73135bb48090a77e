"""Choosing the configured processor for an order: pin, then mode, then newest version."""

from __future__ import annotations

from functools import cache

import pytest

from proseo.missions import MissionConfig, load_mission
from proseo.planning.choose import configuration_modes, rank_processors

from tests_paths import MISSION_DIR

S5P_PATH = MISSION_DIR / "s5p.yaml"
S5P_TEXT = S5P_PATH.read_text(encoding="utf-8")

L01B_RPRO_CONFIG = """\
      - version: "2025.01-rpro"
        modes: [RPRO]
        dynamic_parameters: {calibration_level: full, reprocessing: true}
"""


@cache
def s5p() -> MissionConfig:
    return load_mission(S5P_PATH).config


def variant(*replacements: tuple[str, str]) -> MissionConfig:
    """The S5P sample with text replaced; every replacement must apply."""
    text = S5P_TEXT
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return load_mission(S5P_PATH, text=text).config


def ids(cfg: MissionConfig, processor: str, mode: str, pins: list[str] | None = None) -> list[str]:
    ranked, _ = rank_processors(cfg, processor, mode, pins or [])
    assert all(cp.processor == processor for cp in ranked)
    return [cp.id for cp in ranked]


# --- the sample mission ---------------------------------------------------------------------


def test_sample_l01b_has_two_versions_times_two_configurations() -> None:
    assert sorted(cp.id for cp in s5p().configured_processors() if cp.processor == "L01B") == [
        "L01B_02.01.00_2025.01",
        "L01B_02.01.00_2025.01-rpro",
        "L01B_02.10.00_2025.01",
        "L01B_02.10.00_2025.01-rpro",
    ]


@pytest.mark.parametrize("mode", ["NRTI", "OFFL"])
def test_near_real_time_and_offline_use_the_newest_version_of_the_2025_01_configuration(mode: str) -> None:
    ranked, how = rank_processors(s5p(), "L01B", mode, [])
    assert [cp.id for cp in ranked] == ["L01B_02.10.00_2025.01", "L01B_02.01.00_2025.01"]
    assert (ranked[0].version, ranked[0].configuration) == ("02.10.00", "2025.01")
    assert how == f"newest version for mode {mode}"


def test_reprocessing_uses_the_rpro_configuration() -> None:
    ranked, how = rank_processors(s5p(), "L01B", "RPRO", [])
    assert [cp.id for cp in ranked] == ["L01B_02.10.00_2025.01-rpro", "L01B_02.01.00_2025.01-rpro"]
    assert how == "newest version for mode RPRO"


def test_a_configuration_listing_only_other_modes_is_never_used() -> None:
    for mode in ("NRTI", "OFFL"):
        assert not any(i.endswith("-rpro") for i in ids(s5p(), "L01B", mode))
    assert all(i.endswith("-rpro") for i in ids(s5p(), "L01B", "RPRO"))


def test_mode_no_configuration_serves_gives_no_candidate() -> None:
    ranked, _ = rank_processors(s5p(), "L01B", "TEST", [])
    assert ranked == []


@pytest.mark.parametrize("mode", ["NRTI", "OFFL", "RPRO"])
def test_configuration_without_modes_serves_every_mode(mode: str) -> None:
    assert ids(s5p(), "L2_NO2", mode) == ["L2_NO2_01.04.00_2025.01"]


# --- pins -------------------------------------------------------------------------------------


def test_a_pin_wins_over_the_newest_version() -> None:
    ranked, how = rank_processors(s5p(), "L01B", "NRTI", ["L01B_02.01.00_2025.01"])
    assert [cp.id for cp in ranked] == ["L01B_02.01.00_2025.01"]
    assert how == "pinned by the order"


def test_a_pin_wins_even_over_the_mode() -> None:
    assert ids(s5p(), "L01B", "NRTI", ["L01B_02.01.00_2025.01-rpro"]) == ["L01B_02.01.00_2025.01-rpro"]


def test_pins_of_other_processors_are_ignored() -> None:
    ranked, how = rank_processors(
        s5p(), "L01B", "NRTI", ["L2_NO2_01.04.00_2025.01", "L3_NO2_00.09.00_2025.01"]
    )
    assert ranked[0].id == "L01B_02.10.00_2025.01"
    assert how == "newest version for mode NRTI"


def test_unknown_pin_is_ignored() -> None:
    assert ids(s5p(), "L01B", "RPRO", ["L01B_99.00.00_2025.01"])[0] == "L01B_02.10.00_2025.01-rpro"


# --- versions ---------------------------------------------------------------------------------


def test_versions_compare_as_versions_not_strings() -> None:
    # "02.9.00" > "02.10.00" as strings, but 10 > 9 as versions.
    cfg = variant(('"02.01.00"', '"02.9.00"'))
    assert "02.9.00" > "02.10.00"
    assert ids(cfg, "L01B", "NRTI") == ["L01B_02.10.00_2025.01", "L01B_02.9.00_2025.01"]
    assert ids(cfg, "L01B", "RPRO") == ["L01B_02.10.00_2025.01-rpro", "L01B_02.9.00_2025.01-rpro"]


def test_newest_version_wins_whatever_order_the_versions_are_listed_in() -> None:
    # Swap the two version numbers: 02.10.00 is now listed first.
    cfg = variant(('"02.01.00"', '"TMP"'), ('"02.10.00"', '"02.01.00"'), ('"TMP"', '"02.10.00"'))
    versions = [v.version for v in cfg.processors["L01B"].versions]
    assert versions == ["02.10.00", "02.01.00"]
    assert ids(cfg, "L01B", "OFFL")[0] == "L01B_02.10.00_2025.01"


def test_newer_configuration_breaks_a_version_tie() -> None:
    # Two mode-less configurations of one version: 2025.10 is newer than 2025.9.
    cfg = variant(
        (
            "        dynamic_parameters: {threshold_cloud_fraction: 0.5}\n",
            "        dynamic_parameters: {threshold_cloud_fraction: 0.5}\n"
            '      - version: "2025.10"\n'
            '      - version: "2025.9"\n',
        )
    )
    assert ids(cfg, "L2_NO2", "OFFL") == [
        "L2_NO2_01.04.00_2025.10",
        "L2_NO2_01.04.00_2025.9",
        "L2_NO2_01.04.00_2025.01",
    ]


def test_configuration_naming_the_mode_wins_over_a_newer_one_naming_none() -> None:
    cfg = variant((L01B_RPRO_CONFIG, L01B_RPRO_CONFIG + '      - version: "2026.01"\n'))
    assert ids(cfg, "L01B", "NRTI") == [
        "L01B_02.10.00_2025.01",
        "L01B_02.01.00_2025.01",
        "L01B_02.10.00_2026.01",
        "L01B_02.01.00_2026.01",
    ]
    assert ids(cfg, "L01B", "RPRO")[:2] == ["L01B_02.10.00_2025.01-rpro", "L01B_02.01.00_2025.01-rpro"]
    # A mode no configuration names falls back to the mode-less one.
    assert ids(cfg, "L01B", "TEST") == ["L01B_02.10.00_2026.01", "L01B_02.01.00_2026.01"]


# --- listed configured processors --------------------------------------------------------------

LISTED = L01B_RPRO_CONFIG + (
    "    configured_processors:\n"
    '      - {id: L01B_NEW, version: "02.10.00", configuration: "2025.01", enabled: false}\n'
    '      - {id: L01B_OLD, version: "02.01.00", configuration: "2025.01"}\n'
    '      - {id: L01B_REPRO, version: "02.10.00", configuration: "2025.01-rpro"}\n'
)


def test_disabled_configured_processor_is_skipped() -> None:
    cfg = variant((L01B_RPRO_CONFIG, LISTED))
    assert ids(cfg, "L01B", "NRTI") == ["L01B_OLD"]
    assert ids(cfg, "L01B", "RPRO") == ["L01B_REPRO"]


def test_only_disabled_candidates_gives_none() -> None:
    cfg = variant(
        (
            L01B_RPRO_CONFIG,
            L01B_RPRO_CONFIG
            + "    configured_processors:\n"
            + '      - {id: L01B_OFF, version: "02.10.00", configuration: "2025.01", enabled: false}\n',
        )
    )
    assert ids(cfg, "L01B", "NRTI") == []


# --- the implicit default configuration --------------------------------------------------------


def test_processor_without_configurations_runs_the_default_one_in_every_mode() -> None:
    cfg = variant(
        (
            '        max_run_time: 1h\n    configurations:\n      - version: "2025.01"\n  L2_CH4:',
            "        max_run_time: 1h\n  L2_CH4:",
        )
    )
    for mode in ("NRTI", "OFFL", "RPRO"):
        assert ids(cfg, "L2_O3", mode) == ["L2_O3_01.04.00_default"]


def test_configuration_modes() -> None:
    cfg = s5p()
    assert configuration_modes(cfg, "L01B", "2025.01") == ["NRTI", "OFFL"]
    assert configuration_modes(cfg, "L01B", "2025.01-rpro") == ["RPRO"]
    assert configuration_modes(cfg, "L2_NO2", "2025.01") == []
    assert configuration_modes(cfg, "L01B", "default") == []
    assert configuration_modes(cfg, "L01B", "1999.01") is None
