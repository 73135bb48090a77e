"""The JSON form of PRIP ``Products`` entities and of a page of them.

Values come from the same places the filter reads (:mod:`prip_model`), so a product
found by ``Name eq 'x'`` shows ``"Name": "x"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from proseo.catalog.geometry import Geometry
from proseo.catalog.model_product import ProductStatus
from proseo.interfaces.odata_options import PROPERTIES, QueryOptions, next_link, parse_options
from proseo.interfaces.prip_model import CONTENT_TYPE, PRODUCTION_TYPES, parameter_types, value_type
from proseo.interfaces.prip_query import Footprint, PripPage, PripRow, query_page

FootprintOf = Callable[[PripRow], Geometry | None]


def odata_time(value: datetime | None) -> str | None:
    """``2025-03-01T00:00:00.000Z``: UTC with milliseconds, as the ESA interfaces write instants."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def attributes(row: PripRow) -> list[dict[str, Any]]:
    """The product's attributes (columns first, then its parameters), without null ones."""
    p = row.product
    pc = p.product_class
    found: list[tuple[str, str, Any]] = [
        ("productType", "String", pc.product_type),
        ("productClass", "String", p.file_class),
        ("processingLevel", "String", pc.level),
        ("timeliness", "String", p.mode),
        ("platformShortName", "String", row.mission),
        ("platformSerialIdentifier", "String", row.spacecraft),
        ("orbitNumber", "Integer", row.orbit),
        ("beginningDateTime", "DateTimeOffset", p.sensing_start),
        ("endingDateTime", "DateTimeOffset", p.sensing_stop),
        ("processingDate", "DateTimeOffset", p.generation_time),
        ("processorName", "String", row.processor_class),
        ("processorVersion", "String", row.processor_version),
    ]
    names = {name for name, _, _ in found}
    for key in sorted(p.parameters or {}):
        kind = value_type(p.parameters[key])
        if kind is not None and key not in names:
            found.append((key, kind, p.parameters[key]))
    out = []
    for name, kind, value in found:
        if value is None:
            continue
        out.append(
            {
                "@odata.type": f"#OData.CSC.{kind}Attribute",
                "Name": name,
                "ValueType": kind,
                "Value": odata_time(value) if isinstance(value, datetime) else value,
            }
        )
    return out


def product_entity(row: PripRow, options: QueryOptions, footprint: Geometry | None = None) -> dict[str, Any]:
    """One ``Products`` entity with ``$select`` applied and the ``$expand``-ed collections."""
    p, f = row.product, row.file
    checksums = (
        [
            {"Algorithm": "MD5", "Value": f.md5, "ChecksumDate": odata_time(f.created_at)},
            {"Algorithm": "SHA256", "Value": f.sha256, "ChecksumDate": odata_time(f.created_at)},
        ]
        if f is not None
        else []
    )
    full: dict[str, Any] = {
        "Id": p.uuid,
        "Name": f.file_name if f is not None else None,
        "ContentType": CONTENT_TYPE,
        "ContentLength": f.size if f is not None else 0,
        "OriginDate": odata_time(p.raw_available_at or p.created_at),
        "PublicationDate": odata_time(p.created_at),
        "ModificationDate": odata_time(p.created_at),
        "EvictionDate": odata_time(p.eviction_time),
        "Online": p.status == ProductStatus.AVAILABLE.value,
        "Checksum": checksums,
        "ContentDate": {"Start": odata_time(p.sensing_start), "End": odata_time(p.sensing_stop)},
        "ProductionType": PRODUCTION_TYPES.get(p.production_type, p.production_type),
        "Footprint": footprint.odata() if footprint else None,
        "GeoFootprint": footprint.geojson() if footprint else None,
    }
    selected = options.select if options.select is not None else PROPERTIES
    entity: dict[str, Any] = {"@odata.mediaContentType": CONTENT_TYPE}
    entity.update({k: full[k] for k in PROPERTIES if k in selected})
    if options.expand:
        attrs = attributes(row)
        for collection in options.expand:
            kind = collection.removesuffix("Attributes")
            entity[collection] = [a for a in attrs if not kind or a["ValueType"] == kind]
    return entity


def page_json(
    page: PripPage,
    options: QueryOptions,
    *,
    base_url: str,
    params: Mapping[str, str],
    context: str = "$metadata#Products",
    footprint_of: FootprintOf | None = None,
) -> dict[str, Any]:
    """The answer to ``GET Products``: context, count, the entities and the next page's link.

    ``base_url`` is the Products URL (no query), ``params`` the request's query parameters.
    """
    out: dict[str, Any] = {"@odata.context": context}
    if page.count is not None:
        out["@odata.count"] = page.count
    out["value"] = [product_entity(r, options, footprint_of(r) if footprint_of else None) for r in page.rows]
    if page.more:
        out["@odata.nextLink"] = next_link(base_url, params, options)
    return out


def products_answer(
    session: Session,
    params: Mapping[str, str],
    *,
    base_url: str,
    scope: ColumnElement[bool] | None = None,
    footprint: Footprint | None = None,
    footprint_of: FootprintOf | None = None,
    context: str = "$metadata#Products",
) -> dict[str, Any]:
    """``GET Products`` from its query parameters to its JSON, in one call.

    Raises :class:`~proseo.interfaces.odata_lexer.ODataError` (answer 400) for any option
    that does not parse or type-check, before a page statement runs.
    """
    options = parse_options(params)
    types = parameter_types(session) if options.filter is not None else {}
    page = query_page(session, options, scope=scope, footprint=footprint, parameter_types=types)
    return page_json(
        page, options, base_url=base_url, params=params, context=context, footprint_of=footprint_of
    )
