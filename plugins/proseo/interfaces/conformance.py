"""A built-in query suite for any PRIP (ours or another): ``proseo interfaces check URL``.

Each check sends the queries an ESA client sends (the forms of ESA-EOPG-EOPGC-IF-3 and of
CDSE's examples) and checks the *answers against each other*, never against figures it
knows in advance, so it runs on any delivery point's holdings: a filter's products
satisfy it, pages do not overlap and add up to ``@odata.count``, ordering holds, a
download's bytes match the published checksum and length, a Range gives the same bytes
as the whole file. A check that cannot run (an empty PRIP, no checksum published) says
so as "skip" rather than passing.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from proseo.interfaces.odata_http import password_token
from proseo.missions.types import parse_utc


@dataclass(frozen=True)
class Result:
    name: str
    outcome: str  # pass | fail | skip
    detail: str


class CheckFailed(AssertionError):
    """One check's expectation did not hold; the message says which and with what."""


class Prip:
    """The PRIP under test: its root URL and a bearer token (given or from its token route)."""

    def __init__(
        self, root: str, *, token: str | None = None, user: str | None = None, password: str | None = None
    ) -> None:
        self.root = root.rstrip("/")
        self.http = httpx.Client(timeout=60.0, follow_redirects=True)
        if token is None and user and password:
            token = password_token(self.http, self.root, user, password, source=self.root)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: str) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.root}{path}"
        return self.http.get(url, params=params or None, headers=self.headers)

    def products(self, **params: str) -> dict[str, Any]:
        answer = self.get("/Products", **params)
        _expect(
            answer.status_code == 200,
            f"GET Products {params} answered {answer.status_code}: {answer.text[:200]}",
        )
        body = answer.json()
        _expect(isinstance(body.get("value"), list), "the answer has no 'value' list")
        return dict(body)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _attribute(entity: dict[str, Any], name: str) -> Any:
    for a in entity.get("Attributes") or []:
        if a.get("Name") == name:
            return a.get("Value")
    return None


# -- the checks --------------------------------------------------------------------------------


def service_and_metadata(p: Prip) -> str:
    service = p.get("/")
    _expect(service.status_code == 200, f"service document answered {service.status_code}")
    sets = {s.get("name") for s in service.json().get("value", [])}
    _expect("Products" in sets, f"no Products entity set in {sorted(sets)}")
    meta = p.get("/$metadata")
    _expect(meta.status_code == 200, f"$metadata answered {meta.status_code}")
    names = {e.get("Name") for e in ET.fromstring(meta.text).iter() if e.tag.endswith("EntityType")}
    _expect(
        "Product" in names, f"$metadata declares no Product entity type ({sorted(n for n in names if n)})"
    )
    return f"entity sets {sorted(s for s in sets if s)}"


def default_page(p: Prip) -> str:
    body = p.products()
    _expect(len(body["value"]) <= 20, f"the default page holds {len(body['value'])} products (more than 20)")
    for e in body["value"]:
        for key in ("Id", "Name", "ContentLength", "PublicationDate", "ContentDate"):
            _expect(key in e, f"product {e.get('Id')} has no {key}")
    return f"{len(body['value'])} products"


def paging_adds_up(p: Prip) -> str:
    first = p.products(**{"$top": "5", "$count": "true", "$orderby": "PublicationDate asc"})
    total = first.get("@odata.count")
    _expect(isinstance(total, int), "$count=true gave no integer @odata.count")
    seen = [e["Id"] for e in first["value"]]
    body, pages = first, 1
    while "@odata.nextLink" in body and pages < 40:
        answer = p.get(body["@odata.nextLink"])
        _expect(answer.status_code == 200, f"the next link answered {answer.status_code}")
        body = answer.json()
        seen += [e["Id"] for e in body["value"]]
        pages += 1
    _expect(len(seen) == len(set(seen)), "a product came on two pages")
    if "@odata.nextLink" not in body:
        _expect(len(seen) == total, f"{len(seen)} products on {pages} pages, @odata.count says {total}")
    return f"{len(seen)} of {total} products on {pages} pages of 5"


def ordering(p: Prip) -> str:
    for direction in ("asc", "desc"):
        body = p.products(**{"$top": "50", "$orderby": f"ContentDate/Start {direction}"})
        starts = [parse_utc(e["ContentDate"]["Start"]) for e in body["value"]]
        _expect(
            starts == sorted(starts, reverse=direction == "desc"),
            f"ContentDate/Start {direction} not ordered",
        )
    return "asc and desc"


def _sample(p: Prip) -> dict[str, Any]:
    body = p.products(**{"$top": "1", "$expand": "Attributes", "$orderby": "PublicationDate desc"})
    if not body["value"]:
        raise _Skip("the PRIP holds no product")
    return dict(body["value"][0])


class _Skip(Exception):
    pass


