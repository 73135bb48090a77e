"""The facility policy on its own: each criterion deciding, in its order, with its reason."""

from __future__ import annotations

import pytest

from proseo.planning.facility_choice import Candidate, StepNeeds, choose_facility

HOUR = 3600.0


def _c(name: str, *, queue: int = 0, slots: int = 4, cost: float | None = 1.0, local: int = 0) -> Candidate:
    return Candidate(name=name, queue=queue, slots=slots, cost_per_core_hour=cost, local_bytes=local)


def test_locality_beats_cost() -> None:
    step = StepNeeds(input_bytes=3_000_000_000, cores=2, run_s=HOUR, slack_s=None)
    choice = choose_facility([_c("A", cost=0.1), _c("B", cost=0.9, local=3_000_000_000)], step)
    assert choice.facility == "B"
    assert choice.reason.startswith("data locality: 3.0 GB of the 3.0 GB of inputs stored at B")
    assert "A would copy 3.0 GB" in choice.reason
    assert choice.scores["candidates"]["A"]["copy_bytes"] == 3_000_000_000
    assert choice.scores["candidates"]["B"]["copy_bytes"] == 0


def test_short_slack_takes_the_less_loaded_facility_even_if_dearer() -> None:
    # A: 16 steps ahead on 4 slots = 4 waves of 1 h, so done in 5 h; B is idle (done in 1 h).
    step = StepNeeds(input_bytes=0, cores=2, run_s=HOUR, slack_s=3 * HOUR)
    choice = choose_facility([_c("A", queue=16, cost=0.1), _c("B", cost=5.0)], step)
    assert choice.facility == "B"
    assert choice.reason.startswith("deadline: slack 3.0 h; B finishes in about 60 min")
    assert "A in 5.0 h (queue 16 on 4 slots)" in choice.reason and "dearer than A" in choice.reason
    assert choice.scores["candidates"]["A"]["meets_deadline"] is False


def test_a_long_slack_decides_nothing() -> None:
    step = StepNeeds(input_bytes=0, cores=2, run_s=HOUR, slack_s=30 * HOUR)
    choice = choose_facility([_c("A", queue=16, cost=0.1), _c("B", cost=5.0)], step)
    assert choice.facility == "A" and choice.reason.startswith("cost: 0.20 for 2 core-hours at A")


def test_when_no_facility_meets_the_deadline_the_earliest_finish_wins() -> None:
    step = StepNeeds(input_bytes=0, cores=1, run_s=HOUR, slack_s=HOUR / 2)
    choice = choose_facility([_c("A", queue=8), _c("B", queue=4)], step)
    assert choice.facility == "B" and "misses it least" in choice.reason


def test_deadline_weighs_the_copy_time() -> None:
    # 1 TB to copy at 100 MB/s is 10,000 s: B (idle, data elsewhere) misses, A (data there) meets.
    step = StepNeeds(input_bytes=10**12, cores=1, run_s=600, slack_s=2 * HOUR)
    choice = choose_facility([_c("A", queue=4, local=10**12), _c("B")], step)
    assert choice.facility == "A" and choice.reason.startswith("deadline:")


def test_cost_decides_when_nothing_else_does() -> None:
    step = StepNeeds(input_bytes=5_000, cores=4, run_s=HOUR / 2, slack_s=None)
    choice = choose_facility([_c("A", cost=0.5, local=5_000), _c("B", cost=0.2, local=5_000)], step)
    assert choice.facility == "B"
    assert choice.reason == "cost: 0.40 for 2 core-hours at B; A 1.00"


def test_queue_then_listing_order() -> None:
    step = StepNeeds(input_bytes=0, cores=1, run_s=HOUR, slack_s=None)
    busy = choose_facility([_c("A", queue=8), _c("B", queue=0)], step)
    assert busy.facility == "B" and busy.reason.startswith("queue: B queue 0 on 4 slots")
    alike = choose_facility([_c("B"), _c("A")], step)
    assert alike.facility == "B" and alike.reason == "all candidates alike; B listed first"


def test_a_facility_without_a_price_is_said_so() -> None:
    step = StepNeeds(input_bytes=0, cores=1, run_s=HOUR, slack_s=None)
    choice = choose_facility([_c("A", cost=1.0), _c("B", cost=None)], step)
    assert choice.facility == "B" and "no price given" in choice.reason


def test_one_candidate_and_none() -> None:
    step = StepNeeds(input_bytes=0, cores=1, run_s=HOUR, slack_s=None)
    assert choose_facility([_c("A")], step).reason == "the only candidate facility: A"
    with pytest.raises(ValueError):
        choose_facility([], step)


def test_deterministic() -> None:
    step = StepNeeds(input_bytes=10**9, cores=2, run_s=HOUR, slack_s=4 * HOUR)
    cands = [_c("A", queue=3, local=10**8), _c("B", queue=1, cost=2.0), _c("C", local=10**9, cost=None)]
    first = choose_facility(cands, step)
    assert all(choose_facility(cands, step) == first for _ in range(3))
