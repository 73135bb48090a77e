"""The PRIP's system query options other than the filter's grammar: paging, order, shape.

Parsed once into a frozen :class:`QueryOptions`, so the SQL translation and the JSON
rendering read the same validated values; every refusal is an :class:`ODataError`
naming the option (and, in a list, the character) to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from proseo.interfaces.odata_ast import Expr
from proseo.interfaces.odata_filter import parse_filter
from proseo.interfaces.odata_lexer import ODataError

DEFAULT_TOP = 20
MAX_TOP = 1000

#: Properties an answer may be ordered by (Checksum, ContentDate and the footprints cannot).
SORTABLE = (
    "Id",
    "Name",
    "ContentType",
    "ContentLength",
    "OriginDate",
    "PublicationDate",
    "ModificationDate",
    "EvictionDate",
    "Online",
    "ProductionType",
    "ContentDate/Start",
    "ContentDate/End",
)
#: The entity's structural properties, in the order answers list them.
PROPERTIES = (
    "Id",
    "Name",
    "ContentType",
    "ContentLength",
    "OriginDate",
    "PublicationDate",
    "ModificationDate",
    "EvictionDate",
    "Online",
    "Checksum",
    "ContentDate",
    "ProductionType",
    "Footprint",
    "GeoFootprint",
)
#: Navigation collections ``$expand`` accepts: all attributes, or those of one type.
EXPANDABLE = (
    "Attributes",
    "StringAttributes",
    "IntegerAttributes",
    "DoubleAttributes",
    "BooleanAttributes",
    "DateTimeOffsetAttributes",
)
# Characters left as they are in a next link's query (all legal there): keeps filters readable.
# ``$`` is encoded (%24): clients that look for a literal "$skip" in the link (EODAG) then
# read the link as a URL, which every client can.
_URL_SAFE = "/,:()'"
_KNOWN = ("$filter", "$orderby", "$top", "$skip", "$count", "$select", "$expand", "$format")


@dataclass(frozen=True)
class OrderKey:
    property: str  # one of SORTABLE
    descending: bool = False


@dataclass(frozen=True)
class QueryOptions:
    filter: Expr | None = None
    filter_text: str = ""  # what the client sent, for the translation's error messages
    orderby: tuple[OrderKey, ...] = ()
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] | None = None  # None: every property
    expand: tuple[str, ...] = ()


def parse_options(params: Mapping[str, str]) -> QueryOptions:
    """Validate the query's ``$`` options; other parameters (tokens, ...) are left to the caller."""
    for key in params:
        if key.startswith("$") and key not in _KNOWN:
            raise ODataError(key, "", None, f"unknown query option (supported: {', '.join(_KNOWN)})")
    if params.get("$format", "json").lower() not in ("json", "application/json"):
        raise ODataError("$format", params["$format"], None, "only json is supported")
    text = params.get("$filter")
    return QueryOptions(
        filter=parse_filter(text) if text is not None and text.strip() else None,
        filter_text=text or "",
        orderby=parse_orderby(params.get("$orderby", "")),
        top=_top(params.get("$top")),
        skip=_integer("$skip", params.get("$skip"), 0, 0, None),
        count=_boolean("$count", params.get("$count")),
        select=_names("$select", params["$select"], PROPERTIES) if "$select" in params else None,
        expand=_names("$expand", params.get("$expand", ""), EXPANDABLE),
    )


def parse_orderby(text: str) -> tuple[OrderKey, ...]:
    """``key [asc|desc], ...``: several keys, each sortable and named once."""
    keys: list[OrderKey] = []
    for offset, item in _items("$orderby", text):
        m = re.fullmatch(r"(\S+)(?:\s+(\S+))?\s*", item)
        if not m:
            raise ODataError("$orderby", text, offset, "expected a property name")
        prop, direction = m.group(1), (m.group(2) or "asc")
        if prop not in SORTABLE:
            raise ODataError(
                "$orderby", text, offset, f"cannot order by {prop!r} (one of {', '.join(SORTABLE)})"
            )
        if direction.lower() not in ("asc", "desc"):
            raise ODataError("$orderby", text, offset + m.start(2), "expected 'asc' or 'desc'")
        if any(k.property == prop for k in keys):
            raise ODataError("$orderby", text, offset, f"{prop} is named twice")
        keys.append(OrderKey(prop, direction.lower() == "desc"))
    return tuple(keys)


def _items(option: str, text: str) -> list[tuple[int, str]]:
    """The comma-separated items of ``text`` with the offset of each one's first character."""
    out: list[tuple[int, str]] = []
    start = 0
    for part in text.split(","):
        stripped = part.lstrip()
        offset = start + len(part) - len(stripped)
        if stripped.strip():
            out.append((offset, stripped.rstrip()))
        elif text.strip():
            raise ODataError(option, text, offset, "empty item in the list")
        start += len(part) + 1
    return out


def _names(option: str, text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for offset, item in _items(option, text):
        if item not in allowed:
            raise ODataError(option, text, offset, f"unknown name {item!r} (one of {', '.join(allowed)})")
        if item not in names:
            names.append(item)
    return tuple(names)


def _integer(option: str, text: str | None, default: int, low: int, high: int | None) -> int:
    if text is None:
        return default
    bound = f"between {low} and {high}" if high is not None else f"at least {low}"
    if not re.fullmatch(r"\s*\d{1,12}\s*", text):
        raise ODataError(option, text, None, f"{text!r} is not an integer {bound}")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise ODataError(option, text, None, f"{value} is out of range: must be {bound}")
    return value


class QuotaExceeded(ODataError):
    """More products asked for in one answer than the quota: 429, with the ICD's wording."""

    http_status = 429


def _top(text: str | None) -> int:
    value = _integer("$top", text, DEFAULT_TOP, 1, None)
    if value > MAX_TOP:
        raise QuotaExceeded(
            "$top",
            text or "",
            None,
            f"Product retrieval quota exceeded: {value} products asked for, at most {MAX_TOP:,} per "
            "answer; page through the rest with $skip or @odata.nextLink",
        )
    return value


def _boolean(option: str, text: str | None) -> bool:
    if text is None:
        return False
    if text.strip().lower() not in ("true", "false"):
        raise ODataError(option, text, None, f"{text!r} is not true or false")
    return text.strip().lower() == "true"


def next_link(base_url: str, params: Mapping[str, str], options: QueryOptions) -> str:
    """The URL of the page after this one: the same query with ``$skip`` advanced by ``$top``.

    Call it only when the page was full and more rows exist (``PripPage.more``).
    """
    following = {k: v for k, v in params.items() if k not in ("$skip", "$top")}
    following["$top"] = str(options.top)
    following["$skip"] = str(options.skip + options.top)
    return f"{base_url}?{urlencode(following, quote_via=quote, safe=_URL_SAFE)}"
