"""How urgent an order is: a scheduling weight that rises as its deadline comes closer.

A reprocessing backlog of high-priority orders must not hold up a near-real-time order
one hour from its deadline. Airflow schedules queued task instances by their priority
weight, so an order's tasks get::

    weight = priority + bonus(slack),   slack = deadline - now

    bonus(slack) = 0                                               slack >= HORIZON (30 days)
                 = MAX_BONUS * (1 - ln(1 + h) / ln(1 + H))         0 < slack < HORIZON,
                                                                   h, H: slack, HORIZON in hours
                 = MAX_BONUS                                       slack <= 0 (overdue)

The logarithm spends most of the range on the last hours and days, where ordering
matters (1 h: +895, 3 h: +789, 1 day: +511, 7 days: +220, 20 days: +62), so even the
lowest base priority (1) one hour from its deadline outweighs the highest (100) with
weeks to go. The bonus is capped at MAX_BONUS (an overdue order is as urgent as it
gets), and an order without a deadline keeps its plain priority. Weights stay small
integers (at most 100 + 1000), well inside what Airflow stores.

Core module: no Airflow. :mod:`proseo.orchestration.urgency` applies it to tasks.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

HORIZON = timedelta(days=30)
MAX_BONUS = 1000
_HORIZON_H = HORIZON.total_seconds() / 3600


def urgency_bonus(deadline: datetime | None, now: datetime) -> int:
    """The bonus for a deadline seen at ``now`` (0 without a deadline; see the module)."""
    if deadline is None:
        return 0
    slack_h = (deadline - now).total_seconds() / 3600
    if slack_h <= 0:
        return MAX_BONUS
    if slack_h >= _HORIZON_H:
        return 0
    return round(MAX_BONUS * (1 - math.log1p(slack_h) / math.log1p(_HORIZON_H)))


def weight_for(priority: int, deadline: datetime | None, now: datetime) -> int:
    """The scheduling weight of an order's task created at ``now``: priority plus urgency."""
    return priority + urgency_bonus(deadline, now)
