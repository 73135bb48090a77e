"""The ODIP's pure parts: status mapping per order state, workflows from the mission files,
option checks, the estimate and the notification back-off."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from proseo.catalog.model_order import OrderState
from proseo.interfaces.odip_estimate import DEFAULT_S, estimate_date
from proseo.interfaces.odip_notify import FIRST_RETRY_S, MAX_RETRY_S, RETRY
from proseo.interfaces.odip_orders import choose_workflow
from proseo.interfaces.odip_status import MESSAGES, Status, production_status
from proseo.interfaces.odip_workflows import OdipRequestError, workflows
from proseo.missions import load_mission

from tests_paths import MISSION_DIR

EXPECTED = {
    "INITIAL": "queued",
    "APPROVED": "queued",
    "PLANNING": "queued",
    "PLANNED": "queued",
    "PLANNING_FAILED": "failed",
    "RELEASING": "in_progress",
    "RELEASED": "in_progress",
    "RUNNING": "in_progress",
    "SUSPENDING": "in_progress",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CLOSED": "completed",
}


@pytest.mark.parametrize("state", [s.value for s in OrderState])
def test_every_state_has_a_status_and_its_canonical_message(state: str) -> None:
    got = production_status(state)
    assert got.status.value == EXPECTED[state]
    assert got.message == MESSAGES[got.status]


def test_cancel_closed_and_input_outcomes() -> None:
    assert production_status("FAILED", ended_by="cancel") == production_status("FAILED", ended_by="cancel")
    assert production_status("FAILED", ended_by="cancel").status is Status.CANCELLED
    assert production_status("FAILED", ended_by="cancel").message == "request cancelled by user"
    assert production_status("FAILED", ended_by="fail").status is Status.FAILED
    assert production_status("CLOSED", closed_from="FAILED", ended_by="cancel").status is Status.CANCELLED
    assert production_status("CLOSED", closed_from="FAILED", ended_by="fail").status is Status.FAILED
    assert production_status("CLOSED", closed_from="COMPLETED").status is Status.COMPLETED
    planning = production_status("PLANNING_FAILED", reason="no input L1B_RA_BD1 for 2025-03-01")
    assert (planning.status, planning.message) == (Status.FAILED, "input product currently unavailable")


def test_workflows_one_per_producible_class_with_processor_options() -> None:
    cfg = load_mission(MISSION_DIR / "sky.yaml").config
    found = {w.product_class: w for w in workflows(cfg)}
    producible = {c for c in cfg.product_classes if cfg.producer_of(c)}
    assert set(found) == producible and producible
    calib = next(w for w in found.values() if w.processor == "CALIB")
    options = {o.name: (o.type, o.default) for o in calib.options}
    assert options == {"overscan": ("Boolean", True), "saturation_adu": ("Integer", 60000)}
    entity = calib.entity()
    assert entity["Name"] == f"SKY.{calib.product_class}" and entity["WorkflowVersion"] == "1.2.0"
    assert {o["Name"] for o in entity["WorkflowOptions"]} == {"overscan", "saturation_adu"}
    src = found["SRC_CAT"]
    assert src.entity()["InputProductTypes"][:2] == ["STACK_G", "STACK_R"]
    assert len({w.id for w in found.values()}) == len(found)  # stable, distinct Ids
    assert [w.id for w in workflows(cfg)] == [w.id for w in workflows(cfg)]


def test_a_workflow_name_two_workflows_share_is_refused_naming_their_ids() -> None:
    cfg = load_mission(MISSION_DIR / "sky.yaml").config
    found = workflows(cfg)
    twin = dataclasses.replace(found[0], id="00000000-0000-0000-0000-000000000001", processor="OTHER")
    both = [*found, twin]
    with pytest.raises(OdipRequestError) as refused:
        choose_workflow(both, found[0].name, None)
    assert refused.value.option == "WorkflowName"
    assert "ambiguous: give WorkflowId" in str(refused.value) and found[0].id in str(refused.value)
    assert choose_workflow(both, found[0].name, twin.id) is twin
    assert choose_workflow(both, None, found[0].id) is found[0]
    with pytest.raises(OdipRequestError):
        choose_workflow(both, "SKY.NOPE", None)


def test_options_become_dynamic_parameters_and_bad_ones_name_the_option() -> None:
    cfg = load_mission(MISSION_DIR / "sky.yaml").config
    calib = next(w for w in workflows(cfg) if w.processor == "CALIB")
    given = [{"Name": "overscan", "Value": False}, {"Name": "saturation_adu", "Value": 50000}]
    assert calib.options_to_parameters(given) == {"overscan": False, "saturation_adu": 50000}
    cases = [
        ([{"Name": "gain", "Value": 1}], "WorkflowOptions[0].Name", "no option 'gain'"),
        ([{"Name": "overscan", "Value": "yes"}], "WorkflowOptions[0].Value", "takes a Boolean"),
        ([{"Name": "saturation_adu", "Value": 1.5}], "WorkflowOptions[0].Value", "takes a Integer"),
        ([{"Name": "overscan"}], "WorkflowOptions[0]", "Name"),
        ([{"Name": "overscan", "Value": True}] * 2, "WorkflowOptions[1].Name", "twice"),
    ]
    for options, field, words in cases:
        with pytest.raises(OdipRequestError) as err:
            calib.options_to_parameters(options)
        assert err.value.option == field and words in str(err.value), (options, str(err.value))


def test_estimate_sums_medians_of_the_steps_left() -> None:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    assert estimate_date(now, {}, {}) == now
    got = estimate_date(now, {"CALIB": 2, "DETECT": 1}, {"CALIB": 30.0, "DETECT": 12.5})
    assert got == now + timedelta(seconds=72.5)
    assert estimate_date(now, {"NEVER_SEEN": 1}, {}) == now + timedelta(seconds=DEFAULT_S)


def test_notification_back_off_doubles_up_to_the_cap() -> None:
    assert RETRY.delay(1).total_seconds() == FIRST_RETRY_S
    assert RETRY.delay(2).total_seconds() == 2 * FIRST_RETRY_S
    assert RETRY.delay(50).total_seconds() == MAX_RETRY_S
