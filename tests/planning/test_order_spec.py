"""Order requests: field checks on the model and mission checks against the sample missions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from pydantic import ValidationError

from proseo.errors import OrderError
from proseo.missions import MissionConfig, load_mission
from proseo.missions.types import SlicingType
from proseo.planning.spec import (
    OnInputTimeout,
    OrderSpec,
    SlicingRequest,
    check_against,
    effective_file_class,
    effective_mode,
)

from tests_paths import MISSION_DIR


@cache
def mission(name: str) -> MissionConfig:
    return load_mission(MISSION_DIR / f"{name}.yaml").config


FIELDS = (
    "requested_classes",
    "input_only_classes",
    "configured_processors",
    "processing_mode",
    "output_file_class",
    "facility",
    "orbit_from",
    "input_filters",
    "output_parameters",
)
FIELD_START = re.compile(rf"; (?=(?:{'|'.join(FIELDS)})[.:])")

BASE: dict[str, Any] = {
    "identifier": "o1",
    "requested_classes": ["L2__NO2___"],
    "start": "2025-03-01T00:00:00Z",
    "stop": "2025-03-02T00:00:00Z",
}


def spec(**changes: Any) -> OrderSpec:
    data = {**BASE, **changes}
    return OrderSpec(**{k: v for k, v in data.items() if v is not None})


def errors(**changes: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        spec(**changes)
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


def only_error(**changes: Any) -> tuple[tuple[Any, ...], str]:
    found = errors(**changes)
    assert len(found) == 1, found
    return found[0]


def problems(order: OrderSpec, cfg: MissionConfig) -> list[str]:
    """The problems check_against lists, one per entry."""
    with pytest.raises(OrderError) as info:
        check_against(order, cfg)
    err = info.value
    assert err.exit_code == 2
    assert err.mission == cfg.code
    assert err.order == order.identifier
    prefix = f"{cfg.code}/{order.identifier}: invalid order: "
    text = str(err)
    assert text.startswith(prefix)
    # Problems are joined by "; ", which may also occur inside one: split before field names only.
    return FIELD_START.split(text.removeprefix(prefix))


# --- the model -----------------------------------------------------------------------------


class TestOrderSpecFields:
    def test_minimal_time_window(self) -> None:
        s = spec()
        assert s.start == datetime(2025, 3, 1, tzinfo=UTC)
        assert s.stop == datetime(2025, 3, 2, tzinfo=UTC)
        assert (s.priority, s.on_input_timeout, s.slicing) == (50, OnInputTimeout.FAIL, None)
        assert s.window_text() == "2025-03-01T00:00:00+00:00 .. 2025-03-02T00:00:00+00:00"

    def test_minimal_orbit_range(self) -> None:
        s = spec(start=None, stop=None, orbit_from=37000, orbit_to=37003)
        assert (s.start, s.stop) == (None, None)
        assert s.window_text() == "orbits 37000..37003"

    def test_one_orbit_is_a_range(self) -> None:
        assert spec(start=None, stop=None, orbit_from=0, orbit_to=0).orbit_to == 0

    def test_times_are_converted_to_utc(self) -> None:
        s = spec(start="2025-03-01T02:00:00+02:00", stop="2025-03-01T06:00:00")
        assert s.start == datetime(2025, 3, 1, tzinfo=UTC)
        assert s.stop == datetime(2025, 3, 1, 6, tzinfo=UTC)

    def test_spec_is_frozen_and_refuses_unknown_fields(self) -> None:
        ((loc, msg),) = errors(colour="red")
        assert loc == ("colour",)
        assert "Extra inputs are not permitted" in msg
        with pytest.raises(ValidationError):
            spec().priority = 3  # type: ignore[misc]

    def test_both_time_window_and_orbit_range(self) -> None:
        _, msg = only_error(orbit_from=37000, orbit_to=37001)
        assert "give either start and stop, or orbit_from and orbit_to" in msg

    def test_neither_time_window_nor_orbit_range(self) -> None:
        _, msg = only_error(start=None, stop=None)
        assert "give either start and stop, or orbit_from and orbit_to" in msg

    def test_start_without_stop(self) -> None:
        assert "give both start and stop" in only_error(stop=None)[1]

    def test_orbit_from_without_orbit_to(self) -> None:
        assert "give both orbit_from and orbit_to" in only_error(start=None, stop=None, orbit_from=3)[1]

    def test_stop_before_start(self) -> None:
        _, msg = only_error(start="2025-03-02T00:00:00Z", stop="2025-03-01T00:00:00Z")
        assert "stop 2025-03-01T00:00:00+00:00 is not after start 2025-03-02T00:00:00+00:00" in msg

    def test_stop_equal_to_start(self) -> None:
        assert "is not after start" in only_error(stop=BASE["start"])[1]

    def test_orbit_to_before_orbit_from(self) -> None:
        _, msg = only_error(start=None, stop=None, orbit_from=37005, orbit_to=37004)
        assert "orbit_to 37004 is before orbit_from 37005" in msg

    def test_negative_orbit_number(self) -> None:
        loc, _ = only_error(start=None, stop=None, orbit_from=-1, orbit_to=3)
        assert loc == ("orbit_from",)

    def test_bad_time_text(self) -> None:
        loc, msg = only_error(start="yesterday")
        assert loc == ("start",)
        assert "invalid time 'yesterday'" in msg

    @pytest.mark.parametrize("field", ["requested_classes", "input_only_classes", "configured_processors"])
    def test_duplicates_are_refused(self, field: str) -> None:
        loc, msg = only_error(**{field: ["B", "A", "B", "A", "C"]})
        assert loc == (field,)
        assert "listed more than once: A, B" in msg

    def test_no_requested_class(self) -> None:
        loc, _ = only_error(requested_classes=[])
        assert loc == ("requested_classes",)

    @pytest.mark.parametrize(
        "ident", ["has space", "-leading-dash", "_underscore", "a/b", "é", "", "x" * 201]
    )
    def test_bad_identifier(self, ident: str) -> None:
        loc, _ = only_error(identifier=ident)
        assert loc == ("identifier",)

    @pytest.mark.parametrize("ident", ["o1", "S5P_NRTI-2025.03.01:v2", "9", "x" * 200])
    def test_good_identifier(self, ident: str) -> None:
        assert spec(identifier=ident).identifier == ident

    @pytest.mark.parametrize("priority", [0, 101, -5])
    def test_priority_out_of_range(self, priority: int) -> None:
        loc, _ = only_error(priority=priority)
        assert loc == ("priority",)

    @pytest.mark.parametrize("priority", [1, 100])
    def test_priority_bounds_are_allowed(self, priority: int) -> None:
        assert spec(priority=priority).priority == priority

    @pytest.mark.parametrize(
        "endpoint", ["ftp://example.org/x", "example.org", "httpx://a", "HTTPS://a", " https://a"]
    )
    def test_bad_notification_endpoint(self, endpoint: str) -> None:
        loc, _ = only_error(notification_endpoint=endpoint)
        assert loc == ("notification_endpoint",)

    @pytest.mark.parametrize("endpoint", ["http://h/x", "https://h/hook", "mailto:ops@example.org"])
    def test_good_notification_endpoint(self, endpoint: str) -> None:
        assert spec(notification_endpoint=endpoint).notification_endpoint == endpoint

    def test_unknown_on_input_timeout(self) -> None:
        loc, _ = only_error(on_input_timeout="WAIT_FOREVER")
        assert loc == ("on_input_timeout",)

    def test_input_timeout_is_a_duration(self) -> None:
        assert spec(input_timeout="2h").input_timeout == timedelta(hours=2)
        assert only_error(input_timeout="soon")[0] == ("input_timeout",)

    def test_several_field_errors_are_reported_together(self) -> None:
        locs = {loc for loc, _ in errors(identifier="bad id", priority=0, notification_endpoint="ftp://x")}
        assert locs == {("identifier",), ("priority",), ("notification_endpoint",)}


class TestSlicingRequest:
    def test_time_slice_with_duration_and_overlap(self) -> None:
        req = SlicingRequest(type="TIME_SLICE", duration="PT1H41M", overlap="10 min")
        assert req.type is SlicingType.TIME_SLICE
        assert (req.duration, req.overlap) == (timedelta(minutes=101), timedelta(minutes=10))

    def test_time_slice_without_duration(self) -> None:
        with pytest.raises(ValidationError, match="TIME_SLICE needs a positive 'duration'"):
            SlicingRequest(type="TIME_SLICE")

    def test_time_slice_with_zero_duration(self) -> None:
        with pytest.raises(ValidationError, match="TIME_SLICE needs a positive 'duration'"):
            SlicingRequest(type="TIME_SLICE", duration="0s")

    @pytest.mark.parametrize("kind", ["CALENDAR_DAY", "ORBIT", "NONE", "CALENDAR_MONTH", "CALENDAR_YEAR"])
    def test_duration_only_for_time_slice(self, kind: str) -> None:
        with pytest.raises(ValidationError, match=f"apply only to TIME_SLICE, not {kind}"):
            SlicingRequest(type=kind, duration="1h")

    def test_overlap_only_for_time_slice(self) -> None:
        with pytest.raises(ValidationError, match="apply only to TIME_SLICE, not CALENDAR_DAY"):
            SlicingRequest(type="CALENDAR_DAY", overlap="1 min")

    def test_plain_calendar_slicing(self) -> None:
        req = SlicingRequest(type="CALENDAR_DAY")
        assert (req.duration, req.overlap) == (None, timedelta(0))

    def test_unknown_type(self) -> None:
        with pytest.raises(ValidationError):
            SlicingRequest(type="WEEKLY")

    def test_errors_inside_the_order_name_the_slicing_field(self) -> None:
        loc, msg = only_error(slicing={"type": "TIME_SLICE"})
        assert loc == ("slicing",)
        assert "TIME_SLICE needs a positive 'duration'" in msg
        loc, msg = only_error(slicing={"type": "CALENDAR_DAY", "duration": "1h"})
        assert loc == ("slicing",)
        assert "not CALENDAR_DAY" in msg


# --- against the mission ---------------------------------------------------------------------


class TestValidOrders:
    def test_full_s5p_order_passes(self) -> None:
        order = spec(
            requested_classes=["L2__NO2___", "L2__O3____", "L3__NO2___"],
            input_only_classes=["L0__ODB_1_", "AUX_MET_TP"],
            configured_processors=["L01B_02.10.00_2025.01", "L2_NO2_01.04.00_2025.01"],
            output_file_class="TEST",
            processing_mode="RPRO",
            facility="cloud",
            input_filters={"L1B_RA_BD4": {"collection": 3, "file_class": "OPER", "mode": "OFFL"}},
            output_parameters={"*": {"collection": 3}, "L3__NO2___": {"collection": 4}},
            slicing={"type": "CALENDAR_DAY"},
        )
        assert check_against(order, mission("s5p")) is None

    def test_requesting_a_component_class_is_allowed(self) -> None:
        # L1B_RA_BD3 has no processor of its own: the L1B run that makes its enclosing class does.
        assert check_against(spec(requested_classes=["L1B_RA_BD3", "L1B_______"]), mission("s5p")) is None

    def test_orbit_range_on_a_mission_with_orbits(self) -> None:
        order = spec(start=None, stop=None, orbit_from=37000, orbit_to=37010)
        assert check_against(order, mission("s5p")) is None

    def test_sky_order_with_class_parameters(self) -> None:
        order = spec(
            requested_classes=["OBJ_CAT", "CALEXP_G"],
            processing_mode="DRP",
            facility="observatory_hpc",
            input_filters={"RAW_EXP": {"exposure_id": 4711, "filter": "g", "exposure_time_s": 30}},
            output_parameters={"*": {"filter": "g"}},
        )
        assert check_against(order, mission("sky")) is None

    def test_defaults_are_the_first_mode_and_file_class(self) -> None:
        cfg = mission("s5p")
        assert (effective_mode(spec(), cfg), effective_file_class(spec(), cfg)) == ("NRTI", "OPER")
        chosen = spec(processing_mode="OFFL", output_file_class="TEST")
        assert (effective_mode(chosen, cfg), effective_file_class(chosen, cfg)) == ("OFFL", "TEST")


class TestMissionProblems:
    def test_unknown_requested_class(self) -> None:
        assert problems(spec(requested_classes=["L2__NO2___", "L2__SO2___"]), mission("s5p")) == [
            "requested_classes: unknown product class 'L2__SO2___'"
        ]

    def test_input_only_class_cannot_be_requested(self) -> None:
        assert problems(spec(requested_classes=["L0__ODB_1_"]), mission("s5p")) == [
            "requested_classes: L0__ODB_1_ has no processor, so it can only be ingested"
        ]

    def test_aux_class_cannot_be_requested_either(self) -> None:
        assert problems(spec(requested_classes=["AUX_MET_TP"]), mission("s5p")) == [
            "requested_classes: AUX_MET_TP has no processor, so it can only be ingested"
        ]

    def test_unknown_input_only_class(self) -> None:
        assert problems(spec(input_only_classes=["L0__NOPE__"]), mission("s5p")) == [
            "input_only_classes: unknown product class 'L0__NOPE__'"
        ]

    def test_input_only_class_that_is_also_requested(self) -> None:
        order = spec(requested_classes=["L2__NO2___", "L2__CLOUD_"], input_only_classes=["L2__CLOUD_"])
        assert problems(order, mission("s5p")) == ["input_only_classes: L2__CLOUD_ is also requested"]

    def test_unknown_mode(self) -> None:
        assert problems(spec(processing_mode="NIGHTLY"), mission("s5p")) == [
            "processing_mode: 'NIGHTLY' is not one of NRTI, OFFL, RPRO"
        ]

    def test_unknown_file_class(self) -> None:
        assert problems(spec(output_file_class="PROD"), mission("s5p")) == [
            "output_file_class: 'PROD' is not one of OPER, TEST"
        ]

    def test_unknown_configured_processor(self) -> None:
        assert problems(spec(configured_processors=["L01B_09.99.00_2025.01"]), mission("s5p")) == [
            "configured_processors: unknown configured processor 'L01B_09.99.00_2025.01'"
        ]

    def test_two_pins_for_one_processor(self) -> None:
        order = spec(
            configured_processors=[
                "L01B_02.10.00_2025.01",
                "L2_NO2_01.04.00_2025.01",
                "L01B_02.01.00_2025.01-rpro",
            ]
        )
        assert problems(order, mission("s5p")) == [
            "configured_processors: L01B_02.01.00_2025.01-rpro and L01B_02.10.00_2025.01 pin one processor"
        ]

    def test_unknown_facility(self) -> None:
        # A facility of the other mission is unknown here.
        assert problems(spec(facility="observatory_hpc"), mission("s5p")) == [
            "facility: unknown facility 'observatory_hpc'"
        ]

    def test_orbit_range_on_a_mission_without_spacecraft(self) -> None:
        order = spec(requested_classes=["SRC_CAT"], start=None, stop=None, orbit_from=1, orbit_to=2)
        assert problems(order, mission("sky")) == ["orbit_from: the mission has no spacecraft, so no orbits"]

    def test_input_filter_for_unknown_class(self) -> None:
        assert problems(spec(input_filters={"L1B_RA_BD9": {"collection": 1}}), mission("s5p")) == [
            "input_filters: unknown product class 'L1B_RA_BD9'"
        ]

    def test_star_is_not_a_class_in_input_filters(self) -> None:
        assert problems(spec(input_filters={"*": {"collection": 1}}), mission("s5p")) == [
            "input_filters: unknown product class '*'"
        ]

    def test_input_filter_on_undeclared_parameter(self) -> None:
        assert problems(spec(input_filters={"L1B_RA_BD4": {"orbit_direction": "ASC"}}), mission("s5p")) == [
            "input_filters.L1B_RA_BD4.orbit_direction: the class declares no parameter 'orbit_direction'"
        ]

    def test_class_parameter_of_another_class_is_undeclared(self) -> None:
        # exposure_id is declared by RAW_EXP only.
        assert problems(
            spec(requested_classes=["SRC_CAT"], input_filters={"CAL_BIAS": {"exposure_id": 1}}),
            mission("sky"),
        ) == ["input_filters.CAL_BIAS.exposure_id: the class declares no parameter 'exposure_id'"]

    def test_input_filter_type_error(self) -> None:
        found = problems(
            spec(requested_classes=["SRC_CAT"], input_filters={"RAW_EXP": {"exposure_id": "first"}}),
            mission("sky"),
        )
        assert len(found) == 1
        assert found[0].startswith("input_filters.RAW_EXP.exposure_id: ")
        assert "'first'" in found[0]

    @pytest.mark.parametrize("value", ["three", True, "3.5"])
    def test_output_parameter_type_error(self, value: Any) -> None:
        found = problems(spec(output_parameters={"L2__NO2___": {"collection": value}}), mission("s5p"))
        assert len(found) == 1
        assert found[0].startswith("output_parameters.L2__NO2___.collection: ")

    def test_non_integral_number_for_an_integer_parameter_is_refused(self) -> None:
        found = problems(spec(output_parameters={"*": {"collection": 2.5}}), mission("s5p"))
        assert found[0].startswith("output_parameters.*.collection: ")

    def test_star_output_parameters_use_the_mission_parameters(self) -> None:
        assert check_against(spec(output_parameters={"*": {"collection": 7}}), mission("s5p")) is None
        found = problems(spec(output_parameters={"*": {"collection": "x", "colour": "red"}}), mission("s5p"))
        assert found[0].startswith("output_parameters.*.collection: ")
        assert (
            found[1] == "output_parameters.*.colour: no class an order can make declares parameter 'colour'"
        )

    def test_star_output_parameters_see_the_parameters_of_classes_an_order_makes(self) -> None:
        # exposure_id is a parameter of the delivered RAW_EXP only: no made product has it.
        found = problems(
            spec(requested_classes=["SRC_CAT"], output_parameters={"*": {"exposure_id": 3}}), mission("sky")
        )
        assert found == [
            "output_parameters.*.exposure_id: no class an order can make declares parameter 'exposure_id'"
        ]
        # A parameter only the stacks declare: '*' reaches them, and only them.
        data = mission("sky").model_dump()
        data["product_classes"]["STACK_G"]["parameters"] = {"depth": "integer"}
        cfg = MissionConfig.model_validate(data)
        order = spec(requested_classes=["SRC_CAT"], output_parameters={"*": {"depth": 3}})
        assert check_against(order, cfg) is None

    def test_output_parameters_for_unknown_class(self) -> None:
        assert problems(spec(output_parameters={"L4__NO2___": {"collection": 1}}), mission("s5p")) == [
            "output_parameters: unknown product class 'L4__NO2___'"
        ]

    def test_product_attributes_are_not_parameters(self) -> None:
        order = spec(
            input_filters={
                "L1B_RA_BD4": {"file_class": "TEST", "mode": "OFFL", "production_type": "SYSTEMATIC"}
            }
        )
        assert check_against(order, mission("s5p")) is None

    def test_every_problem_is_reported_at_once_with_its_field(self) -> None:
        order = spec(
            requested_classes=["L2__SO2___", "L0__ODB_1_", "L2__NO2___"],
            input_only_classes=["NOPE", "L2__NO2___"],
            configured_processors=["GHOST_1", "L01B_02.10.00_2025.01", "L01B_02.01.00_2025.01"],
            processing_mode="FAST",
            output_file_class="PROD",
            facility="moon",
            input_filters={"L9": {"x": 1}, "L1B_RA_BD4": {"colour": "red"}},
            output_parameters={"*": {"collection": "abc"}, "L2__NO2___": {"collection": "def"}},
        )
        found = problems(order, mission("s5p"))
        assert found == [
            "requested_classes: unknown product class 'L2__SO2___'",
            "requested_classes: L0__ODB_1_ has no processor, so it can only be ingested",
            "input_only_classes: unknown product class 'NOPE'",
            "input_only_classes: L2__NO2___ is also requested",
            "configured_processors: unknown configured processor 'GHOST_1'",
            "configured_processors: L01B_02.01.00_2025.01 and L01B_02.10.00_2025.01 pin one processor",
            "processing_mode: 'FAST' is not one of NRTI, OFFL, RPRO",
            "output_file_class: 'PROD' is not one of OPER, TEST",
            "facility: unknown facility 'moon'",
            "input_filters: unknown product class 'L9'",
            "input_filters.L1B_RA_BD4.colour: the class declares no parameter 'colour'",
            found[11],
            found[12],
        ]
        assert found[11].startswith("output_parameters.*.collection: ") and "'abc'" in found[11]
        assert found[12].startswith("output_parameters.L2__NO2___.collection: ") and "'def'" in found[12]

    def test_sky_problems_together(self) -> None:
        order = spec(
            requested_classes=["RAW_EXP", "STACK_G"],
            start=None,
            stop=None,
            orbit_from=10,
            orbit_to=12,
            processing_mode="NRTI",
            facility="cloud",
        )
        assert problems(order, mission("sky")) == [
            "requested_classes: RAW_EXP has no processor, so it can only be ingested",
            "processing_mode: 'NRTI' is not one of NIGHTLY, DRP",
            "facility: unknown facility 'cloud'",
            "orbit_from: the mission has no spacecraft, so no orbits",
        ]