def sensing_window(p: Prip) -> str:
    one = _sample(p)
    start, end = parse_utc(one["ContentDate"]["Start"]), parse_utc(one["ContentDate"]["End"])
    lo, hi = start - timedelta(hours=1), end + timedelta(hours=1)
    text = (
        f"ContentDate/Start lt {hi:%Y-%m-%dT%H:%M:%S.000Z} and ContentDate/End gt {lo:%Y-%m-%dT%H:%M:%S.000Z}"
    )
    found = p.products(**{"$filter": text, "$top": "1000"})["value"]
    _expect(one["Id"] in {e["Id"] for e in found}, "the product whose window was asked for is missing")
    for e in found:
        _expect(
            parse_utc(e["ContentDate"]["Start"]) < hi and parse_utc(e["ContentDate"]["End"]) > lo,
            f"{e['Name']} is outside the window asked for",
        )
    return f"{len(found)} products in a window around {one['Name']}"


def product_type_attribute(p: Prip) -> str:
    one = _sample(p)
    kind = _attribute(one, "productType")
    if kind is None:
        raise _Skip("the sample product has no productType attribute")
    text = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
        f"and att/OData.CSC.StringAttribute/Value eq '{kind}')"
    )
    found = p.products(**{"$filter": text, "$top": "100", "$expand": "Attributes"})["value"]
    _expect(bool(found), f"no product of productType {kind}")
    for e in found:
        _expect(_attribute(e, "productType") == kind, f"{e['Name']} is not of productType {kind}")
    return f"{len(found)} products of {kind}"


def name_functions(p: Prip) -> str:
    name = str(_sample(p)["Name"])
    for function, part in (("startswith", name[:8]), ("contains", name[4:12]), ("endswith", name[-6:])):
        found = p.products(**{"$filter": f"{function}(Name,'{part}')", "$top": "100"})["value"]
        _expect(bool(found), f"{function}(Name,'{part}') found nothing")
        _expect(
            all(_holds(function, e["Name"], part) for e in found),
            f"{function}(Name,'{part}') answered a name without it",
        )
    return "startswith, contains, endswith"


def _holds(function: str, name: str, part: str) -> bool:
    if function == "startswith":
        return name.startswith(part)
    return name.endswith(part) if function == "endswith" else part in name


def bad_filter_is_400(p: Prip) -> str:
    answer = p.get("/Products", **{"$filter": "Name eq 'x' and"})
    _expect(answer.status_code == 400, f"an unparsable $filter answered {answer.status_code}, not 400")
    return "400"


def download(p: Prip) -> str:
    one = _sample(p)
    sums = {
        c.get("Algorithm", "").upper().replace("-", ""): c.get("Value") for c in one.get("Checksum") or []
    }
    if not sums:
        raise _Skip(f"{one['Name']} publishes no checksum")
    whole = p.get(f"/Products({one['Id']})/$value")
    _expect(whole.status_code == 200, f"$value answered {whole.status_code}")
    data = whole.content
    _expect(
        len(data) == one.get("ContentLength", len(data)),
        f"{len(data)} bytes, ContentLength {one.get('ContentLength')}",
    )
    digests = {
        "MD5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "SHA256": hashlib.sha256(data).hexdigest(),
    }
    checked = [a for a in sums if a in digests]
    _expect(bool(checked), f"no checksum algorithm this check knows ({sorted(sums)})")
    for algorithm in checked:
        _expect(
            str(sums[algorithm]).lower() == digests[algorithm],
            f"{algorithm} of the bytes differs from the published one",
        )
    if len(data) > 2:
        part = p.http.get(
            f"{p.root}/Products({one['Id']})/$value",
            headers={**p.headers, "Range": f"bytes=1-{len(data) - 2}"},
        )
        _expect(
            part.status_code == 206 and part.content == data[1:-1],
            f"Range answered {part.status_code} or other bytes",
        )
    return f"{len(data)} bytes, {', '.join(checked)} match"


CHECKS: list[tuple[str, Callable[[Prip], str]]] = [
    ("service document and $metadata", service_and_metadata),
    ("default page", default_page),
    ("paging adds up to @odata.count", paging_adds_up),
    ("$orderby", ordering),
    ("ContentDate window", sensing_window),
    ("productType attribute (any)", product_type_attribute),
    ("Name functions", name_functions),
    ("unparsable $filter is 400", bad_filter_is_400),
    ("download with checksum and Range", download),
]


def run_checks(prip: Prip) -> list[Result]:
    """Every check, in order; one failing does not stop the others."""
    results: list[Result] = []
    for name, check in CHECKS:
        try:
            results.append(Result(name, "pass", check(prip)))
        except _Skip as exc:
            results.append(Result(name, "skip", str(exc)))
        except (CheckFailed, httpx.HTTPError, ValueError, KeyError, ET.ParseError) as exc:
            results.append(
                Result(
                    name,
                    "fail",
                    f"{type(exc).__name__}: {exc}" if not isinstance(exc, CheckFailed) else str(exc),
                )
            )
    return results
