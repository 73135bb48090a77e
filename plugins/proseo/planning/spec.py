"""What an operator asks for: the order request, checked at the edge against its mission.

The same pydantic model serves the CLI (options or a YAML/JSON file), our REST API
and the Airflow trigger form. Field-level checks live on the model; checks that need
the mission (known classes, modes, file classes, configured processors, orbits,
parameter types) are in :func:`check_against`, which reports every problem at once,
each with the field it concerns.

Every value fits the catalogue on both backends (:mod:`proseo.text`): no NUL
character, strings no longer than their columns, integers within their columns,
no NaN or infinity (JSON cannot carry them back out); lists are bounded so a huge
request costs little to refuse.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator, model_validator

from proseo.catalog.model_product import ProductionType
from proseo.errors import OrderError
from proseo.missions.models import MAX_ORBIT_NUMBER, MissionConfig
from proseo.missions.types import Duration, SlicingType, UtcDateTime
from proseo.text import MAX_INT64, Name32, Name64, Name128, Url, refuse_nul

#: Entries of a list or table in an order (a mission has tens of classes, not thousands).
MAX_ITEMS = 1000


def _order_value(value: Any) -> str | int | float | bool:
    """A parameter value as an order gives it: storable text, a 64-bit integer, a finite float."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_INT64 - 1 <= value <= MAX_INT64:
            raise ValueError("an integer beyond 64 bits cannot be stored")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value
    if isinstance(value, str):
        return refuse_nul(value)
    raise ValueError(f"expected text, a number or true/false, not {type(value).__name__}")


OrderValue = Annotated[
    str | int | float | bool, PlainValidator(_order_value, json_schema_input_type=str | int | float | bool)
]


class OnInputTimeout(StrEnum):
    FAIL = "FAIL"  # the job step fails when its inputs did not arrive in time
    RUN_WITH_AVAILABLE = "RUN_WITH_AVAILABLE"  # it runs with what exists (optional-ised inputs)


class SlicingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: SlicingType
    duration: Duration | None = None
    overlap: Duration = timedelta(0)

    @model_validator(mode="after")
    def _duration(self) -> SlicingRequest:
        if self.type is SlicingType.TIME_SLICE and not self.duration:
            raise ValueError("TIME_SLICE needs a positive 'duration'")
        if self.type is not SlicingType.TIME_SLICE and (self.duration or self.overlap):
            raise ValueError(f"'duration' and 'overlap' apply only to TIME_SLICE, not {self.type.value}")
        return self


