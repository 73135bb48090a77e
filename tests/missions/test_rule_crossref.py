"""Mission checks read selection rules with the real parser (sources, ELSE alternatives, errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from proseo.errors import ConfigError
from proseo.missions import load_mission
from proseo.missions.crossref import rule_sources

BROKEN = Path(__file__).parent / "broken"


def test_rule_sources_name_every_alternative_with_its_offset() -> None:
    text = "FOR RAW/band:g SELECT LastCreated ELSE for AUX SELECT LatestValidity; FOR L0 SELECT LastCreated"
    assert rule_sources(text) == [("RAW", 4), ("AUX", 43), ("L0", 74)]
    assert all(text[offset:].startswith(name) for name, offset in rule_sources(text))


@pytest.mark.parametrize("text", ["", "FOR", "FOR RAW SELECT Nope", "SELECT FOR RAW"])
def test_a_rule_that_does_not_parse_has_no_sources(text: str) -> None:
    assert rule_sources(text) == []


def test_a_dependency_through_an_else_alternative_closes_a_cycle(tmp_path: Path) -> None:
    source = BROKEN / "04_product_cycle.yaml"
    text = source.read_text().replace(
        "- rule: FOR L2 SELECT ValIntersect(0, 0)",
        "- rule: FOR RAW SELECT LastCreated ELSE FOR L2 SELECT ValIntersect(0, 0)",
    )
    assert "ELSE FOR L2" in text
    with pytest.raises(ConfigError) as info:
        load_mission(tmp_path / "cycle.yaml", text=text)
    assert [i.message for i in info.value.issues] == ["the product graph has a cycle: L1 -> L2 -> L1"]


def test_a_rule_syntax_error_is_the_only_issue_of_its_rule(tmp_path: Path) -> None:
    text = (
        (BROKEN / "03_rule_unknown_class.yaml")
        .read_text()
        .replace("FOR RAWW SELECT ValIntersect(0, 0)", "FOR RAWW SELECT ValIntersect(0, 0) MINCOVER(120)")
    )
    with pytest.raises(ConfigError) as info:
        load_mission(tmp_path / "bad.yaml", text=text)
    (issue,) = info.value.issues
    assert issue.path == "product_classes.L1.selection_rules[0].rule" and issue.line == 17
    assert issue.message == "character 44: MINCOVER(120) is out of range; expected a percentage 0..100"
