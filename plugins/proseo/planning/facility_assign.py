"""At release, each job step of an order that names several facilities gets one of them.

The figures come from the catalogue, the decision from
:func:`proseo.planning.facility_choice.choose_facility`, and the outcome is written on
the step (``facility_id``, ``facility_reason``, ``facility_scores``), in the release's
transaction (again at a resume or retry, for the steps that did not start). Steps are
taken upstream first (deepest plan level first), so a step's inputs made by this order
are already placed when it is decided, and each choice joins
its facility's queue for the steps after it: a large order spreads out once a
facility's slots are taken, rather than all landing where the first step went.

Figures per step:

* queue: released, unfinished steps (PLANNED, READY, RUNNING) of other active orders
  at each facility (a step's own facility, else its order's), read once per release;
* inputs: bytes of the bound products' files per facility (``product_file``); an
  output of another step counts at that step's facility, with the average stored size
  of its class's products (nothing known: 0 bytes);
* run time: the median of the configured processor's last completed steps, else half
  its version's ``max_run_time``; cores: the sum of the version's tasks' cpu.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from proseo.catalog.configs import revision_config_of
from proseo.catalog.model_mission import ConfiguredProcessor, Facility, MissionRevision, ProductClass
from proseo.catalog.model_order import Job, JobStep, OrderState, ProcessingOrder, StepState
from proseo.catalog.model_product import Product, ProductFile
from proseo.errors import OrderError
from proseo.missions.models import MissionConfig
from proseo.missions.types import quantity_value
from proseo.planning.facility_choice import Candidate, Choice, StepNeeds, choose_facility
from proseo.planning.stepinputs import read_step_inputs

#: Orders whose steps hold a facility's slots or queue for them.
_ACTIVE = (OrderState.RELEASED.value, OrderState.RUNNING.value, OrderState.SUSPENDING.value)
#: Step states that wait for or hold a slot.
_QUEUED = (StepState.PLANNED.value, StepState.READY.value, StepState.RUNNING.value)
#: Step states whose facility may still be chosen (nothing of them ran yet).
_OPEN = (StepState.PLANNED.value, StepState.WAITING_INPUT.value, StepState.READY.value)
#: Completed steps per configured processor the median run time is taken over.
_SAMPLE = 50


def assign_facilities(session: Session, order: ProcessingOrder, now: datetime) -> dict[int, Choice]:
    """Choose and record the facility of every step of ``order``; {} when it named fewer than two."""
    names = list(order.facilities or [])
    if len(names) < 2:
        return {}
    revision = session.get(MissionRevision, order.revision_id)
    assert revision is not None
    cfg = revision_config_of(revision)
    rows = {
        f.name: f
        for f in session.scalars(
            select(Facility).where(Facility.mission_id == order.mission_id, Facility.name.in_(names))
        )
    }
    usable = [n for n in names if n in rows and not rows[n].retired]
    if not usable:
        raise OrderError(
            f"none of the order's facilities is active ({', '.join(names)})",
            order=order.identifier,
        )
    by_id = {rows[n].id: n for n in usable}
    queue = _queues(session, order, list(by_id))
    step_rows = session.execute(
        select(JobStep.id, JobStep.configured_processor_id, JobStep.state, JobStep.facility_id)
        .join(Job, Job.id == JobStep.job_id)
        .where(Job.order_id == order.id)
        .order_by(JobStep.depth.desc(), JobStep.start_time, JobStep.id)
    ).all()
    # A step that started (or ended) keeps its facility: a resumed or retried order decides
    # again only for the steps still to start; its running ones are in their facility's queue.
    kept = {
        sid: by_id.get(fid) if fid is not None else None
        for sid, _, state, fid in step_rows
        if state not in _OPEN
    }
    for _sid, _, state, fid in step_rows:
        if state == StepState.RUNNING.value and fid in by_id:
            queue[by_id[fid]] += 1
    steps = [(sid, cp) for sid, cp, state, _ in step_rows if state in _OPEN]
    if not steps:
        return {}
    step_ids = [s for s, _ in steps]
    inputs = read_step_inputs(session, step_ids, names=False)
    product_ids = {p.product_id for ins in inputs.values() for i in ins for p in i.products}
    product_ids |= {o.product_id for ins in inputs.values() for i in ins for o in i.outputs if o.product_id}
    stored = _stored_bytes(session, product_ids)
    foreign = {o.job_step_id for ins in inputs.values() for i in ins for o in i.outputs} - set(step_ids)
    placed = _placed(session, foreign - set(kept), by_id)
    placed.update({sid: name for sid, name in kept.items() if name is not None})
    average = _average_sizes(session, order.mission_id)
    needs = _processor_needs(session, cfg, {p for _, p in steps})
    slack = (order.deadline - now).total_seconds() if order.deadline is not None else None
    choices: dict[int, Choice] = {}
    for step_id, processor_id in steps:
        local: dict[str, int] = defaultdict(int)
        total = 0
        for inp in inputs.get(step_id, []):
            for p in inp.products:
                for name, size in stored.get(p.product_id, {}).items():
                    local[name] += size
                total += max(stored.get(p.product_id, {}).values(), default=0)
            for o in inp.outputs:
                if o.product_id is not None and o.product_id in stored:
                    for name, size in stored[o.product_id].items():
                        local[name] += size
                    total += max(stored[o.product_id].values(), default=0)
                    continue
                size = average.get(o.product_type, 0)
                total += size
                own = choices.get(o.job_step_id)
                at = own.facility if own is not None else placed.get(o.job_step_id)
                if at is not None:
                    local[at] += size
        cores, run_s = needs[processor_id]
        candidates = [
            Candidate(
                name=n,
                queue=queue[n],
                slots=rows[n].max_concurrent_job_steps,
                cost_per_core_hour=cfg.facilities[n].cost_per_core_hour if n in cfg.facilities else None,
                local_bytes=min(local.get(n, 0), total),
            )
            for n in usable
        ]
        choice = choose_facility(candidates, StepNeeds(total, cores, run_s, slack))
        choices[step_id] = choice
        queue[choice.facility] += 1
    _record(session, choices, {n: rows[n].id for n in usable})
    return choices


def _queues(session: Session, order: ProcessingOrder, facility_ids: list[int]) -> dict[str, int]:
    """Released, unfinished steps of other active orders per facility name."""
    where = func.coalesce(JobStep.facility_id, ProcessingOrder.facility_id)
    counts = session.execute(
        select(Facility.name, func.count())
        .select_from(JobStep)
        .join(Job, Job.id == JobStep.job_id)
        .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
        .join(Facility, Facility.id == where)
        .where(
            ProcessingOrder.id != order.id,
            ProcessingOrder.state.in_(_ACTIVE),
            JobStep.state.in_(_QUEUED),
            where.in_(facility_ids),
        )
        .group_by(Facility.name)
    ).all()
    out: dict[str, int] = defaultdict(int)
    out.update({name: int(n) for name, n in counts})
    return out


def _stored_bytes(session: Session, product_ids: set[int]) -> dict[int, dict[str, int]]:
    """{product id: {facility name: bytes of its files there}}."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    ids = sorted(product_ids)
    for i in range(0, len(ids), 1000):
        for pid, name, size in session.execute(
            select(ProductFile.product_id, Facility.name, func.sum(func.coalesce(ProductFile.size, 0)))
            .join(Facility, Facility.id == ProductFile.facility_id)
            .where(ProductFile.product_id.in_(ids[i : i + 1000]))
            .group_by(ProductFile.product_id, Facility.name)
        ):
            out[pid][name] = int(size or 0)
    return out


