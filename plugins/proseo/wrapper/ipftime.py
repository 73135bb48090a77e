"""Times as the Generic IPF interface writes them: ``yyyyMMdd_HHmmssffffff``, always UTC.

Job Orders carry sensing windows and input validities in this fixed-width format,
with two sentinels for open bounds. Processors written against the IPF specification
parse it with fixed offsets, so it is produced exactly, with all twelve time digits.
Only the standard library is used: sample processors import this through
:mod:`proseo.wrapper.joborder` and must start fast.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: An open start of a window ("since ever") and an open stop ("for ever").
OPEN_START = "00000000_000000000000"
OPEN_STOP = "99999999_999999999999"
#: The earliest and latest instants, which the open bounds stand for.
MIN_TIME = datetime.min.replace(tzinfo=UTC)
MAX_TIME = datetime.max.replace(tzinfo=UTC)
_PATTERN = re.compile(r"^\d{8}_\d{12}$")
_FORMAT = "%Y%m%d_%H%M%S%f"


class IpfTimeError(ValueError):
    """A text is not an IPF time."""


def format_ipf_time(value: datetime) -> str:
    """``yyyyMMdd_HHmmssffffff`` of an instant (naive means UTC); the extremes become open bounds."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value == MIN_TIME:
        return OPEN_START
    if value == MAX_TIME:
        return OPEN_STOP
    return f"{value.year:04d}{value.month:02d}{value.day:02d}_{value:%H%M%S}{value.microsecond:06d}"


def parse_ipf_time(text: str) -> datetime:
    """The UTC instant of an IPF time; the open bounds become the earliest and latest instants."""
    text = text.strip()
    if not _PATTERN.match(text):
        raise IpfTimeError(f"{text!r} is not a time in the format yyyyMMdd_HHmmssffffff")
    if text == OPEN_START:
        return MIN_TIME
    if text == OPEN_STOP:
        return MAX_TIME
    try:
        return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise IpfTimeError(f"{text!r} is not a valid date and time ({exc})") from None
