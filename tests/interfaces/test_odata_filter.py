"""The PRIP $filter parser: every form clients send, precedence, and errors at the right character."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from proseo.catalog.geometry import Geometry
from proseo.errors import ProseoError
from proseo.interfaces.odata_ast import (
    And,
    Any,
    AttributeRef,
    Compare,
    CompareOp,
    In,
    Intersects,
    Literal,
    LiteralType,
    Not,
    Or,
    Property,
    StringMatch,
)
from proseo.interfaces.odata_filter import parse_filter
from proseo.interfaces.odata_lexer import ODataError


def test_comparison_of_a_path_with_a_date_time() -> None:
    tree = parse_filter("ContentDate/Start gt 2025-03-01T00:00:00.000Z")
    assert tree == Compare(
        CompareOp.GT,
        Property(("ContentDate", "Start"), 0),
        Literal(LiteralType.DATETIME, datetime(2025, 3, 1, tzinfo=UTC), 21),
        18,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T00:00:00Z", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025-03-01T10:20:30.123456Z", datetime(2025, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)),
        ("2025-03-01T10:20:30.5Z", datetime(2025, 3, 1, 10, 20, 30, 500000, tzinfo=UTC)),
        ("2025-03-01T01:00:00+02:00", datetime(2025, 2, 28, 23, tzinfo=UTC)),
        ("2025-03-01T01:00:00-01:30", datetime(2025, 3, 1, 2, 30, tzinfo=UTC)),
        ("2025-03-01T01:00Z", datetime(2025, 3, 1, 1, tzinfo=UTC)),
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
    ],
)
def test_date_time_literals_are_utc_aware(text: str, expected: datetime) -> None:
    tree = parse_filter(f"PublicationDate ge {text}")
    assert isinstance(tree, Compare) and isinstance(tree.right, Literal)
    assert tree.right.value == expected and tree.right.value.utcoffset() is not None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("'it''s'", LiteralType.STRING, "it's"),
        ("''", LiteralType.STRING, ""),
        ("42", LiteralType.INTEGER, 42),
        ("-7", LiteralType.INTEGER, -7),
        ("2.5", LiteralType.DECIMAL, Decimal("2.5")),
        ("1e3", LiteralType.DECIMAL, Decimal("1e3")),
        ("true", LiteralType.BOOLEAN, True),
        ("false", LiteralType.BOOLEAN, False),
        ("null", LiteralType.NULL, None),
        ("6F0B7C1E-3d55-4c1e-9a53-70726f73656f", LiteralType.GUID, "6f0b7c1e-3d55-4c1e-9a53-70726f73656f"),
        ("ac36d0aa-8bf7-5ba7-ad99-48b2921b03d3", LiteralType.GUID, "ac36d0aa-8bf7-5ba7-ad99-48b2921b03d3"),
    ],
)
def test_scalar_literals(text: str, kind: LiteralType, value: object) -> None:
    tree = parse_filter(f"Name eq {text}")
    assert isinstance(tree, Compare) and tree.right == Literal(kind, value, 8)  # type: ignore[arg-type]


def test_operators_need_no_space_before_a_quote() -> None:
    tree = parse_filter("Name eq'x'")
    assert isinstance(tree, Compare) and tree.right == Literal(LiteralType.STRING, "x", 7)


def test_enum_literal() -> None:
    tree = parse_filter("ProductionType eq OData.CSC.ProductionType'on-demand default'")
    assert isinstance(tree, Compare)
    assert tree.right == Literal(LiteralType.ENUM, "on-demand default", 18, "OData.CSC.ProductionType")


def test_precedence_not_then_comparison_then_and_then_or() -> None:
    tree = parse_filter("Name eq 'a' or Name eq 'b' and not Online")
    assert isinstance(tree, Or) and isinstance(tree.right, And)
    assert tree.right.right == Not(Property(("Online",), 35), 31)
    grouped = parse_filter("(Name eq 'a' or Name eq 'b') and Online")
    assert isinstance(grouped, And) and isinstance(grouped.left, Or)
    # not binds to the primary after it: a condition needs parentheses
    assert isinstance(parse_filter("not (Name eq 'a')"), Not)
    negated_compare = parse_filter("not Online eq true")
    assert isinstance(negated_compare, Compare) and isinstance(negated_compare.left, Not)


def test_in_list_and_string_functions() -> None:
    tree = parse_filter("ContentLength in (1, 2,3) and endswith(Name,'.nc')")
    assert isinstance(tree, And)
    assert tree.left == In(
        Property(("ContentLength",), 0),
        (
            Literal(LiteralType.INTEGER, 1, 18),
            Literal(LiteralType.INTEGER, 2, 21),
            Literal(LiteralType.INTEGER, 3, 23),
        ),
        14,
    )
    assert tree.right == StringMatch(
        "endswith", Property(("Name",), 39), Literal(LiteralType.STRING, ".nc", 44), 30
    )
    for function in ("contains", "startswith", "endswith"):
        match = parse_filter(f"{function}(Name,'S5P')")
        assert isinstance(match, StringMatch) and match.function == function


def test_typed_attribute_lambda() -> None:
    text = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
        "and att/OData.CSC.StringAttribute/Value eq 'L2__NO2___')"
    )
    tree = parse_filter(text)
    assert isinstance(tree, Any) and tree.type == "String" and tree.variable == "att"
    assert tree.predicate == And(
        Compare(
            CompareOp.EQ, AttributeRef("Name", None, 45), Literal(LiteralType.STRING, "productType", 57), 54
        ),
        Compare(
            CompareOp.EQ,
            AttributeRef("Value", "String", 75),
            Literal(LiteralType.STRING, "L2__NO2___", 114),
            111,
        ),
        71,
    )


@pytest.mark.parametrize("kind", ["String", "Integer", "Double", "Boolean", "DateTimeOffset"])
def test_every_typed_collection_and_any_variable_name(kind: str) -> None:
    cast = parse_filter(f"Attributes/OData.CSC.{kind}Attribute/any(x:x/Name eq 'a' and x/Value ne null)")
    short = parse_filter(
        f"{kind}Attributes/any(item: item/Name eq 'a' and item/OData.CSC.{kind}Attribute/Value ne null)"
    )
    assert isinstance(cast, Any) and isinstance(short, Any)
    assert cast.type == short.type == kind and cast.variable == "x" and short.variable == "item"
    untyped = parse_filter("Attributes/any(a:a/Name eq 'orbitNumber')")
    assert isinstance(untyped, Any) and untyped.type is None
    assert parse_filter("Attributes/any()") == Any(None, None, None, 0)


def test_intersects_with_area_footprint_polygon_and_point() -> None:
    square = Geometry.polygon([(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)])
    polygon = "geography'SRID=4326;POLYGON((0 0,10 0, 10 10 ,0 10,0 0))'"
    assert parse_filter(f"OData.CSC.Intersects(area={polygon})") == Intersects(square, 0)
    assert parse_filter(f"OData.CSC.Intersects(Footprint={polygon})") == Intersects(square, 0)
    assert parse_filter(f"geo.intersects(Footprint,{polygon})") == Intersects(square, 0)
    point = parse_filter("OData.CSC.Intersects(area=geography'SRID=4326;POINT(-3.5 45.25)')")
    assert point == Intersects(Geometry.point(-3.5, 45.25), 0)
    holes = parse_filter(
        "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 0,9 0,9 9,0 9,0 0),(1 1,2 1,2 2,1 1))')"
    )
    assert isinstance(holes, Intersects) and len(holes.geometry.rings) == 2


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("Name 'x'", 5, "expected a comparison operator"),
        ("Name eq", 7, "expected a property, a literal or '('"),
        ("Name eq 'abc", 8, "string literal is not closed"),
        ("(Name eq 'x'", 12, "expected ')' closing the parenthesis"),
        ("Name eq 'x')", 11, "expected 'and', 'or' or the end of the filter"),
        ("Name eq 'x' and", 15, "expected a property"),
        ("Name eq #", 8, "unexpected character"),
        ("Name eq 2025-13-01T00:00:00Z", 8, "month must be in 1..12"),
        ("Name eq 12abc", 10, "malformed number"),
        ("Name in ('a' 'b')", 13, "expected ',' or ')' closing the list"),
        ("", 0, "the filter is empty"),
        ("frobnicate(Name,'x')", 0, "unknown function 'frobnicate'"),
        ("Products/any(a:a/Name eq 'x')", 0, "any() applies to Attributes"),
        ("Attributes/OData.CSC.FooAttribute/any(a:a/Name eq 'x')", 0, "unknown attribute type 'Foo'"),
        ("Attributes/any(a:a/Size eq 1)", 17, "expected a/Name or a/Value"),
        ("Attributes/all(a:a/Name eq 'x')", 11, "all() is not supported"),
        ("ProductionType eq Foo'x'", 18, "unknown literal type 'Foo'"),
        ("contains(Name, 3)", 15, "contains() needs a string"),
        ("OData.CSC.Intersects(area=geography'SRID=3857;POINT(1 2)')", 41, "SRID 3857 is not supported"),
        (
            "OData.CSC.Intersects(area=geography'SRID=4326;MULTIPOLYGON(((0 0,1 0,1 1,0 0)))')",
            46,
            "MULTIPOLYGON is not supported",
        ),
        ("OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((0 0,1 0,1 1,0 1))')", 53, "not closed"),
        ("OData.CSC.Intersects(area=geography'SRID=4326;POINT(200 0)')", 51, "outside longitude"),
        ("OData.CSC.Intersects(area=geography'SRID=4326;POINT(1 x)')", 54, "expected a coordinate"),
        ("OData.CSC.Intersects(area='x')", 26, "expected a geography"),
        ("OData.CSC.Intersects(where=geography'SRID=4326;POINT(1 2)')", 21, "expected 'area' or 'Footprint'"),
    ],
)
def test_errors_name_the_offending_character(text: str, offset: int, message: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_filter(text)
    error = caught.value
    assert isinstance(error, ProseoError)
    assert error.offset == offset and message in str(error)
    shown = "end of input" if offset >= len(text) else repr(text[offset])
    assert str(error).startswith(f"$filter: character {offset} ({shown}): ")
