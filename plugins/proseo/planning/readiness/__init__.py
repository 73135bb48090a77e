"""Is a job step ready to run? Inputs that were missing at planning time, looked at again.

Planning records, per job step, one input query per (merged) rule. A mandatory query
that found nothing leaves the step WAITING_INPUT; an optional one that found nothing
is satisfied but empty. Products arrive later (ingestion of deliveries, registration
by other orders), so the orchestrator asks two questions, at two prices:

* :func:`poll_readiness` -- the cheap one, asked once per poll interval for *all*
  waiting steps together: are the upstream job steps COMPLETED, and has any product
  of a class a step still waits for been catalogued since the last poll? Two SQL
  statements whatever the number of steps (see the function).
* :func:`refresh_inputs` / :func:`refresh_many` -- the expensive one, asked only for
  the steps the poll flags: evaluate each open query's stored rule again against the
  catalogue (candidates fetched in batch per class by
  :class:`~proseo.planning.candidates.CandidateCache`) and record the outcome the way
  planning does: ``satisfied``, ``input_query_product`` rows (with the policy that
  chose each product), the explanation text, and the step WAITING_INPUT -> PLANNED
  once every mandatory query is satisfied.

Bindings to outputs of other job steps (``input_query_output``: an upstream step of the
order, or a step of another active order that plans the product) are never
re-evaluated: they are delivered once that step registered its products, which is
what ``upstream_pending`` reports. Bindings are read the one way
(:func:`proseo.planning.stepinputs.read_step_inputs`).

:func:`give_up_waiting` is what an input timeout with ``RUN_WITH_AVAILABLE`` does: the
still-unsatisfied mandatory queries take whatever their rule finds (the qualifier
relaxed, ``given_up_at`` set), bindings to upstream outputs never delivered get
``given_up_at`` and are no longer consumed, and the explanation says so, so the step
runs with what exists.

No Airflow here: the triggerer, the sensor, the CLI and tests all call these.

This package is the facade; callers import from it (``readiness.poll_readiness``),
and patches of ``readiness.<name>`` take effect because callers look names up here:

* :mod:`~proseo.planning.readiness.results`: StepReadiness, StepPoll, PollStatus, the state sets
* :mod:`~proseo.planning.readiness.asks`: what a stored query's rule asks (parse cache, spans)
* :mod:`~proseo.planning.readiness.cursor`: PollCursor, the new-products statement and matching
* :mod:`~proseo.planning.readiness.poll`: poll_readiness, COMMIT_LAG
* :mod:`~proseo.planning.readiness.refresh`: refresh_many (lock, evaluate, record)
* :mod:`~proseo.planning.readiness.reevaluate`: batched re-evaluation of open queries
* :mod:`~proseo.planning.readiness.giveup`: dropping upstream steps that never completed
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from proseo.planning.readiness.cursor import PollCursor, Spans
from proseo.planning.readiness.poll import COMMIT_LAG, poll_readiness
from proseo.planning.readiness.refresh import refresh_many
from proseo.planning.readiness.results import DEAD_STATES, OPEN_STATES, PollStatus, StepPoll, StepReadiness

__all__ = [
    "COMMIT_LAG",
    "DEAD_STATES",
    "OPEN_STATES",
    "PollCursor",
    "PollStatus",
    "Spans",
    "StepPoll",
    "StepReadiness",
    "give_up_waiting",
    "poll_readiness",
    "refresh_inputs",
    "refresh_many",
]


# The one-step entry points stay here: they call ``refresh_many`` through this module's
# namespace, as before the split, so patching ``readiness.refresh_many`` reaches them too.


def refresh_inputs(session: Session, job_step_id: int) -> StepReadiness:
    """Re-evaluate the open input queries of one step and record the outcome."""
    return refresh_many(session, [job_step_id])[int(job_step_id)]


def give_up_waiting(session: Session, job_step_id: int, reason: str) -> StepReadiness:
    """Input timeout with RUN_WITH_AVAILABLE: take what exists, drop what never came."""
    return refresh_many(session, [job_step_id], give_up=reason)[int(job_step_id)]
