"""What an operator asks of a reprocessing campaign, checked before anything is written.

A campaign is mission x requested classes x period x processing mode (RPRO by
default) x pinned configured processors x facilities, cut into units (UTC days or
months) that become orders, released a window at a time, at a priority below
systematic production. Field checks are on the model (pydantic names the field);
the checks that need the mission are in :func:`check_campaign`, which lists every
problem with its field, as :func:`proseo.planning.spec.check_against` does for orders.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from proseo.errors import CampaignError, OrderError
from proseo.missions.models import MissionConfig
from proseo.missions.types import Duration, UtcDateTime
from proseo.planning.spec import MAX_ITEMS, OrderSpec, OrderValue, check_against
from proseo.text import Name32, Name64, Name128

#: Units a campaign may have (20 years of days): the dry run and the passes stay cheap.
MAX_UNITS = 7400
#: Years a campaign's period may lie in (instants stay far from datetime's limits).
EARLIEST, LATEST = 1900, 2200
#: Priority of a campaign's orders unless given: below every trigger of the sample missions.
DEFAULT_PRIORITY = 20


class CampaignUnit(StrEnum):
    DAY = "day"
    MONTH = "month"


class Window(BaseModel):
    """How much of a campaign may be in flight at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_active_orders: int = Field(default=3, ge=1, le=1000)
    #: Job steps of the campaign's active orders per facility that are not finished yet;
    #: no new order goes to a facility at or above it (None: no limit).
    max_active_steps_per_facility: int | None = Field(default=None, ge=1, le=1_000_000)


class CampaignSpec(BaseModel):
    """A reprocessing campaign request (CLI file or options, REST body)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    requested_classes: list[Name64] = Field(min_length=1, max_length=MAX_ITEMS)
    input_only_classes: list[Name64] = Field(default_factory=list, max_length=MAX_ITEMS)
    start: UtcDateTime
    stop: UtcDateTime
    unit: CampaignUnit = CampaignUnit.DAY
    processing_mode: Name32 = "RPRO"
    configured_processors: list[Name128] = Field(default_factory=list, max_length=MAX_ITEMS)
    facilities: list[Name64] = Field(default_factory=list, max_length=100)
    window: Window = Field(default_factory=Window)
    priority: int = Field(default=DEFAULT_PRIORITY, ge=1, le=100)
    output_file_class: Name32 | None = None
    output_parameters: dict[Name64, dict[Name64, OrderValue]] = Field(
        default_factory=dict, max_length=MAX_ITEMS
    )
    #: How long a unit's job step waits for an input before it fails (and becomes a gap
    #: "input missing"); a campaign must not wait forever for data that is not coming.
    input_timeout: Duration = timedelta(hours=6)
    description: str = Field(default="", max_length=1000)

    @field_validator("requested_classes", "input_only_classes", "configured_processors", "facilities")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        dupes = sorted(v for v, n in Counter(value).items() if n > 1)
        if dupes:
            raise ValueError(f"listed more than once: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _period(self) -> CampaignSpec:
        if self.stop <= self.start:
            raise ValueError(f"stop {self.stop.isoformat()} is not after start {self.start.isoformat()}")
        if not (self.start.year >= EARLIEST and self.stop.year <= LATEST):
            raise ValueError(f"the period must lie within the years {EARLIEST}..{LATEST}")
        if self.stop - self.start > timedelta(days=MAX_UNITS):
            raise ValueError(f"the period is longer than {MAX_UNITS:,} days: split it into several campaigns")
        if self.input_timeout <= timedelta(0):
            raise ValueError("input_timeout must be positive")
        return self

    def order_spec(self, identifier: str, **period: Any) -> OrderSpec:
        """The order request of one unit (``period``: start/stop or orbit_from/orbit_to)."""
        return OrderSpec.model_validate(
            {
                "identifier": identifier,
                "requested_classes": list(self.requested_classes),
                "input_only_classes": list(self.input_only_classes),
                "configured_processors": list(self.configured_processors),
                "output_file_class": self.output_file_class,
                "processing_mode": self.processing_mode,
                "production_type": "SYSTEMATIC",
                "output_parameters": self.output_parameters,
                "priority": self.priority,
                "input_timeout": self.input_timeout,
                "on_input_timeout": "FAIL",
                **period,
            }
        )


def parse_campaign(data: Any, *, mission: str | None = None) -> CampaignSpec:
    """A campaign request from plain data; errors list each field (``window.max_active_orders: ...``)."""
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'campaign'}: {err['msg']}" for err in exc.errors()
        ]
        name = data.get("name") if isinstance(data, dict) and isinstance(data.get("name"), str) else None
        message = "invalid campaign: " + "; ".join(problems)
        raise CampaignError(message, mission=mission, campaign=name) from None


def lowest_trigger_priority(cfg: MissionConfig) -> int | None:
    """The lowest priority of the mission's enabled triggers (systematic production)."""
    found = [t.priority for t in cfg.triggers.values() if t.enabled]
    return min(found) if found else None


def check_campaign(spec: CampaignSpec, cfg: MissionConfig) -> None:
    """Refuse a campaign its mission cannot carry out; every problem with its field."""
    problems: list[str] = []
    try:
        check_against(spec.order_spec(f"{spec.name}_check", start=spec.start, stop=spec.stop), cfg)
    except OrderError as exc:
        problems.append(str(exc).split("invalid order: ", 1)[-1])
    for name in spec.facilities:
        if name not in cfg.facilities:
            problems.append(f"facilities: unknown facility {name!r}")
    lowest = lowest_trigger_priority(cfg)
    if lowest is not None and spec.priority >= lowest:
        problems.append(
            f"priority: {spec.priority} is not below systematic production (its lowest trigger "
            f"priority is {lowest}); campaigns must not delay timely products"
        )
    if problems:
        raise CampaignError("invalid campaign: " + "; ".join(problems), mission=cfg.code, campaign=spec.name)
