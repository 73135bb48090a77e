"""Where each PRIP property and attribute lives in the catalogue, as SQL and as Python.

One table per kind keeps the filter translation, the ordering and the JSON rendering
in agreement: ``Name`` is the product's first file's name in all three, ``orbitNumber``
is the orbit's number in all three. Attributes that are not columns come from the
product's typed ``parameters`` JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import SQLColumnExpression, func, literal, select
from sqlalchemy.orm import Session, aliased

from proseo.catalog.mission_sync import revision_config
from proseo.catalog.model_mission import (
    ConfiguredProcessor,
    Mission,
    MissionRevision,
    Orbit,
    ProductClass,
    Spacecraft,
)
from proseo.catalog.model_product import Product, ProductFile, ProductionType, ProductStatus
from proseo.missions.types import ParameterType

CONTENT_TYPE = "application/octet-stream"

#: The catalogue's production types and their OData enum members.
PRODUCTION_TYPES = {
    ProductionType.SYSTEMATIC.value: "systematic_production",
    ProductionType.ON_DEMAND_DEFAULT.value: "on-demand default",
    ProductionType.ON_DEMAND_NON_DEFAULT.value: "on-demand non-default",
}
PRODUCTION_TYPE_ENUM = "OData.CSC.ProductionType"

#: The file a product is published as: its first catalogued one (files are listed by id).
PrimaryFile = aliased(ProductFile, name="primary_file")
_other = aliased(ProductFile, name="other_file")
primary_file_id = (
    select(func.min(_other.id)).where(_other.product_id == Product.id).correlate(Product).scalar_subquery()
)


@dataclass(frozen=True)
class Column:
    """An entity property or attribute: its OData type and the SQL expression holding it."""

    type: str  # String, Int64/Integer, Double, Boolean, DateTimeOffset, Guid, ProductionType
    expr: SQLColumnExpression[Any]


def property_columns() -> dict[str, Column]:
    """The entity's filterable and sortable properties (structural ones only)."""
    return {
        "Id": Column("Guid", Product.uuid),
        "Name": Column("String", PrimaryFile.file_name),
        "ContentType": Column("String", literal(CONTENT_TYPE)),
        "ContentLength": Column("Int64", PrimaryFile.size),
        "OriginDate": Column("DateTimeOffset", func.coalesce(Product.raw_available_at, Product.created_at)),
        "PublicationDate": Column("DateTimeOffset", Product.created_at),
        "ModificationDate": Column("DateTimeOffset", Product.created_at),
        "EvictionDate": Column("DateTimeOffset", Product.eviction_time),
        "Online": Column("Boolean", Product.status == ProductStatus.AVAILABLE.value),
        "ProductionType": Column("ProductionType", Product.production_type),
        "ContentDate/Start": Column("DateTimeOffset", Product.sensing_start),
        "ContentDate/End": Column("DateTimeOffset", Product.sensing_stop),
    }


def attribute_columns() -> dict[str, Column]:
    """Attributes held in columns of the product or of the rows it refers to."""
    return {
        "productType": Column("String", ProductClass.product_type),
        "productClass": Column("String", Product.file_class),
        "processingLevel": Column("String", ProductClass.level),
        "timeliness": Column("String", Product.mode),
        "platformShortName": Column("String", Mission.code),
        "platformSerialIdentifier": Column("String", Spacecraft.code),
        "orbitNumber": Column("Integer", Orbit.number),
        "beginningDateTime": Column("DateTimeOffset", Product.sensing_start),
        "endingDateTime": Column("DateTimeOffset", Product.sensing_stop),
        "processingDate": Column("DateTimeOffset", Product.generation_time),
        "processorName": Column("String", ConfiguredProcessor.processor_class),
        "processorVersion": Column("String", ConfiguredProcessor.version),
    }


#: The types a product parameter can have (the mission files' parameter types).
PARAMETER_KINDS = ("String", "Integer", "Double", "Boolean")


def parameter_column(name: str, kind: str) -> Column:
    """A product parameter as a typed SQL value (JSON element access runs on both backends)."""
    element = Product.parameters[name]
    exprs: dict[str, SQLColumnExpression[Any]] = {
        "String": element.as_string(),
        "Integer": element.as_integer(),
        "Double": element.as_float(),
        "Boolean": element.as_boolean(),
    }
    return Column(kind, exprs[kind])


_PARAMETER_KINDS = {
    ParameterType.STRING: "String",
    ParameterType.INTEGER: "Integer",
    ParameterType.FLOAT: "Double",
    ParameterType.BOOLEAN: "Boolean",
}


#: parameter_types() by the missions' latest revisions and their content digests.
_TYPES: dict[tuple[tuple[str, int, str], ...], dict[str, str]] = {}
_TYPES_KEPT = 16


def parameter_types(session: Session) -> dict[str, str]:
    """Attribute type of every product parameter the catalogue's missions declare.

    Where missions disagree, the first declaration (by mission code) wins; a filter
    on such a parameter compares by that type. Every filtered PRIP request asks, so the
    answer is kept per set of latest revisions (with their digests, so two catalogues
    never share an answer their configurations differ in): one statement finds them,
    and only a new revision reads configurations again.
    """
    newest: dict[str, tuple[str, int, str]] = {}
    for code, number, digest in session.execute(
        select(Mission.code, MissionRevision.number, MissionRevision.digest)
        .join(MissionRevision, MissionRevision.mission_id == Mission.id)
        .order_by(Mission.code, MissionRevision.number)
    ):
        newest[code] = (code, int(number), str(digest))
    latest = tuple(newest.values())
    cached = _TYPES.get(latest)
    if cached is not None:
        return dict(cached)
    out: dict[str, str] = {}
    for code, number, _digest in latest:
        _, cfg = revision_config(session, code, number)
        declared = dict(cfg.mission.parameters)
        for pc in cfg.product_classes.values():
            for key, kind in pc.parameters.items():
                declared.setdefault(key, kind)
        for key, kind in declared.items():
            out.setdefault(key, _PARAMETER_KINDS[kind])
    if len(_TYPES) >= _TYPES_KEPT:
        _TYPES.clear()
    _TYPES[latest] = out
    return dict(out)


def value_type(value: Any) -> str | None:
    """The attribute type of a parameter value as stored in JSON (None: not an attribute)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    return None


def attribute_kinds(types: Mapping[str, str] | None) -> dict[str, str]:
    """Types of every known attribute: columns first, then declared parameters."""
    kinds = {name: column.type for name, column in attribute_columns().items()}
    for name, kind in (types or {}).items():
        kinds.setdefault(name, kind)
    return kinds
