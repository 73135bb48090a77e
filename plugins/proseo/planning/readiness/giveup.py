"""Giving up on inputs that never came: what an input timeout with RUN_WITH_AVAILABLE does.

The refresh relaxes unsatisfied mandatory queries itself (they take what their rule
finds); what is left is dropping references to upstream job steps that never
completed, with a note in each explanation, so the step runs with what exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proseo.catalog.model_order import StepState
from proseo.planning.readiness.results import OPEN_STATES

if TYPE_CHECKING:
    from proseo.planning.readiness.refresh import _StepWork


def _drop_unfinished_upstream(
    work: list[_StepWork], up_state: dict[int, str], stamp: str, give_up: str, gave_up: dict[int, list[str]]
) -> None:
    """References to upstream steps that never completed are dropped, with a note."""
    for w in work:
        if w.step.state not in OPEN_STATES:
            continue
        missing = {u for u in w.upstream if up_state.get(u) != StepState.COMPLETED.value}
        missing -= w.given_up_upstream
        if not missing:
            continue
        for q in w.queries:
            expl = dict(q.explanation or {})
            chosen = expl.get("chosen", [])
            keep = [c for c in chosen if not ("job_step" in c and int(c["job_step"]) in missing)]
            if len(keep) != len(chosen):
                expl["chosen"] = keep
                expl["given_up_upstream"] = sorted(
                    {
                        *expl.get("given_up_upstream", []),
                        *(int(c["job_step"]) for c in chosen if c not in keep),
                    }
                )
                expl["given_up"] = {**expl.get("given_up", {}), "at": stamp, "reason": give_up}
                q.explanation = expl
        w.given_up_upstream |= missing
        gave_up[w.step.id].append("upstream job step(s) " + ", ".join(map(str, sorted(missing))))
