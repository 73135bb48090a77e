"""Recursive-descent parser of the PRIP ``$filter`` language into :mod:`odata_ast` nodes.

Precedence, loosest first: ``or``, ``and``, comparison (``eq`` ... ``le``, ``in``), ``not``;
parentheses group. ``not`` binds to the primary that follows it (OData's rule), so
``not contains(Name,'x')`` and ``not (A eq 1)`` are the forms that mean something.
"""

from __future__ import annotations

import re
from typing import cast

from proseo.catalog.geometry import Geometry
from proseo.interfaces.odata_ast import (
    And,
    Any,
    AttributeRef,
    Compare,
    CompareOp,
    Expr,
    In,
    Intersects,
    Literal,
    LiteralType,
    Not,
    Or,
    Property,
    StringMatch,
)
from proseo.interfaces.odata_geography import parse_geography
from proseo.interfaces.odata_lexer import Kind, ODataError, Token, tokenize

ATTRIBUTE_TYPES = ("String", "Integer", "Double", "Boolean", "DateTimeOffset")
_CAST = re.compile(r"OData\.CSC\.(\w+)Attribute")
_STRING_FUNCTIONS = ("contains", "startswith", "endswith")
_INTERSECTS = ("OData.CSC.Intersects", "geo.intersects")
_ENUM_TYPES = ("OData.CSC.ProductionType",)


