"""Which facility runs a job step when its order names several: a pure, explainable policy.

The catalogue side (:mod:`proseo.planning.facility_assign`) gathers, per step, the
figures below and records the :class:`Choice` on the step; this module only decides,
so the same figures always give the same facility and the same reason.

For each candidate facility ``f`` of a step:

* ``wait_s(f) = (queue(f) // slots(f)) * run_s``: the step waits for the facility's
  queued steps (released, not finished: PLANNED, READY, RUNNING) to go through its
  ``max_concurrent_job_steps`` slots in waves of one step's run time ``run_s``;
* ``copy_bytes(f)``: bytes of the step's inputs not stored at ``f`` (to be copied);
  ``copy_s(f) = copy_bytes(f) / COPY_BYTES_PER_S``;
* ``finish_s(f) = wait_s(f) + copy_s(f) + run_s``: when the step would be done;
* ``cost(f) = core_hours * cost_per_core_hour(f)``, ``core_hours`` = the processor's
  cores (sum of its tasks' cpu) times ``run_s`` in hours; a facility without a price
  has no cost to compare (it counts 0, and the reason says so).

The decision narrows the candidates in this order, and the first criterion that leaves
fewer candidates is the reason recorded:

1. **deadline**: with a deadline, ``slack_s`` = deadline - now. A facility *meets* it
   when ``finish_s(f) * DEADLINE_MARGIN <= slack_s``. The slack is *short* when some
   candidate does not meet it: then only those that do remain, or, when none does,
   the one(s) with the smallest ``finish_s`` (the shortest expected wait): cost and
   locality give way to the deadline. A long slack (everyone meets it) decides nothing.
2. **data locality**: the candidates whose ``copy_bytes`` is within
   ``LOCALITY_TOLERANCE_BYTES`` of the smallest (moving data is slow and costs storage
   egress; a few bytes do not outweigh a price).
3. **cost**: the cheapest (within ``COST_TOLERANCE`` relative).
4. **queue**: the shortest ``wait_s``.
5. **tie-break**: the order's own listing order (its first facility first), then name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Assumed transfer rate between facilities (bytes/s) for the copy time of inputs.
COPY_BYTES_PER_S = 100e6
#: A facility meets a deadline when its expected finish times this still fits the slack.
DEADLINE_MARGIN = 1.25
#: Copy sizes this close to the smallest count as equally local.
LOCALITY_TOLERANCE_BYTES = 1 << 20
#: Costs within this fraction of the cheapest count as equally cheap.
COST_TOLERANCE = 0.01


@dataclass(frozen=True)
class Candidate:
    """One facility as the choice sees it for one step."""

    name: str
    queue: int  # its released, unfinished job steps (this order's earlier choices included)
    slots: int  # max_concurrent_job_steps
    cost_per_core_hour: float | None
    local_bytes: int  # bytes of the step's inputs stored here


@dataclass(frozen=True)
class StepNeeds:
    """What the choice needs to know about the step itself."""

    input_bytes: int  # all its inputs (existing products and estimated upstream outputs)
    cores: float  # sum of the processor's tasks' cpu
    run_s: float  # expected run time
    slack_s: float | None  # deadline - now (None: no deadline)


@dataclass
class Choice:
    facility: str
    reason: str
    scores: dict[str, Any] = field(default_factory=dict)


def _figures(c: Candidate, step: StepNeeds) -> dict[str, Any]:
    wait_s = (c.queue // max(c.slots, 1)) * step.run_s
    copy_bytes = max(step.input_bytes - c.local_bytes, 0)
    finish_s = wait_s + copy_bytes / COPY_BYTES_PER_S + step.run_s
    core_hours = step.cores * step.run_s / 3600
    cost = None if c.cost_per_core_hour is None else core_hours * c.cost_per_core_hour
    meets = None if step.slack_s is None else finish_s * DEADLINE_MARGIN <= step.slack_s
    return {
        "queue": c.queue,
        "slots": c.slots,
        "wait_s": round(wait_s, 1),
        "local_bytes": c.local_bytes,
        "copy_bytes": copy_bytes,
        "finish_s": round(finish_s, 1),
        "core_hours": round(core_hours, 4),
        "cost": None if cost is None else round(cost, 4),
        "meets_deadline": meets,
    }


def choose_facility(candidates: list[Candidate], step: StepNeeds) -> Choice:
    """The facility for one step, its reason and every candidate's figures (see the module)."""
    if not candidates:
        raise ValueError("no candidate facility")
    rank = {c.name: i for i, c in enumerate(candidates)}
    figs = {c.name: _figures(c, step) for c in candidates}
    scores: dict[str, Any] = {"run_s": step.run_s, "input_bytes": step.input_bytes, "slack_s": step.slack_s}
    scores["candidates"] = figs
    if len(candidates) == 1:
        only = candidates[0].name
        return Choice(only, f"the only candidate facility: {only}", scores)
    left = sorted(figs, key=lambda n: rank[n])
    for criterion in (_deadline, _locality, _cost, _queue):
        kept, why = criterion(left, figs, step)
        if len(kept) < len(left):
            chosen = kept[0]
            return Choice(chosen, why(chosen), scores)
        left = kept
    chosen = left[0]
    return Choice(chosen, f"all candidates alike; {chosen} listed first", scores)


