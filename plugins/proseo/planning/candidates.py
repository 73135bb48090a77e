"""Batched catalogue reads for the planner: the candidates of each source class.

Planning an order must not ask the catalogue once per job step per rule. The planner
first collects, for one level of the plan, every window each source class is asked
about, then this cache fetches per class *one* overlap query over the union of those
windows (only the part not fetched before). Policies that can reach outside any
window ("closest ..." and the window-less "latest ..." ones) also get the nearest
products on either side, or the class's extremes, found by ordered scans that stop
as soon as every filter set in use has its answer, so results equal those of
evaluating each rule against the whole class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, select
from sqlalchemy.orm import Session

from proseo.catalog.model_product import Product, ProductStatus
from proseo.rules.evaluate import matches
from proseo.rules.policies import Candidate

PAGE = 500
SCAN_LIMIT = 100_000

Filters = tuple[tuple[str, str], ...]


@dataclass
class ClassNeeds:
    """What one level of the plan asks of one source class."""

    lo: datetime | None = None
    hi: datetime | None = None
    nearest: set[Filters] = field(default_factory=set)  # filter sets of rules with "closest" policies
    extremes: set[Filters] = field(default_factory=set)  # filter sets of rules with window-less policies

    def add_window(self, start: datetime, stop: datetime) -> None:
        self.lo = start if self.lo is None else min(self.lo, start)
        self.hi = stop if self.hi is None else max(self.hi, stop)


class ClassBuckets:
    """Candidates by class, the time span fetched per class, and a version per class.

    The planner keeps derived indexes per class and rebuilds one only when its class's
    version changed; :meth:`_missing` says which parts of a window are not fetched yet.
    """

    def __init__(self) -> None:
        self._by_class: dict[str, dict[Any, Candidate]] = {}
        self._span: dict[str, tuple[datetime, datetime]] = {}
        self._versions: dict[str, int] = {}
        self.queries = 0

    def version(self, product_type: str) -> int:
        """Changes whenever candidates of ``product_type`` were added (for derived indexes)."""
        return self._versions.get(product_type, 0)

    def candidates(self, product_type: str) -> list[Candidate]:
        return list(self._by_class.get(product_type, {}).values())

    def _add(self, product_type: str, found: Iterable[Candidate]) -> int:
        """Keep new candidates of a class (bumping its version); how many were new."""
        bucket = self._by_class.setdefault(product_type, {})
        before = len(bucket)
        for cand in found:
            bucket.setdefault(cand.id, cand)
        if len(bucket) != before:
            self._versions[product_type] = self.version(product_type) + 1
        return len(bucket) - before

    def _missing(self, product_type: str, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        have = self._span.get(product_type)
        if have is None:
            self._span[product_type] = (lo, hi)
            return [(lo, hi)]
        pieces = []
        if lo < have[0]:
            pieces.append((lo, have[0]))
        if hi > have[1]:
            pieces.append((have[1], hi))
        self._span[product_type] = (min(lo, have[0]), max(hi, have[1]))
        return pieces


_COLUMNS = (
    Product.id,
    Product.sensing_start,
    Product.sensing_stop,
    Product.generation_time,
    Product.parameters,
    Product.file_class,
    Product.mode,
    Product.production_type,
    Product.configured_processor_id,
)


class CandidateCache(ClassBuckets):
    """Products of the mission by class, fetched in bulk and kept for the whole planning run."""

    def __init__(self, session: Session, class_ids: dict[str, int], processor_names: dict[int, str]) -> None:
        super().__init__()
        self._session = session
        self._class_ids = class_ids
        self._processor_names = processor_names
        self._scanned: set[tuple[str, str, Filters]] = set()

    def fetch(self, needs: dict[str, ClassNeeds]) -> None:
        for product_type, need in needs.items():
            class_id = self._class_ids.get(product_type)
            if class_id is None:
                continue
            bucket = self._by_class.setdefault(product_type, {})
            if need.lo is not None and need.hi is not None:
                for lo, hi in self._missing(product_type, need.lo, need.hi):
                    rows = self._rows(self._base(class_id).where(self._overlap(lo, hi)))
                    self._add(product_type, (self._candidate(p) for p in rows))
                for filters in need.nearest:
                    self._nearest(product_type, class_id, bucket, filters, need.lo, need.hi)
            for filters in need.extremes:
                for column in (Product.sensing_start, Product.sensing_stop, Product.generation_time):
                    self._scan_once(
                        product_type, bucket, filters, f"max:{column.key}", class_id, column, None
                    )

    # -- queries ------------------------------------------------------------------

    def _base(self, class_id: int) -> Select[Any]:
        # Columns, not entities: a year's plan reads tens of thousands of products, and
        # entities (with their eagerly joined class) cost several times more to load.
        return select(*_COLUMNS).where(
            Product.product_class_id == class_id, Product.status == ProductStatus.AVAILABLE.value
        )

    @staticmethod
    def _overlap(lo: datetime, hi: datetime) -> ColumnElement[bool]:
        # Inclusive at both ends so zero-length windows find the products holding them;
        # the policies apply the exact (strict) rule afterwards.
        return and_(Product.sensing_start <= hi, Product.sensing_stop >= lo)

    def _nearest(
        self,
        product_type: str,
        class_id: int,
        bucket: dict[Any, Candidate],
        filters: Filters,
        lo: datetime,
        hi: datetime,
    ) -> None:
        lo, hi = self._span.get(product_type, (lo, hi))
        for column in (Product.sensing_start, Product.sensing_stop):
            self._scan_once(product_type, bucket, filters, f"below:{column.key}:{lo}", class_id, column, lo)
            self._scan_once(product_type, bucket, filters, f"above:{column.key}:{hi}", class_id, column, hi)

    def _scan_once(
        self,
        product_type: str,
        bucket: dict[Any, Candidate],
        filters: Filters,
        key: str,
        class_id: int,
        column: Any,
        bound: datetime | None,
    ) -> None:
        """Products with the extreme value of ``column`` (beyond ``bound``) that match ``filters``."""
        marker = (product_type, key, filters)
        if marker in self._scanned:
            return
        self._scanned.add(marker)
        query = self._base(class_id)
        if key.startswith("above"):
            query = query.where(column > bound).order_by(column.asc(), Product.id)
        elif key.startswith("below"):
            query = query.where(column < bound).order_by(column.desc(), Product.id)
        else:
            query = query.order_by(column.desc(), Product.id)
        found_value: Any = None
        for offset in range(0, SCAN_LIMIT, PAGE):
            rows = self._rows(query.offset(offset).limit(PAGE))
            for product in rows:
                value = getattr(product, column.key)
                if found_value is not None and value != found_value:
                    return
                cand = self._candidate(product)
                if matches(cand, filters):
                    if cand.id not in bucket:
                        bucket[cand.id] = cand
                        self._versions[product_type] = self.version(product_type) + 1
                    found_value = value
            if len(rows) < PAGE:
                return

    def _rows(self, query: Select[Any]) -> Sequence[Row[Any]]:
        self.queries += 1
        return self._session.execute(query).all()

    def _candidate(self, product: Row[Any]) -> Candidate:
        attributes: dict[str, Any] = dict(product.parameters or {})
        attributes.update(
            file_class=product.file_class,
            mode=product.mode,
            production_type=product.production_type,
            configured_processor=self._processor_names.get(product.configured_processor_id or -1),
        )
        return Candidate(
            id=product.id,
            start=product.sensing_start,
            stop=product.sensing_stop,
            generation=product.generation_time,
            attributes=attributes,
        )


def windows_union(windows: Iterable[tuple[datetime, datetime]]) -> tuple[datetime, datetime] | None:
    items = list(windows)
    if not items:
        return None
    return min(a for a, _ in items), max(b for _, b in items)
