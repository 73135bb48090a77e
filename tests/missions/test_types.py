"""Value parsing shared by configs, orders and the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proseo.missions.types import (
    ParameterType,
    format_duration,
    format_utc,
    parse_duration,
    parse_quantity,
    parse_utc,
    quantity_value,
    version_key,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (6060, 6060),
        ("6060s", 6060),
        ("101 min", 6060),
        ("101m", 6060),
        ("2h", 7200),
        ("30d", 2592000),
        ("1w", 604800),
        ("250ms", 0.25),
        ("PT1H41M", 6060),
        ("P1D", 86400),
        ("P1DT12H", 129600),
        ("0", 0),
    ],
)
def test_durations_in_every_accepted_form(text: object, seconds: float) -> None:
    assert parse_duration(text if text != "0" else 0) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["2 hours", "-5s", "P", "PT", "1.5.3h", True, -1, None, "12hh"])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("99999999999999 d", r"too long \(at most 999999999 days\)"),
        ("P99999999999W", "too long"),
        (10**20, "too long"),
        (1e300, "too long"),
        (float("nan"), "finite number"),
        (float("inf"), "finite number"),
    ],
)
def test_durations_beyond_the_calendar_are_value_errors(bad: object, message: str) -> None:
    """pydantic turns ValueError into a located error; OverflowError would escape as a crash."""
    with pytest.raises(ValueError, match=message):
        parse_duration(bad)


@pytest.mark.parametrize("seconds", [6060, 86400, 7200, 0.25, 90, 1209600])
def test_duration_formatting_round_trips(seconds: float) -> None:
    d = timedelta(seconds=seconds)
    assert parse_duration(format_duration(d)) == d


def test_utc_parsing_normalises_to_aware_utc() -> None:
    expected = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
    assert parse_utc("2025-03-01T00:00:00Z") == expected
    assert parse_utc("2025-03-01T01:00:00+01:00") == expected
    assert parse_utc("2025-03-01T00:00:00") == expected  # naive means UTC
    assert parse_utc(datetime(2025, 3, 1)) == expected
    assert format_utc(expected) == "2025-03-01T00:00:00Z"
    assert format_utc(expected.replace(microsecond=5)) == "2025-03-01T00:00:00.000005Z"
    open_start = datetime(1, 1, 1, tzinfo=UTC)  # the open bound of sensing windows
    assert format_utc(open_start) == "0001-01-01T00:00:00Z"
    assert parse_utc(format_utc(open_start)) == open_start
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_utc("1st of March")


def test_quantities() -> None:
    assert parse_quantity(2) == "2"
    assert parse_quantity("500m") == "500m"
    assert quantity_value("500m") == 0.5
    assert quantity_value("4Gi") == 4 * 2**30
    assert quantity_value("1G") == 1e9
    for bad in ("4 GB", "0", "-1Gi", "lots", True):
        with pytest.raises(ValueError):
            parse_quantity(bad)


def test_versions_compare_as_versions_not_strings() -> None:
    assert version_key("02.10.00") > version_key("02.9.00")  # as strings it would be the reverse
    assert version_key("1.10") > version_key("1.9")
    assert version_key("2.0-rc1") < version_key("2.0.0")
    assert version_key("01.02.00") == version_key("1.2.0")
    assert max(["1.2.0", "1.10.0", "1.9.9"], key=version_key) == "1.10.0"


def test_parameter_types_coerce_file_name_text() -> None:
    assert ParameterType.INTEGER.coerce("004711") == 4711
    assert ParameterType.FLOAT.coerce("2.5") == 2.5
    assert ParameterType.BOOLEAN.coerce("true") is True
    assert ParameterType.STRING.coerce(3) == "3"
    with pytest.raises(ValueError):
        ParameterType.INTEGER.coerce("g")
    with pytest.raises(ValueError):
        ParameterType.BOOLEAN.coerce("maybe")
