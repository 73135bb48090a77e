"""Priority from slack: the core curve, and the Airflow strategy the factory gives orders
with a deadline (registered by the plugin, surviving DAG serialization)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.models.taskinstance import TaskInstance
from airflow.serialization.serialized_objects import DagSerialization

from proseo.orchestration.factory import build_dag
from proseo.orchestration.urgency import STRATEGY, SlackPriorityStrategy, urgency_params
from proseo.planning.blueprint import Blueprint, Level
from proseo.planning.urgency import HORIZON, MAX_BONUS, urgency_bonus, weight_for
from proseo.plugin import ProseoPlugin

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_an_nrt_order_near_its_deadline_outweighs_a_reprocessing_backlog() -> None:
    nrt = weight_for(10, NOW + timedelta(hours=1), NOW)
    rpro = weight_for(100, NOW + timedelta(days=20), NOW)
    assert nrt > rpro
    assert weight_for(1, NOW + timedelta(hours=1), NOW) > weight_for(100, None, NOW)


def test_the_weight_rises_as_the_slack_shrinks_and_is_capped() -> None:
    slacks = [timedelta(days=40), HORIZON, timedelta(days=20), timedelta(days=7), timedelta(days=1)]
    slacks += [timedelta(hours=3), timedelta(hours=1), timedelta(minutes=1), timedelta(0)]
    weights = [weight_for(50, NOW + s, NOW) for s in slacks]
    assert weights == sorted(weights) and len(set(weights[1:])) == len(weights) - 1
    assert weights[0] == weights[1] == 50  # beyond the horizon: the plain priority
    assert urgency_bonus(NOW - timedelta(days=3), NOW) == urgency_bonus(NOW, NOW) == MAX_BONUS
    assert weight_for(50, None, NOW) == 50


def _blueprint(deadline: datetime | None, priority: int = 10) -> Blueprint:
    return Blueprint(
        dag_id="proseo__S5P__nrt1",
        mission="S5P",
        order="nrt1",
        order_id=5,
        priority=priority,
        levels=[Level(steps=[1, 2], classes=["L2__O3____"], waiting=[2])],
        job_steps=2,
        deadline=deadline,
    )


def test_the_strategy_is_registered_by_the_plugin() -> None:
    from airflow import plugins_manager

    assert SlackPriorityStrategy in ProseoPlugin.priority_weight_strategies
    assert plugins_manager.get_priority_weight_strategy_plugins()[STRATEGY] is SlackPriorityStrategy


def test_the_strategy_serializes_its_values_and_reads_task_params_when_rebuilt() -> None:
    given = SlackPriorityStrategy(NOW + timedelta(hours=1), 10)
    again = SlackPriorityStrategy.deserialize(given.serialize())
    assert again == given and again.serialize() == {"deadline": "2026-06-01T13:00:00+00:00", "priority": 10}

    class Task:
        params = urgency_params(7, NOW + timedelta(days=2))
        priority_weight = 99

    assert SlackPriorityStrategy().urgency_of(Task()) == (7, NOW + timedelta(days=2))


def test_order_tasks_with_a_deadline_get_the_slack_weight_after_serialization() -> None:
    deadline = datetime.now(UTC) + timedelta(hours=1)
    dag = DagSerialization.from_dict(DagSerialization.to_dict(build_dag(_blueprint(deadline))))
    for task_id in ("level_0_run", "level_0_wait.inputs", "level_0_wait.process"):
        task = dag.get_task(task_id)
        assert isinstance(task.weight_rule, SlackPriorityStrategy), task_id
        ti = TaskInstance(task=task, run_id="r", map_index=0, dag_version_id=None)
        # Computed when the instance is created: 10 + ~895 (a few seconds of slack less at most).
        assert weight_for(10, deadline, datetime.now(UTC)) - 1 <= ti.priority_weight <= 10 + 895


def test_order_tasks_without_a_deadline_keep_their_absolute_priority() -> None:
    dag = DagSerialization.from_dict(DagSerialization.to_dict(build_dag(_blueprint(None, priority=42))))
    task = dag.get_task("level_0_run")
    assert not isinstance(task.weight_rule, SlackPriorityStrategy)
    assert TaskInstance(task=task, run_id="r", map_index=0, dag_version_id=None).priority_weight == 42
    assert "proseo_deadline" not in dag.params
