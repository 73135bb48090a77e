"""The shape of an order's DAG, computed once when the order is released.

The DAG factory must not pay per job step when the DAG processor parses (a month of
orders means tens of thousands of job steps, parsed every 30 s). So at release the
plan is reduced to a small JSON blueprint stored on the order: the job steps grouped
into *levels* (a step's level is one more than the highest level of its upstream
steps), which become one mapped task group each. Airflow orders the levels; the
exact edges inside the plan are checked by each step against the catalogue before
it runs. Parsing a shard is then one query for the blueprints of its orders.

The blueprint is a typed, versioned model (:class:`Blueprint`, ``extra="forbid"``):
:func:`build_blueprint` makes it, the order stores ``Blueprint.as_json()``, and every
reader (the DAG factory, the listeners) goes through :func:`read_blueprint`, which
refuses a stored blueprint that does not validate with one error naming the order.
A future shape gets ``version: 2`` here and an upgrade of version-1 blueprints in
:func:`read_blueprint`, so stored catalogues stay readable.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.model_mission import Facility, Mission, ProductClass
from proseo.catalog.model_order import InputQuery, Job, JobStep, JobStepEdge, JobStepOutput, ProcessingOrder
from proseo.errors import ProseoError
from proseo.missions.types import UtcDateTime
from proseo.planning.stepinputs import read_step_inputs

BLUEPRINT_VERSION = 1
OnTimeout = Literal["FAIL", "RUN_WITH_AVAILABLE"]


class BlueprintError(ProseoError):
    """A stored DAG blueprint does not validate; names the order and every problem."""


class Level(BaseModel):
    """One level of the plan: one mapped task group (or task) per kind of step in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[int] = Field(min_length=1)
    #: Product classes the level's steps make (the Asset outlets of its tasks).
    classes: list[str]
    #: Steps that wait for external inputs (an input sensor before the processor task).
    waiting: list[int] = Field(default_factory=list)
    #: Steps the facility choice placed at another facility than the order's, per facility
    #: (their own tasks, pool and backend). Left out when empty: older blueprints stay valid.
    elsewhere: dict[str, list[int]] = Field(default_factory=dict, exclude_if=lambda v: not v)

    @model_validator(mode="after")
    def _waiting_are_steps(self) -> Level:
        stray = sorted(set(self.waiting) - set(self.steps))
        if stray:
            raise ValueError(f"waiting steps {stray} are not steps of the level")
        placed = [s for ids in self.elsewhere.values() for s in ids]
        stray = sorted(set(placed) - set(self.steps))
        if stray:
            raise ValueError(f"steps {stray} placed elsewhere are not steps of the level")
        if len(set(placed)) != len(placed):
            raise ValueError("a step is placed at more than one other facility")
        return self

    def groups(self) -> list[tuple[str | None, list[int]]]:
        """(facility, steps): None for the order's own facility, then each other one by name."""
        away = {s for ids in self.elsewhere.values() for s in ids}
        own = [s for s in self.steps if s not in away]
        return ([(None, own)] if own else []) + [(n, self.elsewhere[n]) for n in sorted(self.elsewhere)]


class Place(BaseModel):
    """A facility other than the order's that some of its steps run at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    pool: str
    pool_slots: int = Field(ge=1)


class Blueprint(BaseModel):
    """The shape of one order's DAG (version 1), stored as JSON on ``processing_order``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    dag_id: str = Field(pattern=r"^proseo__[A-Za-z0-9_.-]+$")
    mission: str = Field(min_length=1)
    order: str = Field(min_length=1)
    order_id: int | None = None
    priority: int = 50
    facility: str | None = None
    backend: str = "local"
    pool: str | None = None
    pool_slots: int | None = Field(None, ge=1)
    input_timeout_s: float | None = Field(None, ge=0)
    on_input_timeout: OnTimeout | None = None
    #: The order's deadline (from the order row at release; systematic orders have one):
    #: the DAG's deadline alert and its tasks' urgency weights. Optional, so blueprints
    #: stored before it existed stay valid version-1 blueprints (and, without one, the same JSON).
    deadline: UtcDateTime | None = Field(default=None, exclude_if=lambda v: v is None)
    levels: list[Level]
    job_steps: int = Field(ge=0)
    #: The other facilities that levels place steps at (left out when none).
    places: dict[str, Place] = Field(default_factory=dict, exclude_if=lambda v: not v)

    @model_validator(mode="after")
    def _steps_add_up(self) -> Blueprint:
        steps = [s for level in self.levels for s in level.steps]
        if len(steps) != self.job_steps:
            raise ValueError(f"job_steps is {self.job_steps} but the levels hold {len(steps)} steps")
        if len(set(steps)) != len(steps):
            raise ValueError("a job step appears in more than one place of the levels")
        unknown = sorted({n for level in self.levels for n in level.elsewhere} - set(self.places))
        if unknown:
            raise ValueError(f"levels place steps at facilities without a place: {', '.join(unknown)}")
        return self

    @property
    def where(self) -> str:
        return f"{self.mission}/{self.order}"

    def as_json(self) -> dict[str, Any]:
        """What the order stores (``processing_order.dag_blueprint``)."""
        return self.model_dump(mode="json")


def read_blueprint(data: Any, *, order: str) -> Blueprint:
    """A stored blueprint, validated; ``order`` (``MISSION/ORDER``) names it in the error."""
    try:
        return Blueprint.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(blueprint)'}: {e['msg']}" for e in exc.errors()
        )
        raise BlueprintError(
            f"order {order}: its stored DAG blueprint is invalid ({exc.error_count()} problem(s)): {problems}"
        ) from None


