"""The priority-weight strategy of orders with a deadline: weight rises as slack shrinks.

Airflow computes a task instance's priority weight ONCE, when the task instance is
created (the DAG run's tasks when the run starts, a mapped task's instances when it
is expanded), by calling the task's strategy ``get_weight(ti)``; it is not recomputed
while the instance waits in the queue. So a later level of an order gets a weight for
the slack left when that level is expanded: the closer the deadline, the higher.

Airflow 3.3 stores only the strategy's class path in the serialized DAG and rebuilds
it with no arguments (``_decode_priority_weight_strategy``): a strategy cannot carry
per-order values itself. The order's deadline and base priority therefore travel as
DAG params (:func:`urgency_params`, set by the factory), which the serialized task
keeps; :meth:`SlackPriorityStrategy.get_weight` reads them from ``ti.task.params``.
:meth:`SlackPriorityStrategy.serialize` reports them for the instance at hand (logs,
tests) and :meth:`SlackPriorityStrategy.deserialize` rebuilds such an instance.

The class must be registered through the plugin (``priority_weight_strategies``) or
the DAG processor refuses to serialize DAGs that use it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.task.priority_strategy import PriorityWeightStrategy

from proseo.planning.urgency import weight_for

DEADLINE_PARAM = "proseo_deadline"
PRIORITY_PARAM = "proseo_priority"
#: What the factory sets as ``weight_rule``: the class path, not an instance (3.3 writes a
#: mapped task's ``partial_kwargs`` weight rule as ``str(instance)``, which no one can load).
STRATEGY = f"{__name__}.SlackPriorityStrategy"


def urgency_params(priority: int, deadline: datetime) -> dict[str, Any]:
    """The DAG params that carry an order's urgency to :class:`SlackPriorityStrategy`."""
    return {DEADLINE_PARAM: deadline.astimezone(UTC).isoformat(), PRIORITY_PARAM: priority}


def _param(params: Any, key: str) -> Any:
    try:
        return params[key] if params is not None and key in params else None
    except (KeyError, TypeError):
        return None


class SlackPriorityStrategy(PriorityWeightStrategy):
    """Weight = :func:`proseo.planning.urgency.weight_for` (priority, deadline, now).

    Without arguments (as Airflow rebuilds it) the deadline and priority come from the
    task's params (:func:`urgency_params`); given explicitly they take precedence.
    """

    def __init__(self, deadline: datetime | None = None, priority: int | None = None) -> None:
        self.deadline = deadline
        self.priority = priority

    def serialize(self) -> dict[str, Any]:
        return {
            "deadline": self.deadline.astimezone(UTC).isoformat() if self.deadline else None,
            "priority": self.priority,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> SlackPriorityStrategy:
        deadline = data.get("deadline")
        return cls(datetime.fromisoformat(deadline) if deadline else None, data.get("priority"))

    def urgency_of(self, task: Any) -> tuple[int, datetime | None]:
        """(base priority, deadline) for ``task``: this instance's values, else its params."""
        params = getattr(task, "params", None)
        priority = self.priority
        if priority is None:
            priority = _param(params, PRIORITY_PARAM)
        if priority is None:
            priority = getattr(task, "priority_weight", 1)
        deadline = self.deadline
        if deadline is None:
            raw = _param(params, DEADLINE_PARAM)
            deadline = datetime.fromisoformat(raw) if isinstance(raw, str) and raw else None
        return int(priority), deadline

    def get_weight(self, ti: Any) -> int:
        """Called by Airflow once, when the task instance is created (see the module)."""
        priority, deadline = self.urgency_of(ti.task)
        return weight_for(priority, deadline, datetime.now(UTC))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SlackPriorityStrategy) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.deadline, self.priority))