class OrderSpec(BaseModel):
    """An order request as prosEO knows it, validated before anything is written."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    identifier: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    requested_classes: list[Name64] = Field(min_length=1, max_length=MAX_ITEMS)
    input_only_classes: list[Name64] = Field(default_factory=list, max_length=MAX_ITEMS)
    configured_processors: list[Name128] = Field(default_factory=list, max_length=MAX_ITEMS)
    output_file_class: Name32 | None = None
    processing_mode: Name32 | None = None
    production_type: ProductionType = ProductionType.ON_DEMAND_DEFAULT
    start: UtcDateTime | None = None
    stop: UtcDateTime | None = None
    orbit_from: int | None = Field(default=None, ge=0, le=MAX_ORBIT_NUMBER)
    orbit_to: int | None = Field(default=None, ge=0, le=MAX_ORBIT_NUMBER)
    slicing: SlicingRequest | None = None
    input_filters: dict[Name64, dict[Name64, OrderValue]] = Field(default_factory=dict, max_length=MAX_ITEMS)
    dynamic_parameters: dict[Name64, OrderValue] = Field(default_factory=dict, max_length=MAX_ITEMS)
    #: Per product class; the key "*" gives values for every class (e.g. a collection number).
    output_parameters: dict[Name64, dict[Name64, OrderValue]] = Field(
        default_factory=dict, max_length=MAX_ITEMS
    )
    priority: int = Field(default=50, ge=1, le=100)
    execution_time: UtcDateTime | None = None
    input_timeout: Duration | None = None
    on_input_timeout: OnInputTimeout = OnInputTimeout.FAIL
    notification_endpoint: Url | None = Field(default=None, pattern=r"^(https?|mailto):")
    facility: Name64 | None = None
    #: Several candidate facilities (instead of ``facility``): at release the facility
    #: choice (planning/facility_choice.py) picks one per job step; the first is the order's own.
    facilities: list[Name64] = Field(default_factory=list, max_length=100)

    @field_validator("requested_classes", "input_only_classes", "configured_processors", "facilities")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        dupes = sorted(v for v, n in Counter(value).items() if n > 1)
        if dupes:
            raise ValueError(f"listed more than once: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _period(self) -> OrderSpec:
        by_time = self.start is not None or self.stop is not None
        by_orbit = self.orbit_from is not None or self.orbit_to is not None
        if by_time == by_orbit:
            raise ValueError("give either start and stop, or orbit_from and orbit_to")
        if by_time and (self.start is None or self.stop is None):
            raise ValueError("give both start and stop")
        if by_orbit and (self.orbit_from is None or self.orbit_to is None):
            raise ValueError("give both orbit_from and orbit_to")
        if self.start and self.stop and self.stop <= self.start:
            raise ValueError(f"stop {self.stop.isoformat()} is not after start {self.start.isoformat()}")
        if self.orbit_from is not None and self.orbit_to is not None and self.orbit_to < self.orbit_from:
            raise ValueError(f"orbit_to {self.orbit_to} is before orbit_from {self.orbit_from}")
        if self.facility is not None and self.facilities:
            raise ValueError("give 'facility' or 'facilities', not both")
        return self

    def candidate_facilities(self) -> list[str]:
        """The facilities the order may run on, in its own order (empty: the mission's default)."""
        return list(self.facilities) if self.facilities else [self.facility] if self.facility else []

    def window_text(self) -> str:
        if self.start is not None and self.stop is not None:
            return f"{self.start.isoformat()} .. {self.stop.isoformat()}"
        return f"orbits {self.orbit_from}..{self.orbit_to}"


def check_against(spec: OrderSpec, cfg: MissionConfig) -> None:
    """Refuse an order its mission cannot satisfy; lists every problem with its field."""
    problems: list[str] = []
    classes = cfg.product_classes

    def need_class(field: str, name: str) -> bool:
        if name not in classes:
            problems.append(f"{field}: unknown product class {name!r}")
            return False
        return True

    for name in spec.requested_classes:
        if need_class("requested_classes", name) and cfg.producer_of(name) is None:
            problems.append(f"requested_classes: {name} has no processor, so it can only be ingested")
    for name in spec.input_only_classes:
        need_class("input_only_classes", name)
        if name in spec.requested_classes:
            problems.append(f"input_only_classes: {name} is also requested")
    known = {cp.id: cp for cp in cfg.configured_processors()}
    pinned: dict[str, str] = {}
    for ident in spec.configured_processors:
        cp = known.get(ident)
        if cp is None:
            problems.append(f"configured_processors: unknown configured processor {ident!r}")
        elif not cp.enabled:
            problems.append(f"configured_processors: {ident} is disabled")
        elif cp.processor in pinned:
            problems.append(f"configured_processors: {ident} and {pinned[cp.processor]} pin one processor")
        else:
            pinned[cp.processor] = ident
    if spec.processing_mode is not None and spec.processing_mode not in cfg.mission.processing_modes:
        modes = ", ".join(cfg.mission.processing_modes)
        problems.append(f"processing_mode: {spec.processing_mode!r} is not one of {modes}")
    if spec.output_file_class is not None and spec.output_file_class not in cfg.mission.file_classes:
        file_classes = ", ".join(cfg.mission.file_classes)
        problems.append(f"output_file_class: {spec.output_file_class!r} is not one of {file_classes}")
    if spec.facility is not None and spec.facility not in cfg.facilities:
        problems.append(f"facility: unknown facility {spec.facility!r}")
    for name in spec.facilities:
        if name not in cfg.facilities:
            problems.append(f"facilities: unknown facility {name!r}")
    if spec.orbit_from is not None and not cfg.spacecraft:
        problems.append("orbit_from: the mission has no spacecraft, so no orbits")
    for field, table in (
        ("input_filters", spec.input_filters),
        ("output_parameters", spec.output_parameters),
    ):
        for name, values in table.items():
            if name == "*" and field == "output_parameters":
                # Every class an order can make that declares the parameter (the mission's
                # parameters count for all of them).
                types: dict[str, Any] = dict(cfg.mission.parameters)
                for ptype in cfg.product_classes:
                    if cfg.producer_of(ptype) is not None:
                        types.update(cfg.product_classes[ptype].parameters)
            elif not need_class(field, name):
                continue
            else:
                types = cfg.parameter_types(name)
            for key, value in values.items():
                _check_parameter(problems, f"{field}.{name}.{key}", key, value, types)
    if problems:
        raise OrderError("invalid order: " + "; ".join(problems), mission=cfg.code, order=spec.identifier)


_ATTRIBUTES = {"file_class", "mode", "production_type"}


def _check_parameter(problems: list[str], field: str, key: str, value: Any, types: dict[str, Any]) -> None:
    if key in _ATTRIBUTES:
        return
    kind = types.get(key)
    if kind is None:
        if ".*." in field:
            problems.append(f"{field}: no class an order can make declares parameter {key!r}")
        else:
            problems.append(f"{field}: the class declares no parameter {key!r}")
        return
    try:
        coerced = kind.coerce(value)
    except ValueError as exc:
        problems.append(f"{field}: {exc}")
        return
    if coerced != value:
        problems.append(f"{field}: {value!r} is not a {kind.value} (write {coerced!r})")


def effective_mode(spec: OrderSpec, cfg: MissionConfig) -> str:
    return spec.processing_mode or cfg.mission.processing_modes[0]


def effective_file_class(spec: OrderSpec, cfg: MissionConfig) -> str:
    return spec.output_file_class or cfg.mission.file_classes[0]
