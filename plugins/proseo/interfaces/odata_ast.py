"""The typed syntax tree of a PRIP ``$filter``; every node keeps the offset of its first character.

The parser only checks the grammar; the translator to SQL checks types (a string compared
with a date, an Integer attribute compared with text) and uses the offsets to say where.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from proseo.catalog.geometry import Geometry


class LiteralType(StrEnum):
    STRING = "String"
    INTEGER = "Int64"
    DECIMAL = "Double"
    BOOLEAN = "Boolean"
    NULL = "null"
    DATETIME = "DateTimeOffset"
    GUID = "Guid"
    ENUM = "enum"
    GEOGRAPHY = "geography"


LiteralValue = str | int | Decimal | bool | datetime | Geometry | None


@dataclass(frozen=True)
class Literal:
    type: LiteralType
    value: LiteralValue
    offset: int
    enum_type: str | None = None  # OData.CSC.ProductionType for ENUM literals


@dataclass(frozen=True)
class Property:
    """A property path of the entity: ``Name``, ``ContentDate/Start``."""

    path: tuple[str, ...]
    offset: int

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class AttributeRef:
    """``att/Name`` or ``att/Value`` (optionally cast: ``att/OData.CSC.IntegerAttribute/Value``)."""

    field: str  # "Name" or "Value"
    cast: str | None  # "String", "Integer", "Double", "Boolean", "DateTimeOffset" or None
    offset: int


Operand = Literal | Property | AttributeRef


class CompareOp(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    offset: int  # of the operator


@dataclass(frozen=True)
class In:
    operand: Expr
    values: tuple[Literal, ...]
    offset: int  # of the ``in``


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr
    offset: int


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr
    offset: int


@dataclass(frozen=True)
class Not:
    operand: Expr
    offset: int


@dataclass(frozen=True)
class StringMatch:
    """``contains``, ``startswith`` or ``endswith`` of a property (or ``att/...``) and a string."""

    function: str
    subject: Property | AttributeRef
    pattern: Literal
    offset: int


@dataclass(frozen=True)
class Any:
    """``<collection>/any(var: predicate)`` over the product's attributes.

    ``type`` is the attribute type the collection or cast names (``String``, ...), or None for
    the untyped ``Attributes``; ``predicate`` is None for ``any()`` (the collection is not empty).
    """

    type: str | None
    variable: str | None
    predicate: Expr | None
    offset: int


@dataclass(frozen=True)
class Intersects:
    geometry: Geometry
    offset: int


Expr = Operand | Compare | In | And | Or | Not | StringMatch | Any | Intersects
