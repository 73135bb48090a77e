"""The order life cycle: every (operation, state) pair, forced suspend, menus, whole paths."""

from __future__ import annotations

import itertools

import pytest

from proseo.catalog.model_order import OrderState as S
from proseo.errors import IllegalTransition, OrderError
from proseo.planning.states import ACTIVE, TERMINAL, TRANSITIONS, Operation, allowed_operations, next_state

Op = Operation

#: The documented life cycle, written out independently of the module's table:
#: operation -> ({state it is allowed from: target}, done by a user?)
EXPECTED: dict[Operation, tuple[dict[S, S], bool]] = {
    Op.APPROVE: ({S.INITIAL: S.APPROVED}, True),
    Op.PLAN: ({S.APPROVED: S.PLANNING, S.PLANNING_FAILED: S.PLANNING}, True),
    Op.PLANNED: ({S.PLANNING: S.PLANNED}, False),
    Op.PLAN_FAILED: ({S.PLANNING: S.PLANNING_FAILED}, False),
    Op.RELEASE: ({S.PLANNED: S.RELEASING}, True),
    Op.RELEASED: ({S.RELEASING: S.RELEASED}, False),
    Op.START: ({S.RELEASED: S.RUNNING}, False),
    Op.SUSPEND: ({S.RELEASING: S.SUSPENDING, S.RELEASED: S.SUSPENDING, S.RUNNING: S.SUSPENDING}, True),
    Op.SUSPENDED: ({S.SUSPENDING: S.PLANNED}, False),
    Op.RESUME: ({S.PLANNED: S.RELEASING}, True),
    Op.CANCEL: (
        {
            s: S.FAILED
            for s in (
                S.APPROVED,
                S.PLANNED,
                S.PLANNING_FAILED,
                S.RELEASING,
                S.RELEASED,
                S.RUNNING,
                S.SUSPENDING,
            )
        },
        True,
    ),
    Op.RETRY: ({S.FAILED: S.RELEASING}, True),
    Op.RESET: ({S.APPROVED: S.INITIAL, S.PLANNED: S.INITIAL, S.PLANNING_FAILED: S.INITIAL}, True),
    Op.COMPLETE: ({S.RUNNING: S.COMPLETED, S.RELEASED: S.COMPLETED}, False),
    Op.FAIL: ({S.RUNNING: S.FAILED, S.RELEASED: S.FAILED, S.SUSPENDING: S.FAILED}, False),
    Op.CLOSE: ({S.COMPLETED: S.CLOSED, S.FAILED: S.CLOSED}, True),
}

ALLOWED = [(op, state) for op, (table, _) in EXPECTED.items() for state in table]
REFUSED = [(op, state) for op, state in itertools.product(Operation, S) if state not in EXPECTED[op][0]]


def _id(pair: tuple[Operation, S]) -> str:
    return f"{pair[0].value}-from-{pair[1].value}"


def test_the_expectation_covers_every_pair() -> None:
    assert set(EXPECTED) == set(Operation)
    assert len(ALLOWED) + len(REFUSED) == len(Operation) * len(S)
    assert set(TRANSITIONS) == set(Operation)


@pytest.mark.parametrize("pair", ALLOWED, ids=_id)
def test_allowed_transition_leads_to_the_documented_state(pair: tuple[Operation, S]) -> None:
    op, state = pair
    assert next_state(op, state) is EXPECTED[op][0][state]
    # Plain strings (CLI, REST, database values) work the same way.
    assert next_state(op.value, state.value) is EXPECTED[op][0][state]


@pytest.mark.parametrize("pair", REFUSED, ids=_id)
def test_refused_transition_raises_illegal_transition(pair: tuple[Operation, S]) -> None:
    op, state = pair
    with pytest.raises(IllegalTransition) as info:
        next_state(op, state, mission="S5P", order="o-42")
    err = info.value
    assert err.exit_code == 4
    assert isinstance(err, OrderError)
    assert err.operation == op.value
    assert err.state == state.value
    assert (err.mission, err.order) == ("S5P", "o-42")
    message = str(err)
    assert message.startswith("S5P/o-42: ")
    assert f"cannot {op.value} an order in state {state.value}" in message
    for source in EXPECTED[op][0]:
        assert source.value in message.split("allowed from", 1)[1]


@pytest.mark.parametrize("pair", REFUSED, ids=_id)
def test_force_does_not_make_a_refused_transition_legal(pair: tuple[Operation, S]) -> None:
    op, state = pair
    with pytest.raises(IllegalTransition):
        next_state(op, state, force=True)


def test_refusal_lists_allowed_states_sorted() -> None:
    with pytest.raises(IllegalTransition) as info:
        next_state(Op.FAIL, S.INITIAL)
    assert (
        str(info.value)
        == "cannot fail an order in state INITIAL (allowed from RELEASED, RUNNING, SUSPENDING)"
    )


def test_refusal_without_mission_or_order_has_no_prefix() -> None:
    with pytest.raises(IllegalTransition, match=r"^cannot close an order in state RUNNING \(allowed from"):
        next_state("close", "RUNNING")


@pytest.mark.parametrize("state", [S.RELEASING, S.RELEASED, S.RUNNING])
def test_forced_suspend_goes_straight_back_to_planned(state: S) -> None:
    assert next_state(Op.SUSPEND, state, force=True) is S.PLANNED
    assert next_state(Op.SUSPEND, state, force=False) is S.SUSPENDING


