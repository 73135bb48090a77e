"""The mission loader under random input: a located ConfigError, or a mission, and quickly.

Mission files arrive over the REST API too (``POST /missions/validate``), so the loader
is held to its contract on documents nobody would write: the sample missions with
lines deleted, duplicated, swapped or re-indented, values replaced by hostile ones
(huge numbers, NaN, unknown tags, aliases, deep nesting, impossible dates, durations
beyond the calendar, broken rules and templates), and parsed samples whose values
hypothesis replaces by arbitrary data. Whatever happens, ``load_mission`` (and
``describe``, which the API answers with) returns or raises ConfigError, never
anything else, within a couple of seconds per document.

About 300 documents per run, 10-20 s on one core; hypothesis keeps failing examples in its database.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proseo.errors import ConfigError
from proseo.missions import describe, load_mission

from tests_paths import MISSION_DIR

SAMPLES = {p.name: p.read_text() for p in sorted(MISSION_DIR.glob("*.yaml"))}
PARSED = {name: yaml.safe_load(text) for name, text in SAMPLES.items()}
PER_DOCUMENT_S = 3.0

HOSTILE = [
    "",
    "~",
    "null",
    "-1",
    "0",
    "1e309",
    ".nan",
    "-.inf",
    "9" * 5000,
    "-" + "9" * 30,
    "99999999999999 d",
    "1 ms",
    "0.000001s",
    "P99999999999W",
    "!!python/name:os.system",
    "!!python/object/apply:os.system [ls]",
    "!!binary AAAA",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!custom x",
    "*nowhere",
    "&x [*x]",
    "[" * 200 + "]" * 200,
    "{a: {b: {c: {d: [1, [2, [3]]]}}}}",
    "'${PROSEO_FUZZ_UNSET}'",
    "${PROSEO_FUZZ_UNSET:-}",
    "$$",
    "é✓\u202e",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "2025-02-30T00:00:00Z",
    "FOR X SELECT ValCover(" + "9" * 40 + " d, 0)",
    "FOR L1B_RA SELECT LatestValidity OR",
    "'(?P<x'",
    "'{product_type}{nope}{start:%Q}'",
    "'{start:' + '%Y' * 50 + '}'",
    "file:///etc/passwd",
    "s3://",
    "[]",
    "{}",
    "true",
    "NO",
    "-9223372036854775809",
    "18446744073709551616",
    "2147483648",
]


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """A sample mission with a few line-level edits."""
    lines = SAMPLES[draw(st.sampled_from(sorted(SAMPLES)))].splitlines()
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(
            st.sampled_from(["delete", "duplicate", "swap", "value", "indent", "insert", "truncate"])
        )
        line = lines[i]
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, line)
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], line
        elif action == "value":
            key, sep, _ = line.partition(": ")
            head = key if sep else line.rstrip().removesuffix(":")
            lines[i] = f"{head}: {draw(st.sampled_from(HOSTILE))}"
        elif action == "indent":
            lines[i] = " " * draw(st.integers(0, 12)) + line.lstrip()
        elif action == "insert":
            lines[i] = line[: draw(st.integers(0, len(line)))] + draw(st.text(max_size=8)) + line
        else:
            lines = lines[: i + 1]
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(HOSTILE)
    | st.datetimes()
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated_data(draw: st.DrawFn) -> str:
    """A parsed sample with values replaced by arbitrary data or removed, dumped back to YAML."""
    import copy

    data = copy.deepcopy(PARSED[draw(st.sampled_from(sorted(PARSED)))])
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_VALUES)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _only_config_errors(text: str) -> None:
    started = time.monotonic()
    try:
        loaded = load_mission("fuzz.yaml", text=text)
        describe(loaded)
    except ConfigError as exc:
        assert exc.issues and all(i.file == "fuzz.yaml" for i in exc.issues)
    elapsed = time.monotonic() - started
    assert elapsed < PER_DOCUMENT_S, f"{elapsed:.1f} s for one document"


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROSEO_FUZZ_UNSET", raising=False)


FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@FUZZ
@given(mutated_text())
def test_mutated_sample_text_gives_a_mission_or_a_config_error(text: str) -> None:
    _only_config_errors(text)


@FUZZ
@given(mutated_data())
def test_sample_data_with_arbitrary_values_gives_a_mission_or_a_config_error(text: str) -> None:
    _only_config_errors(text)


def _everywhere(text: str, value: str) -> str:
    """``text`` with the first occurrence of every distinct key's value replaced by ``value``."""
    lines, done = text.splitlines(), set()
    for i, line in enumerate(lines):
        key, sep, rest = line.partition(": ")
        name = key.strip().removeprefix("- ")
        if sep and rest.strip() and not line.lstrip().startswith("#") and name not in done:
            done.add(name)
            lines[i] = f"{key}: {value}"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_every_hostile_value_in_place_of_every_kind_of_value(sample: str) -> None:
    """Deterministic sweep: each hostile value replaces the first value of each key at once."""
    for value in HOSTILE:
        _only_config_errors(_everywhere(SAMPLES[sample], value))
