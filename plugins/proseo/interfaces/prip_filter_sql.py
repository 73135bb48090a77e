"""Translate a parsed ``$filter`` into one SQL condition over the catalogue's products.

Types are checked here, against :mod:`prip_model`: a date compared with a string, or an
Integer attribute compared with text, is an :class:`ODataError` at the literal's offset.
``any()`` over attributes becomes, for each attribute name the predicate can match, the
predicate with ``att/Name`` decided in Python and ``att/Value`` replaced by that attribute's
column or JSON element; so the whole filter stays one SQL condition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any as AnyType

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Integer

from proseo.catalog.geometry import Geometry, GeometryError
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
from proseo.interfaces.odata_lexer import ODataError
from proseo.interfaces.prip_lambda import attribute_names, decide, value_hint
from proseo.interfaces.prip_model import (
    PARAMETER_KINDS,
    PRODUCTION_TYPE_ENUM,
    PRODUCTION_TYPES,
    Column,
    attribute_columns,
    attribute_kinds,
    parameter_column,
    property_columns,
)

Footprint = Callable[[Geometry], ColumnElement[bool]]

# Which literal types each OData type can be compared with.
_COMPATIBLE = {
    "String": {LiteralType.STRING},
    "Guid": {LiteralType.GUID, LiteralType.STRING},
    "Int64": {LiteralType.INTEGER, LiteralType.DECIMAL},
    "Integer": {LiteralType.INTEGER, LiteralType.DECIMAL},
    "Double": {LiteralType.INTEGER, LiteralType.DECIMAL},
    "Boolean": {LiteralType.BOOLEAN},
    "DateTimeOffset": {LiteralType.DATETIME},
    "ProductionType": {LiteralType.ENUM, LiteralType.STRING},
}
_FLIP = {
    CompareOp.GT: CompareOp.LT,
    CompareOp.LT: CompareOp.GT,
    CompareOp.GE: CompareOp.LE,
    CompareOp.LE: CompareOp.GE,
}
_ORDERED = {"String", "Int64", "Integer", "Double", "DateTimeOffset", "Guid"}


class _position(FunctionElement[int]):
    """1-based position of a substring (0: absent), case-sensitive on both backends."""

    type = Integer()
    inherit_cache = True


@compiles(_position, "sqlite")
def _position_sqlite(element: _position, compiler: AnyType, **kw: AnyType) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_position)
def _position_default(element: _position, compiler: AnyType, **kw: AnyType) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


class FilterTranslator:
    """One filter's translation; ``parameter_types`` types the parameters (see prip_model)."""

    def __init__(
        self,
        text: str,
        *,
        footprint: Footprint | None = None,
        parameter_types: Mapping[str, str] | None = None,
    ) -> None:
        self.text = text
        self.footprint = footprint
        self.kinds = attribute_kinds(parameter_types)
        self.properties = property_columns()
        self.attributes = attribute_columns()
        self.bound: Column | None = None  # inside any(): the attribute att/Value stands for
        self.bound_name: str | None = None

    def error(self, offset: int, message: str) -> ODataError:
        return ODataError("$filter", self.text, offset, message)

    def condition(self, expr: Expr) -> ColumnElement[bool]:
        if isinstance(expr, And):
            return and_(self.condition(expr.left), self.condition(expr.right))
        if isinstance(expr, Or):
            return or_(self.condition(expr.left), self.condition(expr.right))
        if isinstance(expr, Not):
            # OData's comparisons with null are false, SQL's unknown: "not" must see false.
            return not_(func.coalesce(self.condition(expr.operand), false()))
        if isinstance(expr, Compare):
            return self.compare(expr)
        if isinstance(expr, In):
            column = self.operand(expr.operand)
            values = [self.value(column, v, expr.offset) for v in expr.values]
            return column.expr.in_(values)
        if isinstance(expr, StringMatch):
            return self.string_match(expr)
        if isinstance(expr, Any):
            return self.any(expr)
        if isinstance(expr, Intersects):
            if self.footprint is None:
                raise self.error(expr.offset, "footprint filters are not available")
            try:
                return self.footprint(expr.geometry)
            except GeometryError as exc:  # e.g. a self-crossing ring: the area is refused where it is
                raise self.error(expr.offset, f"area: {exc}") from exc
        if isinstance(expr, Property):
            column = self.operand(expr)
            if column.type != "Boolean":
                raise self.error(expr.offset, f"{expr.name} is not a Boolean: compare it with a value")
            return column.expr == true()
        if isinstance(expr, AttributeRef) and expr.field == "Value" and self.bound is not None:
            if self.bound.type != "Boolean":
                raise self.error(expr.offset, "the attribute value is not a Boolean: compare it")
            return self.bound.expr == true()
        raise self.error(expr.offset, "expected a condition")

    # --- operands and literals ----------------------------------------------------------

    def operand(self, expr: Expr) -> Column:
        if isinstance(expr, Property):
            if expr.name not in self.properties:
                known = ", ".join(self.properties)
                raise self.error(
                    expr.offset, f"unknown or unfilterable property {expr.name!r} (one of {known})"
                )
            return self.properties[expr.name]
        if isinstance(expr, AttributeRef):
            if expr.field == "Name":
                raise self.error(expr.offset, "the attribute name is compared only with string literals")
            if self.bound is None:
                raise self.error(expr.offset, "attribute values exist only inside any()")
            if expr.cast is not None and expr.cast != self.bound.type:
                raise self.error(
                    expr.offset, f"attribute {self.bound_name} is of type {self.bound.type}, not {expr.cast}"
                )
            return self.bound
        raise self.error(expr.offset, "expected a property")

    def value(self, column: Column, lit: Literal, at: int) -> AnyType:
        if lit.type not in _COMPATIBLE[column.type]:
            raise self.error(
                lit.offset,
                f"a value of type {column.type} cannot be compared with a {lit.type.value} literal",
            )
        if column.type == "ProductionType":
            if lit.type is LiteralType.ENUM and lit.enum_type != PRODUCTION_TYPE_ENUM:
                raise self.error(lit.offset, f"expected a {PRODUCTION_TYPE_ENUM} literal")
            stored = {v: k for k, v in PRODUCTION_TYPES.items()}
            if lit.value not in stored:
                raise self.error(lit.offset, f"unknown production type (one of {', '.join(stored)})")
            return stored[lit.value]  # type: ignore[index]
        if isinstance(lit.value, Decimal):
            return float(lit.value)
        if (
            isinstance(lit.value, int)
            and not isinstance(lit.value, bool)
            and not -(2**63) <= lit.value < 2**63
        ):
            raise self.error(lit.offset, "integer beyond 64 bits")
        if column.type == "Guid":
            return str(lit.value).lower()
        return lit.value

    def compare(self, expr: Compare) -> ColumnElement[bool]:
        left, right, op = expr.left, expr.right, expr.op
        if isinstance(left, Literal) and not isinstance(right, Literal):
            left, right, op = right, left, _FLIP.get(op, op)
        if not isinstance(right, Literal):
            raise self.error(right.offset, "expected a literal: a property is compared with a value")
        column = self.operand(left)
        if right.type is LiteralType.NULL:
            if op is CompareOp.EQ:
                return column.expr.is_(None)
            if op is CompareOp.NE:
                return column.expr.is_not(None)
            raise self.error(expr.offset, "null is compared only with eq or ne")
        value = self.value(column, right, expr.offset)
        if op not in (CompareOp.EQ, CompareOp.NE) and column.type not in _ORDERED:
            raise self.error(expr.offset, f"{op.value} does not apply to a {column.type}")
        c = column.expr
        ops: dict[CompareOp, Callable[[], ColumnElement[bool]]] = {
            CompareOp.EQ: lambda: c == value,
            CompareOp.NE: lambda: c.is_distinct_from(value),  # null ne 5 is true in OData
            CompareOp.GT: lambda: c > value,
            CompareOp.GE: lambda: c >= value,
            CompareOp.LT: lambda: c < value,
            CompareOp.LE: lambda: c <= value,
        }
        return ops[op]()

    def string_match(self, expr: StringMatch) -> ColumnElement[bool]:
        column = self.operand(expr.subject)
        if column.type != "String":
            raise self.error(
                expr.subject.offset, f"{expr.function}() applies to strings, not a {column.type}"
            )
        pattern = str(expr.pattern.value)
        c, n = column.expr, len(pattern)
        if expr.function == "contains":
            return _position(c, pattern) > 0
        if expr.function == "startswith":
            return func.substr(c, 1, n) == pattern
        return and_(func.length(c) >= n, func.substr(c, func.length(c) - n + 1, n) == pattern)

    # --- any() over attributes ------------------------------------------------------------

    def any(self, expr: Any) -> ColumnElement[bool]:
        if self.bound is not None or self.bound_name is not None:
            raise self.error(expr.offset, "any() cannot be nested")
        if expr.predicate is None:
            present = [
                self.column(n, k).expr.is_not(None) for n, k in self.kinds.items() if expr.type in (None, k)
            ]
            return or_(false(), *present)
        named = attribute_names(expr.predicate)
        if decide(expr.predicate, None) is not False:
            raise self.error(expr.offset, "any() must fix the attribute: add att/Name eq '...'")
        branches = []
        for name, offset in named.items():
            if decide(expr.predicate, name) is False:
                continue
            # An attribute the catalogue does not type takes the type the filter gives it.
            kind = self.kinds.get(name) or expr.type or value_hint(expr.predicate) or "String"
            if expr.type is not None and kind != expr.type:
                raise self.error(offset, f"attribute {name} is of type {kind}, not {expr.type}")
            if name not in self.attributes and kind not in PARAMETER_KINDS:
                raise self.error(offset, f"no {kind} attribute is named {name!r}")
            column = self.column(name, kind)
            self.bound, self.bound_name = column, name
            try:
                branches.append(and_(column.expr.is_not(None), self.lambda_body(expr.predicate, name)))
            finally:
                self.bound, self.bound_name = None, None
        return or_(false(), *branches)

    def column(self, name: str, kind: str) -> Column:
        return self.attributes.get(name) or parameter_column(name, kind)

    def lambda_body(self, expr: Expr, name: str) -> ColumnElement[bool]:
        """The predicate for one attribute: Name conditions decided here, the rest in SQL."""
        decided = decide(expr, name)
        if decided is not None:  # true or false whatever the value: skip the SQL
            return true() if decided else false()
        if isinstance(expr, And):
            return and_(self.lambda_body(expr.left, name), self.lambda_body(expr.right, name))
        if isinstance(expr, Or):
            return or_(self.lambda_body(expr.left, name), self.lambda_body(expr.right, name))
        if isinstance(expr, Not):
            return not_(self.lambda_body(expr.operand, name))
        return self.condition(expr)