Criterion = tuple[list[str], Any]


def _deadline(left: list[str], figs: dict[str, Any], step: StepNeeds) -> Criterion:
    if step.slack_s is None or all(figs[n]["meets_deadline"] for n in left):
        return left, None
    meeting = [n for n in left if figs[n]["meets_deadline"]]
    if not meeting:
        best = min(figs[n]["finish_s"] for n in left)
        meeting = [n for n in left if figs[n]["finish_s"] == best]
    late = [n for n in left if n not in meeting]
    others = ", ".join(f"{n} in {_dur(figs[n]['finish_s'])} ({_q(figs[n])})" for n in late)

    def why(chosen: str) -> str:
        f = figs[chosen]
        meets = "meets it" if f["meets_deadline"] else "misses it least"
        return (
            f"deadline: slack {_dur(step.slack_s or 0)}; {chosen} finishes in about {_dur(f['finish_s'])} "
            f"({_q(f)}) and {meets}; {others}" + _cost_note(chosen, left, figs)
        )

    return meeting, why


def _locality(left: list[str], figs: dict[str, Any], step: StepNeeds) -> Criterion:
    least = min(figs[n]["copy_bytes"] for n in left)
    kept = [n for n in left if figs[n]["copy_bytes"] <= least + LOCALITY_TOLERANCE_BYTES]

    def why(chosen: str) -> str:
        f = figs[chosen]
        others = ", ".join(f"{n} would copy {_bytes(figs[n]['copy_bytes'])}" for n in left if n not in kept)
        return (
            f"data locality: {_bytes(f['local_bytes'])} of the {_bytes(step.input_bytes)} of inputs "
            f"stored at {chosen} ({_bytes(f['copy_bytes'])} to copy); {others}"
        )

    return kept, why


def _cost(left: list[str], figs: dict[str, Any], step: StepNeeds) -> Criterion:
    costs = {n: figs[n]["cost"] or 0.0 for n in left}
    least = min(costs.values())
    kept = [n for n in left if costs[n] <= least * (1 + COST_TOLERANCE) + 1e-12]

    def why(chosen: str) -> str:
        f = figs[chosen]
        others = ", ".join(f"{n} {_money(figs[n]['cost'])}" for n in left if n not in kept)
        return f"cost: {_money(f['cost'])} for {f['core_hours']:g} core-hours at {chosen}; {others}"

    return kept, why


def _queue(left: list[str], figs: dict[str, Any], step: StepNeeds) -> Criterion:
    least = min(figs[n]["wait_s"] for n in left)
    kept = [n for n in left if figs[n]["wait_s"] == least]

    def why(chosen: str) -> str:
        others = ", ".join(f"{n} {_q(figs[n])}" for n in left if n not in kept)
        return f"queue: {chosen} {_q(figs[chosen])}, expected wait {_dur(least)}; {others}"

    return kept, why


def _cost_note(chosen: str, left: list[str], figs: dict[str, Any]) -> str:
    cheaper = [n for n in left if (figs[n]["cost"] or 0.0) < (figs[chosen]["cost"] or 0.0)]
    return f"; dearer than {', '.join(cheaper)} ({_money(figs[chosen]['cost'])})" if cheaper else ""


def _q(f: dict[str, Any]) -> str:
    return f"queue {f['queue']} on {f['slots']} slots"


def _money(cost: float | None) -> str:
    return "no price given" if cost is None else f"{cost:.2f}"


def _dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
