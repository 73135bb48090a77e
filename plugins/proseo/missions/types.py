"""Value types shared by mission configurations, orders and the catalogue.

Durations, UTC instants, Kubernetes quantities and version strings each appear in
many places; parsing them once here keeps error messages uniform ("6060s",
"PT1H41M" and "101 min" all mean the same duration everywhere).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
}
_SIMPLE_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)\s*$")
_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: Any) -> timedelta:
    """Accept seconds (number), ``"6060s"``, ``"101 min"``, ``"2h"``, ``"30d"`` or ISO 8601.

    Everything wrong is a ValueError (pydantic reports those with the field), including
    NaN, infinity and durations beyond ``timedelta.max``, which Python reports otherwise.
    """
    try:
        return _duration(value)
    except OverflowError:
        raise ValueError(f"duration {value!r} is too long (at most {timedelta.max.days} days)") from None


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"a duration must be a finite number of seconds, not {value!r}")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as '6060s' or 'PT1H41M', got {value!r}")
    match = _SIMPLE_DURATION.match(value)
    if match:
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    match = _ISO_DURATION.match(value.strip().upper())
    if match and value.strip().upper() not in ("P", "PT") and not value.strip().upper().endswith("T"):
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        return timedelta(
            weeks=parts.get("w", 0),
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    raise ValueError(
        f"invalid duration {value!r}: use a number of seconds, '<n><unit>' with unit "
        "ms|s|min|h|d|w (e.g. '6060s', '2h') or ISO 8601 (e.g. 'PT1H41M')"
    )


def format_duration(value: timedelta) -> str:
    """Compact, loss-free rendering used when configurations are stored."""
    total = value.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("min", 60)):
        if total and total % size == 0:
            return f"{int(total // size)}{unit}"
    return f"{total:g}s" if total != int(total) else f"{int(total)}s"


def parse_utc(value: Any) -> datetime:
    """Parse an instant; naive values are UTC, aware ones are converted to UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(
                f"invalid time {value!r}: expected ISO 8601 UTC such as 2024-03-01T00:00:00Z"
            ) from exc
    else:
        raise ValueError(f"expected an ISO 8601 time, got {value!r}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """ISO 8601 with a Z suffix and microseconds only when present."""
    value = value.astimezone(UTC)
    # %Y does not zero-pad years below 1000 on glibc; the open bound 0001-01-01 must round-trip.
    text = f"{value.year:04d}-" + value.strftime("%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
UtcDateTime = Annotated[
    datetime,
    BeforeValidator(parse_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]

_QUANTITY = re.compile(r"^\d+(?:\.\d+)?(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def parse_quantity(value: Any) -> str:
    """Validate a Kubernetes resource quantity (``"500m"``, ``"2Gi"``, ``2``)."""
    if isinstance(value, bool):
        raise ValueError("a quantity cannot be a boolean")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("a quantity must be positive")
        return f"{value:g}"
    if isinstance(value, str) and _QUANTITY.match(value.strip()):
        if quantity_value(value) <= 0:
            raise ValueError("a quantity must be positive")
        return value.strip()
    raise ValueError(f"invalid quantity {value!r}: expected e.g. '500m', '2', '512Mi', '4Gi'")


def quantity_value(value: str) -> float:
    """Numeric value of a quantity (cores for cpu, bytes for memory and disk)."""
    match = re.match(r"^(\d+(?:\.\d+)?)([A-Za-z]*)$", value.strip())
    if not match:
        raise ValueError(f"invalid quantity {value!r}")
    number, suffix = float(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL.get(suffix, 1.0)


Quantity = Annotated[str, BeforeValidator(parse_quantity)]


def _quoted_text(value: Any) -> Any:
    """Refuse numbers where text is meant: YAML reads ``1.10`` as the float 1.1."""
    if isinstance(value, bool | int | float):
        raise ValueError(
            f"{value!r} was read as a number; quote it (for example '{value}') so that "
            "versions such as '1.10' keep their digits"
        )
    return value


VersionText = Annotated[str, BeforeValidator(_quoted_text)]


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing versions as versions: ``"01.10.00" > "01.9.00"``.

    Numeric parts compare as numbers; a textual part (``rc1``, ``beta``) sorts below
    a numeric one, so ``2.0-rc1 < 2.0.0``.
    """
    parts: list[tuple[int, int | str]] = []
    for token in re.findall(r"\d+|[A-Za-z]+", version):
        parts.append((1, int(token)) if token.isdigit() else (0, token.lower()))
    return tuple(parts)


class SlicingType(StrEnum):
    ORBIT = "ORBIT"
    CALENDAR_DAY = "CALENDAR_DAY"
    CALENDAR_MONTH = "CALENDAR_MONTH"
    CALENDAR_YEAR = "CALENDAR_YEAR"
    TIME_SLICE = "TIME_SLICE"
    NONE = "NONE"


class Visibility(StrEnum):
    INTERNAL = "INTERNAL"
    RESTRICTED = "RESTRICTED"
    PUBLIC = "PUBLIC"


class ProcessingLevel(StrEnum):
    L0 = "L0"
    L1 = "L1"
    L1A = "L1A"
    L1B = "L1B"
    L1C = "L1C"
    L2 = "L2"
    L2A = "L2A"
    L2B = "L2B"
    L2C = "L2C"
    L3 = "L3"
    L4 = "L4"


class JobOrderDialect(StrEnum):
    MMFI_1_8 = "MMFI_1_8"
    GMES_1_1 = "GMES_1_1"


class Backend(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"
    SLURM = "slurm"


class ParameterType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"

    def coerce(self, value: Any) -> Any:
        """Convert a raw value (often text from a file name) to this type."""
        if self is ParameterType.STRING:
            return str(value)
        if self is ParameterType.INTEGER:
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is not an integer")
            return int(value)
        if self is ParameterType.FLOAT:
            return float(value)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError(f"{value!r} is not a boolean")
