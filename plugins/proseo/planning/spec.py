"""What an operator asks for: the order request, checked at the edge against its mission.

The same pydantic model serves the CLI (options or a YAML/JSON file), our REST API
and the Airflow trigger form. Field-level checks live on the model; checks that need
the mission (known classes, modes, file classes, configured processors, orbits,
parameter types) are in :func:`check_against`, which reports every problem at once,
each with the field it concerns.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from proseo.catalog.model_product import ProductionType
from proseo.errors import OrderError
from proseo.missions.models import MissionConfig, ParamValue
from proseo.missions.types import Duration, SlicingType, UtcDateTime


class OnInputTimeout(StrEnum):
    FAIL = "FAIL"  # the job step fails when its inputs did not arrive in time
    RUN_WITH_AVAILABLE = "RUN_WITH_AVAILABLE"  # it runs with what exists (optional-ised inputs)


class SlicingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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

    model_config = ConfigDict(extra="forbid", frozen=True)

    identifier: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    requested_classes: list[str] = Field(min_length=1)
    input_only_classes: list[str] = Field(default_factory=list)
    configured_processors: list[str] = Field(default_factory=list)
    output_file_class: str | None = None
    processing_mode: str | None = None
    production_type: ProductionType = ProductionType.ON_DEMAND_DEFAULT
    start: UtcDateTime | None = None
    stop: UtcDateTime | None = None
    orbit_from: int | None = Field(default=None, ge=0)
    orbit_to: int | None = Field(default=None, ge=0)
    slicing: SlicingRequest | None = None
    input_filters: dict[str, dict[str, ParamValue]] = Field(default_factory=dict)
    dynamic_parameters: dict[str, ParamValue] = Field(default_factory=dict)
    #: Per product class; the key "*" gives values for every class (e.g. a collection number).
    output_parameters: dict[str, dict[str, ParamValue]] = Field(default_factory=dict)
    priority: int = Field(default=50, ge=1, le=100)
    execution_time: UtcDateTime | None = None
    input_timeout: Duration | None = None
    on_input_timeout: OnInputTimeout = OnInputTimeout.FAIL
    notification_endpoint: str | None = Field(default=None, pattern=r"^(https?|mailto):")
    facility: str | None = None

    @field_validator("requested_classes", "input_only_classes", "configured_processors")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        dupes = sorted({v for v in value if value.count(v) > 1})
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
        return self

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
    if spec.orbit_from is not None and not cfg.spacecraft:
        problems.append("orbit_from: the mission has no spacecraft, so no orbits")
    for field, table in (
        ("input_filters", spec.input_filters),
        ("output_parameters", spec.output_parameters),
    ):
        for name, values in table.items():
            if name == "*" and field == "output_parameters":
                types: dict[str, Any] = dict(cfg.mission.parameters)
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
