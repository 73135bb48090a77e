"""Product file names: render them from a template and read metadata back out of them.

A template such as
``S5P_{mode}_{product_type}_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:05d}.nc``
is written once per class. The planner renders it for planned outputs; ingestion
compiles the same template into a regular expression that recovers sensing start and
stop, orbit, mode, file class and free parameters from a delivered file's name. A
class may instead give an explicit regular expression with named groups.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

TIME_FIELDS = frozenset({"start", "stop", "generation"})
INT_FIELDS = frozenset({"orbit"})
TEXT_FIELDS = frozenset({"mission", "file_class", "mode", "product_type"})
KNOWN_FIELDS = TIME_FIELDS | INT_FIELDS | TEXT_FIELDS

_STRFTIME_WIDTH = {
    "Y": r"\d{4}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
    "f": r"\d{6}",
    "j": r"\d{3}",
    "y": r"\d{2}",
}
_INT_SPEC = re.compile(r"^(0?)(\d*)d$")


class TemplateError(ValueError):
    """A template or pattern cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class _Field:
    name: str
    spec: str


def template_fields(template: str) -> list[_Field]:
    """Fields of a template, in order; raises TemplateError on malformed braces."""
    return list(_fields(template))


@lru_cache(maxsize=1024)
def _fields(template: str) -> tuple[_Field, ...]:
    """Parsed once per template (a plan names every output; errors are not cached)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"malformed template {template!r}: {exc}") from exc
    fields = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise TemplateError(f"template field {{{name}}} must be a plain name")
        if conversion:
            raise TemplateError(f"template field {{{name}!{conversion}}}: conversions are not allowed")
        if name in TIME_FIELDS and not spec:
            raise TemplateError(f"time field {{{name}}} needs a format such as {{{name}:%Y%m%dT%H%M%S}}")
        if name in TIME_FIELDS:
            _time_regex(spec or "")  # ingestion reads every name back: refuse what it could not
        fields.append(_Field(name, spec or ""))
    return tuple(fields)


def render(template: str, values: Mapping[str, Any]) -> str:
    """Render a file name; a missing field is an error naming it."""
    missing = [f.name for f in _fields(template) if f.name not in values]
    if missing:
        raise TemplateError(f"no value for template field(s) {', '.join(sorted(set(missing)))}")
    try:
        return template.format(**values)
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"cannot render {template!r}: {exc}") from exc


def _time_regex(spec: str) -> str:
    out, i = "", 0
    while i < len(spec):
        ch = spec[i]
        if ch == "%" and i + 1 < len(spec):
            code = spec[i + 1]
            if code not in _STRFTIME_WIDTH:
                raise TemplateError(f"time format %{code} cannot be read back from a file name")
            out += _STRFTIME_WIDTH[code]
            i += 2
        else:
            out += re.escape(ch)
            i += 1
    return out


def compile_template(
    template: str,
    *,
    product_type: str,
    mission: str,
    file_classes: Collection[str],
    modes: Collection[str],
) -> re.Pattern[str]:
    """Turn a template into an anchored regex with one named group per field."""
    out = "^"
    seen: set[str] = set()
    for literal, name, spec, _conv in string.Formatter().parse(template):
        out += re.escape(literal)
        if name is None:
            continue
        if name in seen:
            out += f"(?P={name})"
            continue
        seen.add(name)
        if name in TIME_FIELDS:
            body = _time_regex(spec or "")
        elif name == "product_type":
            body = re.escape(product_type)
        elif name == "mission":
            body = re.escape(mission)
        elif name in ("file_class", "mode"):
            choices = file_classes if name == "file_class" else modes
            body = "|".join(re.escape(c) for c in sorted(choices, key=len, reverse=True)) or ".+?"
        elif (int_spec := _INT_SPEC.match(spec or "")) is not None:
            zero, width = int_spec.groups()
            body = rf"\d{{{width}}}" if zero and width else r"\d+"
        else:
            body = ".+?"
        out += f"(?P<{name}>{body})"
    return re.compile(out + "$")


@dataclass(frozen=True)
class NameMetadata:
    """What a file name says about its product."""

    start: datetime | None = None
    stop: datetime | None = None
    generation: datetime | None = None
    orbit: int | None = None
    file_class: str | None = None
    mode: str | None = None
    parameters: Mapping[str, str] | None = None


def read_name(pattern: re.Pattern[str], name: str, *, time_formats: Mapping[str, str]) -> NameMetadata | None:
    """Match a file name; ``None`` if it does not match. Times are UTC.

    ``time_formats`` gives the strftime format per time field (from the template, or
    the class's ``time_format`` for explicit patterns). Raises ValueError when a group
    matches but does not parse (for example month 13).
    """
    match = pattern.match(name)
    if match is None:
        return None
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    times: dict[str, datetime] = {}
    for field in TIME_FIELDS & groups.keys():
        fmt = time_formats.get(field, "%Y%m%dT%H%M%S")
        try:
            times[field] = datetime.strptime(groups[field], fmt).replace(tzinfo=UTC)
        except ValueError as exc:
            raise ValueError(f"{field} {groups[field]!r} does not match format {fmt}: {exc}") from exc
    params = {k: v for k, v in groups.items() if k not in KNOWN_FIELDS}
    return NameMetadata(
        start=times.get("start"),
        stop=times.get("stop"),
        generation=times.get("generation"),
        orbit=int(groups["orbit"]) if "orbit" in groups else None,
        file_class=groups.get("file_class"),
        mode=groups.get("mode"),
        parameters=params,
    )


def template_time_formats(template: str) -> dict[str, str]:
    """The strftime format of each time field in a template."""
    return {f.name: f.spec for f in template_fields(template) if f.name in TIME_FIELDS}