def facility_pool(mission: str, facility: str) -> str:
    """The Airflow pool that caps a facility's concurrent steps (made by the DAG-run listener)."""
    return f"proseo__{mission}__{facility}".lower()


def facility_queue(mission: str, facility: str) -> str:
    """The executor queue of a facility's steps: ``proseo-<mission>-<facility>``, lower-case.

    Derived, never configured, so stored blueprints need no field for it and every
    deployment names a facility's queue alike. On the CeleryExecutor only the workers that
    can reach the facility (its storage, scratch, cluster) subscribe to it; the LocalExecutor
    ignores queues.
    """
    return f"proseo-{mission}-{facility}".lower()


def dag_id_for(mission: str, identifier: str) -> str:
    """``proseo__<mission>__<order>`` with characters Airflow does not allow replaced."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in identifier)
    return f"proseo__{mission}__{safe}"


def levels_of(steps: list[int], edges: list[tuple[int, int]]) -> dict[int, int]:
    """Longest-path level of every step (0 = no upstream step); raises on a cycle."""
    ups: dict[int, list[int]] = defaultdict(list)
    downs: dict[int, list[int]] = defaultdict(list)
    for up, down in edges:
        ups[down].append(up)
        downs[up].append(down)
    remaining = {s: len(ups[s]) for s in steps}
    level = {s: 0 for s in steps}
    ready = [s for s in steps if remaining[s] == 0]
    done = 0
    while ready:
        current = ready.pop()
        done += 1
        for down in downs[current]:
            level[down] = max(level[down], level[current] + 1)
            remaining[down] -= 1
            if remaining[down] == 0:
                ready.append(down)
    if done != len(steps):
        raise ValueError("the job-step graph has a cycle")
    return level


def build_blueprint(session: Session, order: ProcessingOrder) -> Blueprint:
    """The order's DAG blueprint from its stored plan (a few queries, done once at release)."""
    mission = session.scalar(select(Mission.code).where(Mission.id == order.mission_id)) or ""
    rows = session.execute(
        select(JobStep.id, ProductClass.product_type)
        .join(Job, Job.id == JobStep.job_id)
        .join(ProductClass, ProductClass.id == JobStep.product_class_id)
        .where(Job.order_id == order.id)
        .order_by(JobStep.id)
    ).all()
    step_ids = [r[0] for r in rows]
    outputs: dict[int, set[str]] = {r[0]: {r[1]} for r in rows}
    for sid, ptype in (
        session.execute(
            select(JobStepOutput.job_step_id, ProductClass.product_type)
            .join(ProductClass, ProductClass.id == JobStepOutput.product_class_id)
            .where(JobStepOutput.job_step_id.in_(step_ids))
        )
        if step_ids
        else []
    ):
        outputs[sid].add(ptype)
    edges = (
        [
            (u, d)
            for u, d in session.execute(
                select(JobStepEdge.upstream_id, JobStepEdge.downstream_id).where(
                    JobStepEdge.downstream_id.in_(step_ids)
                )
            )
        ]
        if step_ids
        else []
    )
    # Steps that wait for products this order does not make: an unsatisfied mandatory
    # input, or an output another order plans (they get an input sensor).
    external: set[int] = set()
    if step_ids:
        external.update(
            session.scalars(
                select(InputQuery.job_step_id).where(
                    InputQuery.job_step_id.in_(step_ids), InputQuery.mandatory, ~InputQuery.satisfied
                )
            )
        )
        own = set(step_ids)
        for sid, inputs in read_step_inputs(session, step_ids, names=False).items():
            if any(o.job_step_id not in own for i in inputs for o in i.outputs):
                external.add(sid)
    facility = session.get(Facility, order.facility_id) if order.facility_id else None
    level = levels_of(step_ids, edges)
    grouped: dict[int, list[int]] = defaultdict(list)
    for step in step_ids:
        grouped[level[step]].append(step)
    # Steps the facility choice put elsewhere than the order's facility (planning/facility_assign.py).
    away: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    places: dict[str, Place] = {}
    if step_ids and order.facilities:
        for sid, other in session.execute(
            select(JobStep.id, Facility)
            .join(Facility, Facility.id == JobStep.facility_id)
            .join(Job, Job.id == JobStep.job_id)
            .where(Job.order_id == order.id, JobStep.facility_id != order.facility_id)
            .order_by(JobStep.id)
        ):
            away[level[sid]][other.name].append(sid)
            places[other.name] = Place(
                backend=other.backend,
                pool=f"proseo__{mission}__{other.name}".lower(),
                pool_slots=other.max_concurrent_job_steps,
            )
    return Blueprint(
        dag_id=dag_id_for(mission, order.identifier),
        mission=mission,
        order=order.identifier,
        order_id=order.id,
        priority=order.priority,
        facility=facility.name if facility else None,
        backend=facility.backend if facility else "local",
        pool=facility_pool(mission, facility.name) if facility else None,
        pool_slots=facility.max_concurrent_job_steps if facility else None,
        input_timeout_s=order.input_timeout_s,
        on_input_timeout=cast(OnTimeout, order.on_input_timeout),  # checked by the model
        deadline=order.deadline,
        levels=[
            Level(
                steps=grouped[n],
                classes=sorted(set().union(*(outputs[s] for s in grouped[n]))),
                waiting=sorted(s for s in grouped[n] if s in external),
                elsewhere={name: ids for name, ids in sorted(away[n].items())},
            )
            for n in sorted(grouped)
        ],
        job_steps=len(step_ids),
        places=places,
    )
