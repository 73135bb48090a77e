"""The YAML reader keeps lines, refuses duplicates, expands variables, reads booleans strictly."""

from __future__ import annotations

import pytest

from proseo.errors import ConfigError
from proseo.missions.yamlsource import load_yaml


def test_lines_are_recorded_for_keys_and_items() -> None:
    doc = load_yaml("x.yaml", text="a:\n  b: 1\n  c:\n    - x\n    - y: 2\n")
    assert doc.data == {"a": {"b": 1, "c": ["x", {"y": 2}]}}
    assert doc.line_of(("a", "b")) == 2
    assert doc.line_of(("a", "c", 1, "y")) == 5
    assert doc.line_of(("a", "c", 1, "missing")) == 5  # deepest existing part


def test_pydantic_locations_with_union_tags_resolve_to_the_data() -> None:
    doc = load_yaml("x.yaml", text="a:\n  b:\n    c: 1\n")
    assert doc.resolve(("a", "function-after[x]", "b", "c")) == (("a", "b", "c"), 3)
    assert doc.resolve(("a", "b", "missing_key")) == (("a", "b", "missing_key"), 2)


def test_duplicate_keys_are_errors_with_both_lines() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("x.yaml", text="a: 1\nb: 2\na: 3\n")
    (issue,) = info.value.issues
    assert (issue.path, issue.line) == ("a", 3)
    assert "first defined on line 1" in issue.message


def test_yaml_1_2_booleans_keep_words_like_no_and_on_as_text() -> None:
    doc = load_yaml("x.yaml", text="modes: [NO, ON, yes, off]\nflag: true\nother: False\n")
    assert doc.data == {"modes": ["NO", "ON", "yes", "off"], "flag": True, "other": False}


def test_environment_variables_expand_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROSEO_T_ROOT", "/data")
    monkeypatch.delenv("PROSEO_T_UNSET", raising=False)
    doc = load_yaml(
        "x.yaml",
        text="a: file://${PROSEO_T_ROOT}/x\nb: ${PROSEO_T_UNSET:-/d}\nc: cost $$5\nd: 'regex\\.nc$'\n",
    )
    assert doc.data == {"a": "file:///data/x", "b": "/d", "c": "cost $5", "d": "regex\\.nc$"}


def test_syntax_errors_name_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("x.yaml", text="a:\n  b: [1, 2\nc: 3\n")
    (issue,) = info.value.issues
    assert issue.line is not None and issue.line >= 2
    assert "YAML syntax error" in issue.message and "column" in issue.message


def test_empty_and_unreadable_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="empty"):
        load_yaml("x.yaml", text="# nothing\n")
    with pytest.raises(ConfigError, match="cannot read file"):
        load_yaml(tmp_path / "missing.yaml")