def _placed(session: Session, step_ids: set[int], names: dict[int, str]) -> dict[int, str]:
    """Where other orders' steps run (their own facility, else their order's), when a candidate."""
    out: dict[int, str] = {}
    ids = sorted(step_ids)
    for i in range(0, len(ids), 1000):
        for sid, fid in session.execute(
            select(JobStep.id, func.coalesce(JobStep.facility_id, ProcessingOrder.facility_id))
            .join(Job, Job.id == JobStep.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .where(JobStep.id.in_(ids[i : i + 1000]))
        ):
            if fid in names:
                out[sid] = names[fid]
    return out


def _average_sizes(session: Session, mission_id: int) -> dict[str, int]:
    """Average stored bytes of one product per class of the mission (classes with files)."""
    per_product = (
        select(Product.product_class_id.label("cls"), func.sum(func.coalesce(ProductFile.size, 0)).label("b"))
        .join(ProductFile, ProductFile.product_id == Product.id)
        .group_by(Product.id, Product.product_class_id)
        .subquery()
    )
    rows = session.execute(
        select(ProductClass.product_type, func.avg(per_product.c.b))
        .join(per_product, per_product.c.cls == ProductClass.id)
        .where(ProductClass.mission_id == mission_id)
        .group_by(ProductClass.product_type)
    ).all()
    return {ptype: int(avg or 0) for ptype, avg in rows}


def _processor_needs(
    session: Session, cfg: MissionConfig, processor_ids: set[int]
) -> dict[int, tuple[float, float]]:
    """{configured processor id: (cores, expected run seconds)}."""
    out: dict[int, tuple[float, float]] = {}
    for cp in session.scalars(select(ConfiguredProcessor).where(ConfiguredProcessor.id.in_(processor_ids))):
        proc = cfg.processors.get(cp.processor_class)
        version = next((v for v in proc.versions if v.version == cp.version), None) if proc else None
        cores = sum(quantity_value(t.cpu) for t in version.tasks) if version else 1.0
        observed = session.execute(
            select(JobStep.started_at, JobStep.completed_at)
            .where(
                JobStep.configured_processor_id == cp.id,
                JobStep.state == StepState.COMPLETED.value,
                JobStep.started_at.is_not(None),
                JobStep.completed_at.is_not(None),
            )
            .order_by(JobStep.completed_at.desc())
            .limit(_SAMPLE)
        ).all()
        durations = [(b - a).total_seconds() for a, b in observed if a and b and b >= a]
        if durations:
            run_s = float(statistics.median(durations))
        else:
            run_s = version.max_run_time.total_seconds() / 2 if version else 1800.0
        out[cp.id] = (cores, run_s)
    return out


def _record(session: Session, choices: dict[int, Choice], ids: dict[str, int]) -> None:
    """One executemany UPDATE for every step's choice."""
    if not choices:
        return
    session.execute(
        update(JobStep),
        [
            {
                "id": sid,
                "facility_id": ids[c.facility],
                "facility_reason": c.reason,
                "facility_scores": c.scores,
            }
            for sid, c in choices.items()
        ],
    )
