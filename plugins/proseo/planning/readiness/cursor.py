"""The watermark side of the poll: which products are new, and does one meet a query?

A :class:`PollCursor` carries the watermark and the previous poll's spans, so the new
products can ride in the same statement as the steps; :class:`_NewProducts` answers
"does any new product meet this window?" by bisection instead of a scan.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_product import Product, ProductStatus
from proseo.planning.readiness.asks import _Open

Spans = dict[tuple[int, str], tuple[datetime, datetime] | None]


@dataclass
class PollCursor:
    """What a poller carries from one poll to the next.

    ``since``: the watermark (products created at or after it are new). ``spans``: per
    (mission, product type) the windows the previous poll's open queries asked about.
    Passing a cursor instead of a bare instant lets :func:`poll_readiness` ask for the
    new products in the *same* statement as the steps (steady state: one statement),
    using the previous spans; where this poll asks about more than those covered, a
    second statement asks for the rest.
    """

    since: datetime | None = None
    spans: Spans | None = None


def _covers(have: Spans, key: tuple[int, str], span: tuple[datetime, datetime] | None) -> bool:
    if key not in have:
        return False
    old = have[key]
    return old is None or (span is not None and old[0] <= span[0] and span[1] <= old[1])


def _new_products_query(since: datetime, spans: Spans) -> Any:
    terms = []
    for (mission_id, ptype), span in sorted(spans.items(), key=lambda kv: kv[0]):
        term = and_(ProductClass.mission_id == mission_id, ProductClass.product_type == ptype)
        if span is not None:
            term = and_(term, Product.sensing_start <= span[1], Product.sensing_stop >= span[0])
        terms.append(term)
    return (
        select(
            ProductClass.mission_id,
            ProductClass.product_type,
            Product.sensing_start,
            Product.sensing_stop,
        )
        .join(ProductClass, ProductClass.id == Product.product_class_id)
        .where(Product.created_at >= since, Product.status == ProductStatus.AVAILABLE.value, or_(*terms))
    )


class _NewProducts:
    """New products per (mission, type), sorted by start, with the running maximum of
    their stops: "does any meet [lo, hi]?" is one bisection, not a scan."""

    def __init__(self, new: dict[tuple[int, str], list[tuple[datetime, datetime]]]) -> None:
        self._starts: dict[tuple[int, str], list[datetime]] = {}
        self._max_stop: dict[tuple[int, str], list[datetime]] = {}
        for key, rows in new.items():
            rows.sort()
            self._starts[key] = [start for start, _ in rows]
            running: list[datetime] = []
            for _, stop in rows:
                running.append(stop if not running or stop > running[-1] else running[-1])
            self._max_stop[key] = running

    def meets(self, q: _Open, mission_id: int) -> bool:
        for ptype, window in q.asks:
            starts = self._starts.get((mission_id, ptype))
            if not starts:
                continue
            if window is None:
                return True
            n = bisect_right(starts, window[1])  # products starting at or before hi
            if n and self._max_stop[(mission_id, ptype)][n - 1] >= window[0]:
                return True
        return False
