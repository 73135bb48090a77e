"""Systematic production in a mission file: timeliness categories and order triggers.

A ground segment makes most products without anyone ordering them: raw data arrives
all day and every product downstream must appear by itself, once, within its
timeliness. The mission file says how, in two sections:

``timeliness``: categories of how soon products are due (``NRTI: 3 h``), counted
from the sensing stop of an order's slice or from the arrival of its last raw input.

``triggers``: what makes orders by itself. Each trigger names the classes its
orders request, their processing mode, priority and timeliness category, and what
fires it:

* ``data``: products of the ``on`` classes arrive (ingested or registered): an order
  for each slice (of the requested classes' slicing) they touch; with
  ``when: complete`` only once that slice's inputs satisfy the requested classes' rules
  with products that exist (the day's L3 once the day's L2 are in); with ``settle``
  only once that long passed without a new arrival touching the slice (a night's
  exposures arrive one by one, and the night is processed once they stopped);
* ``orbit``: an order per orbit of the mission's orbit table, ``delay`` after it ended;
* ``calendar``: at the times of a ``cron`` expression (UTC), an order for the
  ``window`` that ends ``lag`` before the firing time (daily at 02:00 the day before);
* ``interval``: every ``every``, an order for the ``window`` that ends at the firing time.

These are plain models (no Airflow); the catalogue keeps each trigger's state and the
orders it made (so the same slice never yields a second order), and the orchestrator
turns triggers into Airflow schedules.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from proseo.missions.base import Model, Name, ParamValue
from proseo.missions.types import Duration


class DeadlineFrom(StrEnum):
    SENSING_STOP = "sensing_stop"  # the slice's end of validity
    LAST_INPUT = "last_input"  # when the order's last raw input arrived


class TriggerKind(StrEnum):
    DATA = "data"
    ORBIT = "orbit"
    CALENDAR = "calendar"
    INTERVAL = "interval"


class DataWhen(StrEnum):
    ANY = "any"  # at the first product touching the slice (the rest is waited for)
    COMPLETE = "complete"  # once the slice's inputs satisfy the requested classes' rules


class Timeliness(Model):
    """How soon products are due, per category, and from when it is counted."""

    deadline_from: DeadlineFrom = DeadlineFrom.SENSING_STOP
    categories: dict[Name, Duration] = Field(min_length=1)

    @model_validator(mode="after")
    def _positive(self) -> Timeliness:
        for name, due in self.categories.items():
            if due <= timedelta(0):
                raise ValueError(f"category {name}: the time a product is due after must be positive")
        return self


class OrderSlicing(Model):
    """A trigger's own slicing for its orders (else each requested class's own)."""

    type: Literal["ORBIT", "CALENDAR_DAY", "CALENDAR_MONTH", "TIME_SLICE", "NONE"]
    duration: Duration | None = None


class Trigger(Model):
    """What makes orders by itself, and the orders it makes."""

    kind: TriggerKind
    classes: list[Name] = Field(min_length=1)  # requested by its orders
    mode: Name | None = None  # processing mode (default: the mission's first)
    timeliness: Name | None = None  # a category of the mission's timeliness table
    priority: int = Field(default=50, ge=1, le=100)  # as an order's
    facility: Name | None = None
    #: Several candidate facilities: the facility choice picks one per job step (not with 'facility').
    facilities: list[Name] = Field(default_factory=list, max_length=100, exclude_if=lambda v: not v)
    slicing: OrderSlicing | None = None
    output_parameters: dict[Name, ParamValue] = Field(default_factory=dict)
    enabled: bool = True
    # data
    on: list[Name] = Field(default_factory=list)
    when: DataWhen = DataWhen.ANY
    settle: Duration = timedelta(0)
    # orbit
    delay: Duration = timedelta(0)
    # calendar
    cron: str | None = None
    lag: Duration = timedelta(0)
    # calendar, interval
    window: Duration | None = None
    # interval
    every: Duration | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Trigger:
        """Each kind takes its own fields; a field of another kind is a mistake, not ignored."""
        own = {
            TriggerKind.DATA: {"on", "when", "settle"},
            TriggerKind.ORBIT: {"delay"},
            TriggerKind.CALENDAR: {"cron", "lag", "window"},
            TriggerKind.INTERVAL: {"every", "window"},
        }
        kind_fields = ("on", "when", "settle", "delay", "cron", "lag", "window", "every")
        # Fields holding other than their default (a stored config repeats every default).
        given = {
            f
            for f in kind_fields
            if getattr(self, f) != type(self).model_fields[f].get_default(call_default_factory=True)
        }
        for field in sorted(given - own[self.kind]):
            raise ValueError(f"'{field}' does not apply to a {self.kind.value} trigger")
        if self.kind is TriggerKind.DATA and not self.on:
            raise ValueError("a data trigger needs 'on': the classes whose arrival fires it")
        if self.kind is TriggerKind.CALENDAR:
            if not self.cron:
                raise ValueError("a calendar trigger needs 'cron' (minute hour day month weekday, UTC)")
            if self.window is None or self.window <= timedelta(0):
                raise ValueError("a calendar trigger needs a positive 'window': the period each order covers")
        if self.kind is TriggerKind.INTERVAL:
            if self.every is None or self.every <= timedelta(0):
                raise ValueError("an interval trigger needs a positive 'every'")
            if self.window is None or self.window <= timedelta(0):
                raise ValueError(
                    "an interval trigger needs a positive 'window' (the period each order covers)"
                )
        if self.facility is not None and self.facilities:
            raise ValueError("give 'facility' or 'facilities', not both")
        if len(set(self.facilities)) != len(self.facilities):
            raise ValueError("'facilities' lists a facility more than once")
        if self.delay < timedelta(0) or self.lag < timedelta(0) or self.settle < timedelta(0):
            raise ValueError("'delay', 'lag' and 'settle' cannot be negative")
        return self