@pytest.mark.parametrize("pair", [p for p in ALLOWED if p[0] is not Op.SUSPEND], ids=_id)
def test_force_only_matters_for_suspend(pair: tuple[Operation, S]) -> None:
    op, state = pair
    assert next_state(op, state, force=True) is EXPECTED[op][0][state]


def test_unknown_operation_or_state_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="explode"):
        next_state("explode", S.INITIAL)
    with pytest.raises(ValueError, match="LIMBO"):
        next_state(Op.APPROVE, "LIMBO")


# --- allowed_operations -------------------------------------------------------------------


@pytest.mark.parametrize("state", list(S))
def test_user_menu_holds_exactly_the_user_operations_allowed_in_a_state(state: S) -> None:
    expected = {op for op, (table, by_user) in EXPECTED.items() if by_user and state in table}
    got = allowed_operations(state)
    assert set(got) == expected
    assert len(got) == len(set(got))
    assert allowed_operations(state.value) == got


@pytest.mark.parametrize("state", list(S))
def test_system_may_apply_every_allowed_operation(state: S) -> None:
    expected = {op for op, (table, _) in EXPECTED.items() if state in table}
    got = allowed_operations(state, by_user=False)
    assert set(got) == expected
    assert set(allowed_operations(state)) <= set(got)


def test_examples_of_user_and_system_menus() -> None:
    assert allowed_operations(S.RUNNING) == [Op.SUSPEND, Op.CANCEL]
    assert set(allowed_operations(S.RUNNING, by_user=False)) == {Op.SUSPEND, Op.CANCEL, Op.COMPLETE, Op.FAIL}
    assert allowed_operations(S.PLANNING) == []
    assert set(allowed_operations(S.PLANNING, by_user=False)) == {Op.PLANNED, Op.PLAN_FAILED}
    assert set(allowed_operations(S.PLANNED)) == {Op.RELEASE, Op.RESUME, Op.CANCEL, Op.RESET}


def test_closed_is_terminal() -> None:
    assert {S.CLOSED} == TERMINAL
    assert allowed_operations(S.CLOSED, by_user=False) == []


def test_active_states_are_those_whose_dag_may_run() -> None:
    assert {S.RELEASING, S.RELEASED, S.RUNNING, S.SUSPENDING} == ACTIVE
    # An operator can always cancel an order whose DAG may run.
    for state in ACTIVE:
        assert Op.CANCEL in allowed_operations(state)


@pytest.mark.parametrize("state", [s for s in S if s not in TERMINAL])
def test_every_non_terminal_state_has_a_way_out(state: S) -> None:
    assert allowed_operations(state, by_user=False)


# --- whole paths --------------------------------------------------------------------------


def walk(state: S, *ops: Operation) -> list[S]:
    visited = [state]
    for op in ops:
        state = next_state(op, state)
        visited.append(state)
    return visited


def test_normal_life_cycle() -> None:
    assert walk(
        S.INITIAL, Op.APPROVE, Op.PLAN, Op.PLANNED, Op.RELEASE, Op.RELEASED, Op.START, Op.COMPLETE, Op.CLOSE
    ) == [
        S.INITIAL,
        S.APPROVED,
        S.PLANNING,
        S.PLANNED,
        S.RELEASING,
        S.RELEASED,
        S.RUNNING,
        S.COMPLETED,
        S.CLOSED,
    ]


def test_failure_and_retry_path() -> None:
    visited = walk(
        S.INITIAL,
        Op.APPROVE,
        Op.PLAN,
        Op.PLANNED,
        Op.RELEASE,
        Op.RELEASED,
        Op.START,
        Op.FAIL,
        Op.RETRY,
        Op.RELEASED,
    )
    assert visited[-4:] == [S.RUNNING, S.FAILED, S.RELEASING, S.RELEASED]
    assert walk(S.RELEASED, Op.START, Op.COMPLETE)[-1] is S.COMPLETED


def test_planning_failure_then_replanning() -> None:
    assert walk(S.APPROVED, Op.PLAN, Op.PLAN_FAILED, Op.PLAN, Op.PLANNED) == [
        S.APPROVED,
        S.PLANNING,
        S.PLANNING_FAILED,
        S.PLANNING,
        S.PLANNED,
    ]


def test_suspend_and_resume_path() -> None:
    assert walk(S.RUNNING, Op.SUSPEND, Op.SUSPENDED, Op.RESUME, Op.RELEASED) == [
        S.RUNNING,
        S.SUSPENDING,
        S.PLANNED,
        S.RELEASING,
        S.RELEASED,
    ]


def test_failed_order_can_be_closed_and_then_nothing_more() -> None:
    assert walk(S.RUNNING, Op.CANCEL, Op.CLOSE)[-1] is S.CLOSED
    with pytest.raises(IllegalTransition, match="state CLOSED"):
        next_state(Op.RETRY, S.CLOSED)


def test_reset_returns_a_planned_order_to_initial() -> None:
    assert walk(S.PLANNED, Op.RESET, Op.APPROVE)[-2:] == [S.INITIAL, S.APPROVED]


def test_a_completed_order_cannot_be_retried_or_cancelled() -> None:
    for op in (Op.RETRY, Op.CANCEL, Op.RESET):
        with pytest.raises(IllegalTransition):
            next_state(op, S.COMPLETED)
