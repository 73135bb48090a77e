"""The YAML reader keeps lines, refuses duplicates, expands variables, reads booleans strictly."""

from __future__ import annotations

import pytest

from proseo.errors import ConfigError
from proseo.missions.yamlsource import MAX_ALIAS_NODES, MAX_DEPTH, load_yaml


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


# --- hostile input: every case ends quickly in one located ConfigError ------------------------


def _bomb(levels: int) -> str:
    """The classic alias bomb: each level lists the previous one nine times (9**levels leaves)."""
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [7, 8, 12])
def test_an_alias_bomb_is_refused_at_once_naming_the_budget(levels: int) -> None:
    import time

    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_yaml("bomb.yaml", text=_bomb(levels))
    assert time.monotonic() - started < 2.0
    (issue,) = info.value.issues
    assert issue.file == "bomb.yaml" and issue.line is not None
    assert f"more than {MAX_ALIAS_NODES} values" in issue.message


def test_aliases_within_the_budget_still_work() -> None:
    doc = load_yaml("x.yaml", text="a: &n {k: [1, 2]}\nb: *n\nc: [*n, *n]\n")
    assert doc.data == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}, "c": [{"k": [1, 2]}, {"k": [1, 2]}]}


@pytest.mark.parametrize(
    "text",
    ["a: &x [*x]\n", "a: &x {b: *x}\n", "a: &x {<<: *x}\n", "a:\n  - &x [1, [2, *x]]\n"],
    ids=["list", "mapping", "merge", "nested"],
)
def test_a_value_that_contains_itself_is_refused_with_its_line(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("self.yaml", text=text)
    (issue,) = info.value.issues
    assert issue.line is not None and "contains itself" in issue.message


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n",
        "".join("  " * i + f"k{i}:\n" for i in range(1500)) + "  " * 1500 + "v\n",
    ],
    ids=["flow-lists", "flow-maps", "block-maps"],
)
def test_deep_nesting_is_a_located_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("deep.yaml", text=text)
    (issue,) = info.value.issues
    assert issue.line is not None and f"deeper than {MAX_DEPTH} levels" in issue.message


def test_deep_nesting_built_from_aliases_is_refused_too() -> None:
    inner = "[" * 40 + "1" + "]" * 40
    text = f"a: &a {inner}\nb: &b {'[' * 40}*a{']' * 40}\nc: &c {'[' * 40}*b{']' * 40}\n"
    with pytest.raises(ConfigError, match=f"deeper than {MAX_DEPTH} levels"):
        load_yaml("deep.yaml", text=text)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("a: 1\nb: !!python/name:os.system x\n", 2, "tag:yaml.org,2002:python/name:os.system"),
        ("a: !!python/object:os.Popen {args: [ls]}\n", 1, "tag:yaml.org,2002:python/object:os.Popen"),
        ("a:\n  - !custom [1]\n", 2, "!custom"),
        ("a: !!timestamp 2025-13-45\n", 1, "timestamp"),
        ("a: " + "9" * 5000 + "\n", 1, "4300 digits"),
        ("? [1, 2]\n: x\n", 1, "mapping keys must be strings"),
        ("? {a: [1]}\n: x\n", 1, "mapping keys must be strings"),
    ],
    ids=["python-name", "python-object", "custom", "bad-timestamp", "huge-int", "list-key", "map-key"],
)
def test_values_yaml_cannot_construct_are_located_errors(text: str, line: int, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("tags.yaml", text=text)
    (issue,) = info.value.issues
    assert issue.line == line and expected in issue.message, str(issue)


def test_merge_keys_merge_and_explicit_keys_win() -> None:
    doc = load_yaml("x.yaml", text="base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n")
    assert doc.data["c"] == {"x": 1, "y": 3}
    assert doc.line_of(("c", "y")) == 4
    with pytest.raises(ConfigError, match="merge key"):
        load_yaml("x.yaml", text="c:\n  <<: 5\n")
    late = load_yaml("x.yaml", text="base: &b {x: 1, y: 2}\nc:\n  y: 3\n  <<: *b\n")
    assert late.data["c"] == {"x": 1, "y": 3} and late.line_of(("c", "y")) == 3
