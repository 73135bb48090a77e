"""Product identity and product queries.

``product_identity`` is the single definition of "the same product" used by
ingestion and by registration of processor outputs; ``product_uuid`` turns it into
the product's public UUID for both. Queries select by
class, overlap with a time window and typed free parameters, with paging.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session, selectinload

from proseo.catalog.mission_sync import get_mission, revision_config
from proseo.catalog.model_mission import ConfiguredProcessor, ProductClass
from proseo.catalog.model_product import Product
from proseo.errors import NotFoundError, ProseoError
from proseo.missions.types import ParameterType, format_utc
from proseo.storage.keys import check_key


def product_identity(
    *,
    mission: str,
    product_type: str,
    file_class: str,
    mode: str | None,
    start: datetime,
    stop: datetime,
    generation: datetime | None,
    configured_processor: str | None,
    parameters: Mapping[str, Any],
) -> str:
    """Hash of everything that makes a product *this* product (64 hex characters)."""
    payload = [
        mission,
        product_type,
        file_class,
        mode,
        format_utc(start),
        format_utc(stop),
        format_utc(generation) if generation else None,
        configured_processor,
        sorted((k, v) for k, v in parameters.items()),
    ]
    blob = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


#: The UUID namespace of products; a product's UUID is a name-based UUID of its identity.
PRODUCT_NAMESPACE = uuid.UUID("6f0b7c1e-3d55-4c1e-9a53-70726f73656f")


def product_uuid(identity: str) -> str:
    """The public UUID of the product with ``identity`` (the same whoever registers it:
    ingestion or a processor run), so a product keeps its UUID across catalogues."""
    return str(uuid.uuid5(PRODUCT_NAMESPACE, identity))


@dataclass(frozen=True)
class ProductQuery:
    """What ``proseo product query`` and the REST API ask for."""

    mission: str
    product_type: str | None = None
    start: datetime | None = None
    stop: datetime | None = None
    parameters: Mapping[str, str] | None = None
    file_class: str | None = None
    mode: str | None = None
    limit: int = 100
    offset: int = 0


def class_ids(session: Session, mission_id: int, types: Sequence[str] | None = None) -> dict[str, int]:
    query = select(ProductClass.product_type, ProductClass.id).where(ProductClass.mission_id == mission_id)
    if types:
        query = query.where(ProductClass.product_type.in_(types))
    return dict(session.execute(query).all())


def processor_ids(session: Session, mission_id: int) -> dict[str, int]:
    """Configured processor identifier -> row id, for one mission."""
    query = select(ConfiguredProcessor.identifier, ConfiguredProcessor.id).where(
        ConfiguredProcessor.mission_id == mission_id
    )
    return dict(session.execute(query).all())


def overlapping(class_id: int, start: datetime, stop: datetime) -> ColumnElement[bool]:
    """Products of a class whose validity intersects ``[start, stop]`` (touching does not count).

    Served by the (class, sensing_start, sensing_stop) index.
    """
    return and_(
        Product.product_class_id == class_id,
        Product.sensing_start < stop,
        Product.sensing_stop > start,
    )


def _parameter_filter(key: str, raw: str, kind: ParameterType) -> ColumnElement[bool]:
    element = Product.parameters[key]
    try:
        value = kind.coerce(raw)
    except ValueError as exc:
        raise ProseoError(f"parameter {key}: {exc}") from exc
    # Values no column can hold match nothing, but PostgreSQL and SQLite would refuse to compare.
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ProseoError(f"parameter {key}: {raw[:40]!r} is beyond 64 bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProseoError(f"parameter {key}: {raw!r} is not a finite number")
    if kind is ParameterType.INTEGER:
        return element.as_integer() == value
    if kind is ParameterType.FLOAT:
        return element.as_float() == value
    if kind is ParameterType.BOOLEAN:
        return element.as_boolean() == value
    return element.as_string() == value


def build_query(session: Session, q: ProductQuery) -> Select[Any]:
    mission = get_mission(session, q.mission)
    stmt = select(Product).where(Product.mission_id == mission.id)
    types: dict[str, ParameterType] = {}
    if q.product_type is not None:
        ids = class_ids(session, mission.id, [q.product_type])
        if q.product_type not in ids:
            raise NotFoundError(f"mission {q.mission} has no product class {q.product_type!r}")
        stmt = stmt.where(Product.product_class_id == ids[q.product_type])
    if q.parameters:
        _, cfg = revision_config(session, q.mission)
        if q.product_type is not None:
            types = cfg.parameter_types(q.product_type)
        else:
            types = dict(cfg.mission.parameters)
            for pc in cfg.product_classes.values():
                types.update(pc.parameters)
        for key, raw in q.parameters.items():
            stmt = stmt.where(_parameter_filter(key, raw, types.get(key, ParameterType.STRING)))
    if q.start is not None:
        stmt = stmt.where(Product.sensing_stop > q.start)
    if q.stop is not None:
        stmt = stmt.where(Product.sensing_start < q.stop)
    if q.file_class is not None:
        stmt = stmt.where(Product.file_class == q.file_class)
    if q.mode is not None:
        stmt = stmt.where(Product.mode == q.mode)
    return stmt


def query_products(session: Session, q: ProductQuery) -> tuple[list[Product], int]:
    """One page of matching products (with their files) and the total count."""
    stmt = build_query(session, q)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = (
        stmt.options(selectinload(Product.files))
        .order_by(Product.sensing_start, Product.id)
        .limit(q.limit)
        .offset(q.offset)
    )
    return list(session.scalars(page).unique()), total


def product_dict(p: Product) -> dict[str, Any]:
    """JSON form of a product as the CLI and API print it."""
    return {
        "id": p.id,
        "uuid": p.uuid,
        "product_type": p.product_class.product_type,
        "file_class": p.file_class,
        "mode": p.mode,
        "start": format_utc(p.sensing_start),
        "stop": format_utc(p.sensing_stop),
        "generation_time": format_utc(p.generation_time),
        "production_type": p.production_type,
        "status": p.status,
        "parameters": p.parameters,
        # GeoJSON (Point or Polygon) from the processor or the ingestion sidecar; None: none.
        "footprint": p.footprint.geojson() if p.footprint is not None else None,
        "files": [
            {
                "file_name": f.file_name,
                "url": f.storage_url,
                "size": f.size,
                "md5": f.md5,
                "sha256": f.sha256,
                "xxh128": f.xxh128,
            }
            for f in p.files
        ],
    }


def storage_key(product_type: str, start: datetime, file_name: str) -> str:
    """Where a product's file is stored, relative to its facility's root: one scheme for all.

    ``<type>/<yyyy>/<mm>/<dd>/<file name>`` by sensing start (UTC): ingestion copies
    deliveries there and a job step's planned outputs are uploaded there, so a retried
    run or a repeated ingestion writes the same keys.
    """
    return check_key(f"{product_type}/{start.astimezone(UTC):%Y/%m/%d}/{file_name}")


def product_key(
    *,
    mission: str,
    product_type: str,
    file_class: str,
    mode: str | None,
    start: datetime,
    stop: datetime,
    configured_processor: str | None,
    parameters: Mapping[str, Any],
) -> str:
    """A product's identity without its generation time: what two orders would both make.

    Planned outputs carry it, so an order can find (and wait for) a product another
    active order already plans instead of planning it a second time.
    """
    return product_identity(
        mission=mission,
        product_type=product_type,
        file_class=file_class,
        mode=mode,
        start=start,
        stop=stop,
        generation=None,
        configured_processor=configured_processor,
        parameters=parameters,
    )
