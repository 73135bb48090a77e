"""PRIP query options: paging bounds, ordering keys, $select/$expand names, the next page's URL."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from proseo.interfaces.odata_ast import Compare
from proseo.interfaces.odata_lexer import ODataError
from proseo.interfaces.odata_options import (
    DEFAULT_TOP,
    MAX_TOP,
    OrderKey,
    QueryOptions,
    QuotaExceeded,
    next_link,
    parse_options,
)


def test_defaults() -> None:
    options = parse_options({})
    assert options == QueryOptions(
        filter=None, orderby=(), top=20, skip=0, count=False, select=None, expand=()
    )
    assert (DEFAULT_TOP, MAX_TOP) == (20, 1000)


def test_every_option_parsed() -> None:
    options = parse_options(
        {
            "$filter": "Name eq 'x'",
            "$orderby": "PublicationDate desc, ContentDate/Start,Name asc",
            "$top": "1000",
            "$skip": "40",
            "$count": "true",
            "$select": "Id,Name,ContentDate",
            "$expand": "Attributes,IntegerAttributes",
            "$format": "json",
            "token": "not an option, left to the caller",
        }
    )
    assert isinstance(options.filter, Compare)
    assert options.orderby == (
        OrderKey("PublicationDate", True),
        OrderKey("ContentDate/Start", False),
        OrderKey("Name", False),
    )
    assert (options.top, options.skip, options.count) == (1000, 40, True)
    assert options.select == ("Id", "Name", "ContentDate")
    assert options.expand == ("Attributes", "IntegerAttributes")
    assert options.filter_text == "Name eq 'x'"
    assert parse_options({"$count": "False"}) == QueryOptions()


@pytest.mark.parametrize(
    ("params", "option", "offset", "message"),
    [
        ({"$top": "0"}, "$top", None, "0 is out of range: must be at least 1"),
        ({"$top": "1001"}, "$top", None, "Product retrieval quota exceeded: 1001 products asked for"),
        ({"$top": "ten"}, "$top", None, "'ten' is not an integer at least 1"),
        ({"$top": "-5"}, "$top", None, "not an integer"),
        ({"$skip": "-1"}, "$skip", None, "not an integer at least 0"),
        ({"$count": "yes"}, "$count", None, "'yes' is not true or false"),
        ({"$orderby": "Name asc, Size desc"}, "$orderby", 10, "cannot order by 'Size'"),
        ({"$orderby": "Name upward"}, "$orderby", 5, "expected 'asc' or 'desc'"),
        ({"$orderby": "Name,,Id"}, "$orderby", 5, "empty item"),
        ({"$orderby": "Name, Name desc"}, "$orderby", 6, "Name is named twice"),
        ({"$orderby": "Checksum"}, "$orderby", 0, "cannot order by 'Checksum'"),
        ({"$select": "Id,Size"}, "$select", 3, "unknown name 'Size'"),
        ({"$expand": "Attributes, Files"}, "$expand", 12, "unknown name 'Files'"),
        ({"$filter": "Name eq"}, "$filter", 7, "expected a property"),
        ({"$search": "x"}, "$search", None, "unknown query option"),
        ({"$format": "xml"}, "$format", None, "only json"),
    ],
)
def test_errors_name_the_option(
    params: dict[str, str], option: str, offset: int | None, message: str
) -> None:
    with pytest.raises(ODataError) as caught:
        parse_options(params)
    error = caught.value
    assert error.option == option and error.offset == offset
    assert str(error).startswith(f"{option}: ") and message in str(error)


def test_next_link_advances_skip_and_keeps_the_query() -> None:
    params = {
        "$filter": "startswith(Name,'S5P') and ContentLength gt 5",
        "$orderby": "Name desc",
        "$skip": "30",
    }
    options = parse_options({**params, "$top": "15"})
    link = next_link("https://host/odata/v1/Products", {**params, "$top": "15"}, options)
    parts = urlsplit(link)
    assert parts.path == "/odata/v1/Products"
    following = dict(parse_qsl(parts.query))
    assert following == {**params, "$top": "15", "$skip": "45"}
    assert "%24filter=startswith(Name,'S5P')%20and" in link  # readable, and still one URL
    again = parse_options(following)
    assert (again.skip, again.top, again.filter) == (45, 15, options.filter)


def test_more_than_the_quota_per_answer_is_a_429() -> None:
    with pytest.raises(QuotaExceeded) as caught:
        parse_options({"$top": "5000"})
    assert caught.value.http_status == 429 and "at most 1,000 per answer" in str(caught.value)
    assert parse_options({"$top": "1000"}).top == MAX_TOP