def parse_filter(text: str) -> Expr:
    """The syntax tree of ``text``; :class:`ODataError` names the first offending character."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text, "$filter")
        self.pos = 0
        self.variables: list[str] = []  # lambda variables in scope

    # --- token helpers ---------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def error(self, token: Token, message: str) -> ODataError:
        return ODataError("$filter", self.text, token.offset, message)

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, kind: Kind, what: str) -> Token:
        if self.tok.kind is not kind:
            raise self.error(self.tok, f"expected {what}")
        return self.advance()

    def keyword(self, *words: str) -> bool:
        return self.tok.kind is Kind.NAME and self.tok.text in words

    # --- grammar -----------------------------------------------------------------------

    def parse(self) -> Expr:
        if self.tok.kind is Kind.END:
            raise self.error(self.tok, "the filter is empty")
        expr = self.or_expr()
        if self.tok.kind is not Kind.END:
            raise self.error(self.tok, "expected 'and', 'or' or the end of the filter")
        return expr

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.keyword("or"):
            op = self.advance()
            left = Or(left, self.and_expr(), op.offset)
        return left

    def and_expr(self) -> Expr:
        left = self.comparison()
        while self.keyword("and"):
            op = self.advance()
            left = And(left, self.comparison(), op.offset)
        return left

    def comparison(self) -> Expr:
        left = self.unary()
        if self.tok.kind is Kind.NAME and self.tok.text in CompareOp.__members__.values():
            op = self.advance()
            return Compare(CompareOp(op.text), left, self.unary(), op.offset)
        if self.keyword("in"):
            op = self.advance()
            self.expect(Kind.LPAREN, "'(' opening the list after 'in'")
            values = [self.literal()]
            while self.tok.kind is Kind.COMMA:
                self.advance()
                values.append(self.literal())
            self.expect(Kind.RPAREN, "',' or ')' closing the list")
            return In(left, tuple(values), op.offset)
        if isinstance(left, Literal | Property | AttributeRef) and not (
            self.tok.kind in (Kind.END, Kind.RPAREN) or self.keyword("and", "or")
        ):
            raise self.error(self.tok, "expected a comparison operator")
        return left

    def unary(self) -> Expr:
        if self.keyword("not"):
            op = self.advance()
            return Not(self.unary(), op.offset)
        return self.primary()

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind is Kind.LPAREN:
            self.advance()
            expr = self.or_expr()
            self.expect(Kind.RPAREN, "')' closing the parenthesis")
            return expr
        if tok.kind is Kind.NAME:
            if tok.text in ("true", "false", "null"):
                return self.literal()
            if self.tokens[self.pos + 1].kind is Kind.LPAREN:
                return self.call()
            if tok.text in ("and", "or", "eq", "ne", "gt", "ge", "lt", "le", "in"):
                raise self.error(tok, "expected a property, a literal or '('")
            return self.path()
        if tok.kind is Kind.END:
            raise self.error(tok, "expected a property, a literal or '('")
        if tok.kind in (Kind.RPAREN, Kind.COMMA, Kind.SLASH, Kind.COLON, Kind.EQUALS):
            raise self.error(tok, "expected a property, a literal or '('")
        return self.literal()

    def literal(self) -> Literal:
        tok = self.advance()
        simple = {
            Kind.STRING: LiteralType.STRING,
            Kind.INTEGER: LiteralType.INTEGER,
            Kind.DECIMAL: LiteralType.DECIMAL,
            Kind.DATETIME: LiteralType.DATETIME,
            Kind.GUID: LiteralType.GUID,
        }
        if tok.kind in simple:
            return Literal(simple[tok.kind], tok.value, tok.offset)  # type: ignore[arg-type]
        if tok.kind is Kind.NAME and tok.text in ("true", "false"):
            return Literal(LiteralType.BOOLEAN, tok.text == "true", tok.offset)
        if tok.kind is Kind.NAME and tok.text == "null":
            return Literal(LiteralType.NULL, None, tok.offset)
        if tok.kind is Kind.TYPED:
            prefix, content = cast(tuple[str, str], tok.value)
            if prefix in _ENUM_TYPES:
                return Literal(LiteralType.ENUM, content, tok.offset, enum_type=prefix)
            if prefix.lower() == "geography":
                return Literal(LiteralType.GEOGRAPHY, self.geography(tok, content), tok.offset)
            raise self.error(tok, f"unknown literal type {prefix!r}")
        raise self.error(tok, "expected a literal")

    def call(self) -> Expr:
        name = self.advance()
        self.advance()  # "("
        if name.text in _STRING_FUNCTIONS:
            subject = self.unary()
            if not isinstance(subject, Property | AttributeRef):
                raise self.error(name, f"{name.text}() needs a property as its first argument")
            self.expect(Kind.COMMA, f"',' after the first argument of {name.text}()")
            pattern = self.literal()
            if pattern.type is not LiteralType.STRING:
                raise ODataError("$filter", self.text, pattern.offset, f"{name.text}() needs a string")
            self.expect(Kind.RPAREN, f"')' closing {name.text}()")
            return StringMatch(name.text, subject, pattern, name.offset)
        if name.text in _INTERSECTS:
            if name.text == "geo.intersects":
                self.expect_name("Footprint")
                self.expect(Kind.COMMA, "',' after Footprint")
            else:
                self.expect_name("area", "Footprint")
                self.expect(Kind.EQUALS, "'=' after the parameter name")
            lit = self.literal()
            if lit.type is not LiteralType.GEOGRAPHY:
                raise ODataError(
                    "$filter", self.text, lit.offset, "expected a geography'SRID=4326;...' literal"
                )
            self.expect(Kind.RPAREN, "')' closing the intersection")
            assert isinstance(lit.value, Geometry)
            return Intersects(lit.value, name.offset)
        raise self.error(name, f"unknown function {name.text!r}")

    def expect_name(self, *names: str) -> Token:
        if not self.keyword(*names):
            raise self.error(self.tok, "expected " + " or ".join(repr(n) for n in names))
        return self.advance()

    def path(self) -> Expr:
        start = self.advance()
        segments = [start.text]
        while self.tok.kind is Kind.SLASH:
            self.advance()
            seg = self.expect(Kind.NAME, "a property name after '/'")
            if seg.text in ("any", "all") and self.tok.kind is Kind.LPAREN:
                if seg.text == "all":
                    raise self.error(seg, "all() is not supported; use any() or not any()")
                return self.lambda_(segments, start)
            segments.append(seg.text)
        if segments[0] in self.variables:
            return self.attribute_ref(segments, start)
        return Property(tuple(segments), start.offset)

    def attribute_ref(self, segments: list[str], start: Token) -> AttributeRef:
        rest = segments[1:]
        cast = None
        if rest and (m := _CAST.fullmatch(rest[0])):
            cast = self.attribute_type(m.group(1), start)
            rest = rest[1:]
        if len(rest) != 1 or rest[0] not in ("Name", "Value"):
            raise self.error(start, f"expected {segments[0]}/Name or {segments[0]}/Value")
        return AttributeRef(rest[0], cast, start.offset)

    def attribute_type(self, name: str, at: Token) -> str:
        if name not in ATTRIBUTE_TYPES:
            raise self.error(at, f"unknown attribute type {name!r} (one of {', '.join(ATTRIBUTE_TYPES)})")
        return name

    def lambda_(self, segments: list[str], start: Token) -> Any:
        kind: str | None
        if segments == ["Attributes"]:
            kind = None
        elif len(segments) == 2 and segments[0] == "Attributes" and (m := _CAST.fullmatch(segments[1])):
            kind = self.attribute_type(m.group(1), start)
        elif len(segments) == 1 and segments[0].endswith("Attributes"):
            kind = self.attribute_type(segments[0].removesuffix("Attributes"), start)
        else:
            raise self.error(start, "any() applies to Attributes or a typed attribute collection")
        self.advance()  # "("
        if self.tok.kind is Kind.RPAREN:
            self.advance()
            return Any(kind, None, None, start.offset)
        var = self.expect(Kind.NAME, "a lambda variable name")
        self.expect(Kind.COLON, "':' after the lambda variable")
        self.variables.append(var.text)
        try:
            predicate = self.or_expr()
        finally:
            self.variables.pop()
        self.expect(Kind.RPAREN, "')' closing any()")
        return Any(kind, var.text, predicate, start.offset)

    # --- geography literals --------------------------------------------------------------

    def geography(self, tok: Token, content: str) -> Geometry:
        """``SRID=4326;POINT(lon lat)`` or ``SRID=4326;POLYGON((lon lat, ...), ...)``."""
        base = tok.offset + tok.text.index("'") + 1
        return parse_geography(self.text, base, content)
