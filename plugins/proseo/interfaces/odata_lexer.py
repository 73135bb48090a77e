"""Tokens of OData system query options, each with its character offset.

Hand-written rather than generated so that every error can name the exact character
(0-based offset into the option's text) a client has to fix; the API answers 400 with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum

from proseo.errors import ProseoError


class ODataError(ProseoError):
    """A query option a client sent cannot be parsed or answered; names option, offset, character."""

    exit_code = 2

    def __init__(self, option: str, text: str, offset: int | None, message: str) -> None:
        self.option, self.text, self.offset, self.reason = option, text, offset, message
        if offset is None:
            where = f"{option}: "
        elif offset >= len(text):
            where = f"{option}: character {offset} (end of input): "
        else:
            where = f"{option}: character {offset} ({text[offset]!r}): "
        super().__init__(where + message)


class Kind(StrEnum):
    NAME = "name"  # identifiers and keywords, dotted (OData.CSC.Intersects)
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATETIME = "datetime"
    GUID = "guid"
    TYPED = "typed"  # prefix'text': geography'...', OData.CSC.ProductionType'...'
    SLASH = "/"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    COLON = ":"
    EQUALS = "="
    END = "end of input"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str  # the source text of the token
    offset: int
    value: object = None  # str, int, Decimal, datetime; (prefix, text) for TYPED


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?(?![\w.:-])"
)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?(?![\w.])")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_OPERATORS = {"eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "in"}
_PUNCT = {
    "/": Kind.SLASH,
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    ",": Kind.COMMA,
    ":": Kind.COLON,
    "=": Kind.EQUALS,
}


def tokenize(text: str, option: str = "$filter") -> list[Token]:
    """All tokens of ``text`` followed by an END token; spaces separate tokens and are dropped."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _PUNCT:
            tokens.append(Token(_PUNCT[c], c, i))
            i += 1
        elif c == "'":
            value, end = _quoted(text, i, option)
            tokens.append(Token(Kind.STRING, text[i:end], i, value))
            i = end
        elif c.isdigit() or (c == "-" and i + 1 < len(text) and text[i + 1].isdigit()):
            tokens.append(_numeric(text, i, option))
            i += len(tokens[-1].text)
        elif m := _GUID.match(text, i):  # a GUID may start with a letter: before names
            tokens.append(Token(Kind.GUID, m.group(), i, m.group().lower()))
            i = m.end()
        elif m := _NAME.match(text, i):
            end = m.end()
            if end < len(text) and text[end] == "'" and m.group() not in _OPERATORS:
                value, close = _quoted(text, end, option)
                tokens.append(Token(Kind.TYPED, text[i:close], i, (m.group(), value)))
                i = close
            else:
                tokens.append(Token(Kind.NAME, m.group(), i, m.group()))
                i = end
        else:
            raise ODataError(option, text, i, "unexpected character")
    tokens.append(Token(Kind.END, "", len(text)))
    return tokens


def _quoted(text: str, start: int, option: str) -> tuple[str, int]:
    """The content of the quoted string starting at ``start`` ('' is a quote) and the end offset."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == "'":
            if i + 1 < len(text) and text[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(text[i])
        i += 1
    raise ODataError(option, text, start, "string literal is not closed (missing ')")


def _numeric(text: str, i: int, option: str) -> Token:
    if m := _DATETIME.match(text, i):
        return Token(Kind.DATETIME, m.group(), i, _datetime(m, text, i, option))
    if m := _GUID.match(text, i):
        return Token(Kind.GUID, m.group(), i, m.group().lower())
    if m := _NUMBER.match(text, i):
        raw = m.group()
        if m.group(1) or m.group(2):
            return Token(Kind.DECIMAL, raw, i, Decimal(raw))
        return Token(Kind.INTEGER, raw, i, int(raw))
    end = i + 1
    while end < len(text) and (text[end].isalnum() or text[end] in ".:-+"):
        end += 1
    bad = next((k for k in range(i + 1, end) if not text[k].isdigit()), end)
    raise ODataError(option, text, min(bad, len(text)), "malformed number or date-time literal")


def _datetime(m: re.Match[str], text: str, offset: int, option: str) -> datetime:
    """A UTC-aware instant; a date alone is its midnight, a missing zone means UTC."""
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        value = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or ".0")[1:7].ljust(6, "0")),
        )
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            hh, mm = int(zone[1:3]), int(zone[4:6])
            if hh > 23 or mm > 59:
                raise ValueError(f"time zone offset {zone} out of range")
            return value.replace(tzinfo=timezone(sign * timedelta(hours=hh, minutes=mm))).astimezone(UTC)
        return value.replace(tzinfo=UTC)
    except ValueError as exc:
        raise ODataError(option, text, offset, f"invalid date-time {m.group()!r}: {exc}") from exc
