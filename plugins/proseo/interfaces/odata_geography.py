"""Geography literals of ``$filter``: ``SRID=4326;POINT(lon lat)`` and ``SRID=4326;POLYGON((...))``.

Parsed into the catalogue's :class:`~proseo.catalog.geometry.Geometry`; what the ESA
interfaces forbid (another SRID, MULTIPOLYGON, open rings) is an error at its character.
"""

from __future__ import annotations

import re

from proseo.catalog.geometry import Geometry, GeometryError
from proseo.interfaces.odata_lexer import ODataError


def parse_geography(text: str, base: int, content: str) -> Geometry:
    """The geometry in ``content``, which starts at offset ``base`` of the filter ``text``."""
    return _Geography(text, base, content).parse()


class _Geography:
    _NUM = re.compile(r"(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)")

    def __init__(self, text: str, base: int, content: str) -> None:
        self.text, self.base, self.s, self.i = text, base, content, 0

    def error(self, message: str) -> ODataError:
        return ODataError("$filter", self.text, self.base + self.i, message)

    def eat(self, literal: str) -> None:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1
        if not self.s.startswith(literal, self.i):
            raise self.error(f"expected {literal!r} in the geography literal")
        self.i += len(literal)

    def parse(self) -> Geometry:
        m = re.match(r"SRID=(\d+);", self.s, re.IGNORECASE)
        if not m:
            raise self.error("a geography literal starts with SRID=4326;")
        if m.group(1) != "4326":
            self.i = 5
            raise self.error(f"SRID {m.group(1)} is not supported; only 4326 (WGS84)")
        self.i = m.end()
        word = re.match(r"[A-Za-z]+", self.s[self.i :])
        kind = word.group().upper() if word else ""
        if kind not in ("POINT", "POLYGON"):
            raise self.error(f"geometry {kind or '?'} is not supported; only POINT and POLYGON")
        self.i += len(kind)
        start = self.i
        try:
            if kind == "POINT":
                self.eat("(")
                lon, lat = self.position()
                self.eat(")")
                geometry = Geometry.point(lon, lat)
            else:
                self.eat("(")
                rings = [self.ring()]
                while self.peek(","):
                    rings.append(self.ring())
                self.eat(")")
                geometry = Geometry.polygon(*rings)
        except GeometryError as exc:
            self.i = start
            raise self.error(str(exc)) from exc
        if self.s[self.i :].strip():
            raise self.error("unexpected text after the geometry")
        return geometry

    def peek(self, literal: str) -> bool:
        rest = self.s[self.i :].lstrip(" ")
        if rest.startswith(literal):
            self.i = len(self.s) - len(rest) + len(literal)
            return True
        return False

    def ring(self) -> list[tuple[float, float]]:
        self.eat("(")
        ring = [self.position()]
        while self.peek(","):
            ring.append(self.position())
        self.eat(")")
        return ring

    def position(self) -> tuple[float, float]:
        values = []
        for _ in range(2):
            while self.i < len(self.s) and self.s[self.i] == " ":
                self.i += 1
            m = self._NUM.match(self.s, self.i)
            if not m:
                raise self.error("expected a coordinate (longitude latitude)")
            values.append(float(m.group(1)))
            self.i = m.end()
        return values[0], values[1]
