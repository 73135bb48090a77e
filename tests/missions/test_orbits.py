"""Orbits from a generator or a CSV file: bounded, and every bad input a located issue."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from proseo.errors import ConfigIssue
from proseo.missions.models import MAX_ORBIT_NUMBER, MAX_ORBITS, Orbits
from proseo.missions.orbits import build_orbits

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def _issue_at(loc: tuple[str | int, ...], message: str) -> ConfigIssue:
    return ConfigIssue("m.yaml", ".".join(map(str, loc)), 7, message)


def _build(spec: dict[str, Any], base_dir: Path = Path(".")) -> tuple[list[Any], list[ConfigIssue]]:
    return build_orbits(Orbits.model_validate(spec), base_dir=base_dir, issue_at=_issue_at, loc=("orbits",))


def test_a_generator_until_makes_the_orbits_that_start_before_until() -> None:
    orbits, issues = _build(
        {"generate": {"epoch": EPOCH, "period": "100 min", "until": EPOCH + timedelta(minutes=1001)}}
    )
    assert not issues and len(orbits) == 11
    assert orbits[-1].start == EPOCH + timedelta(minutes=1000) and orbits[0].number == 1
    assert all(a.stop == b.start for a, b in itertools.pairwise(orbits))


def test_a_tiny_period_is_refused_before_generating_anything() -> None:
    started = time.monotonic()
    orbits, issues = _build(
        {"generate": {"epoch": EPOCH, "period": "1 ms", "until": EPOCH + timedelta(days=730)}}
    )
    assert time.monotonic() - started < 1.0
    assert orbits == [] and [i.path for i in issues] == ["orbits.generate.period"]
    assert f"makes 63072000000 orbits; at most {MAX_ORBITS}" in issues[0].message


def test_the_largest_allowed_count_of_orbits_is_generated() -> None:
    orbits, issues = _build(
        {
            "generate": {
                "epoch": EPOCH,
                "period": "90 min",
                "until": EPOCH + timedelta(minutes=90 * MAX_ORBITS),
            }
        }
    )
    assert not issues and len(orbits) == MAX_ORBITS


def test_orbit_numbers_beyond_the_catalogue_column_are_refused() -> None:
    spec = {"generate": {"epoch": EPOCH, "period": "1 d", "count": 10, "first_orbit": MAX_ORBIT_NUMBER - 5}}
    orbits, issues = _build(spec)
    assert orbits == [] and issues[0].path == "orbits.generate.first_orbit"
    assert f"beyond {MAX_ORBIT_NUMBER}" in issues[0].message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a CSV orbit file"),
        (b"number,start,stop\n1," + b"x" * 200_000 + b",y\n", "not a CSV orbit file: field larger than"),
        (
            b"number,start,stop\n" + b"9" * 5000 + b",2025-01-01T00:00:00Z,2025-01-01T01:00:00Z\n",
            "bad orbit row",
        ),
        (b"number,start,stop\n1,2025-01-01T00:00:00Z\n", "bad orbit row"),
        (b"a,b\n1,2\n", "the header must name the columns number,start,stop"),
    ],
    ids=["binary", "huge-field", "huge-number", "short-row", "header"],
)
def test_a_bad_orbit_file_is_a_located_issue(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "orbits.csv").write_bytes(content)
    orbits, issues = _build({"file": "orbits.csv"}, base_dir=tmp_path)
    assert orbits == [] and issues and message in issues[0].message, issues
    assert issues[0].line is not None
