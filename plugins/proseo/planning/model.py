"""The in-memory plan: job steps, their planned outputs and their chosen inputs.

The planner builds this without writing anything; :mod:`proseo.planning.store`
then writes it in one transaction. Keeping the two apart makes the planner easy to
test and means a failed plan leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from proseo.missions.models import ConfiguredProcessor
from proseo.planning.slicing import Slice

PLANNED_PREFIX = "planned:"
CLAIMED_PREFIX = "output:"


def planned_id(step: int, output: int) -> str:
    """Candidate id of an output planned in this plan (sorts after real product ids)."""
    return f"{PLANNED_PREFIX}{step:06d}:{output:02d}"


def parse_planned_id(value: Any) -> tuple[int, int] | None:
    if isinstance(value, str) and value.startswith(PLANNED_PREFIX):
        step, output = value[len(PLANNED_PREFIX) :].split(":")
        return int(step), int(output)
    return None


def claimed_id(output_id: int) -> str:
    """Candidate id of an output another active order plans (a ``job_step_output`` row)."""
    return f"{CLAIMED_PREFIX}{output_id:012d}"


def parse_claimed_id(value: Any) -> int | None:
    if isinstance(value, str) and value.startswith(CLAIMED_PREFIX):
        return int(value[len(CLAIMED_PREFIX) :])
    return None


@dataclass(frozen=True)
class PlannedOutput:
    product_type: str
    file_name: str
    start: datetime
    stop: datetime
    orbit: int | None
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ChosenInput:
    """One product an input takes: an existing product, an output of a step of this plan
    (``step``, ``output``: plan indexes), or an output another active order already plans
    (``output_id``: its ``job_step_output`` row), which the step then waits for."""

    policy: str
    product_type: str
    product_id: int | None = None
    step: int | None = None
    output: int | None = None
    output_id: int | None = None


@dataclass
class InputPlan:
    """One (merged) rule of a job step and what it chose, and why."""

    rule_text: str
    origin: str
    source_types: tuple[str, ...]
    mandatory: bool
    min_cover: float | None
    filters: dict[str, Any]
    satisfied: bool
    chosen: list[ChosenInput]
    coverage: float
    explanation: str
    planned_slices: list[str] = field(default_factory=list)

    @property
    def waits_for_input(self) -> bool:
        """Unsatisfied, so the job step waits for products the order does not make."""
        return self.mandatory and not self.satisfied

    @property
    def awaits_other_order(self) -> bool:
        """Bound to an output another active order plans: the step waits for that order."""
        return any(c.output_id is not None for c in self.chosen)


@dataclass
class StepPlan:
    index: int
    product_type: str  # the class the processor is run for (the enclosing class for components)
    slice: Slice
    processor: ConfiguredProcessor
    outputs: list[PlannedOutput]
    requested: bool
    depth: int
    inputs: list[InputPlan] = field(default_factory=list)
    upstream: set[int] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, datetime, datetime]:
        return (self.product_type, self.slice.start, self.slice.stop)


@dataclass(frozen=True)
class Reused:
    """A requested product that already exists identically and is therefore not remade."""

    product_type: str
    slice: Slice
    product_id: int


@dataclass
class Plan:
    mode: str
    file_class: str
    generation_time: datetime
    steps: list[StepPlan]
    reused: list[Reused]
    queries: int = 0

    def summary(self) -> dict[str, Any]:
        by_class: dict[str, int] = {}
        for s in self.steps:
            by_class[s.product_type] = by_class.get(s.product_type, 0) + 1
        return {
            "job_steps": len(self.steps),
            "by_class": by_class,
            "edges": sum(len(s.upstream) for s in self.steps),
            "reused": len(self.reused),
            "waiting_for_input": sum(1 for s in self.steps if any(i.waits_for_input for i in s.inputs)),
            "awaiting_other_orders": sum(
                1 for s in self.steps if any(i.awaits_other_order for i in s.inputs)
            ),
            "catalogue_queries": self.queries,
        }
