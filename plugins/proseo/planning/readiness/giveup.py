"""Giving up on inputs that never came: what an input timeout with RUN_WITH_AVAILABLE does.

The refresh relaxes unsatisfied mandatory queries itself (they take what their rule
finds); what is left is dropping the bindings to outputs of upstream job steps that
never delivered: each binding row gets ``given_up_at`` (it stays, for the record, but
is no longer consumed or waited for) and the query's explanation says so, so the step
runs with what exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session

from proseo.catalog.model_order import InputQueryOutput
from proseo.planning.readiness.results import OPEN_STATES

if TYPE_CHECKING:
    from proseo.planning.readiness.refresh import _StepWork


def _drop_unfinished_upstream(
    session: Session, work: list[_StepWork], now: datetime, give_up: str, gave_up: dict[int, list[str]]
) -> None:
    """Bindings to upstream outputs not delivered are given up, with a note on each query."""
    dropped: list[tuple[int, int]] = []
    for w in work:
        if w.step.state not in OPEN_STATES:
            continue
        missing: set[int] = set()
        for q in w.queries:
            pending = w.inputs[q.id].pending()
            if not pending:
                continue
            dropped.extend((q.id, o.output_id) for o in pending)
            steps = sorted({o.job_step_id for o in pending})
            missing.update(steps)
            q.explanation = (
                f"{q.explanation}; given up waiting ({give_up}) for upstream job step(s) "
                + ", ".join(map(str, steps))
            )
        if missing:
            gave_up[w.step.id].append("upstream job step(s) " + ", ".join(map(str, sorted(missing))))
    for offset in range(0, len(dropped), 500):
        chunk = dropped[offset : offset + 500]
        session.execute(
            update(InputQueryOutput)
            .where(
                or_(
                    *(and_(InputQueryOutput.query_id == q, InputQueryOutput.output_id == o) for q, o in chunk)
                )
            )
            .values(given_up_at=now)
            .execution_options(synchronize_session=False)
        )
