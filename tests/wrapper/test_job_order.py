"""The Job Order: both dialects render, validate and read back; malformed ones are named."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from proseo.wrapper.ipftime import MAX_TIME, MIN_TIME, IpfTimeError, format_ipf_time, parse_ipf_time
from proseo.wrapper.joborder import (
    JobOrderError,
    parse_job_order,
    read_job_order,
    render_job_order,
    validate_job_order,
)
from proseo.wrapper.spec import JobSpec

DIALECTS = ["MMFI_1_8", "GMES_1_1"]


@pytest.fixture
def job_spec(spec_data: Callable[..., dict[str, Any]], file_store: Any) -> Callable[..., JobSpec]:
    def make(**overrides: Any) -> JobSpec:
        return JobSpec.model_validate(spec_data(file_store, **overrides))

    return make


def test_ipf_times() -> None:
    instant = datetime(2024, 3, 1, 1, 40, 0, 500, tzinfo=UTC)
    assert format_ipf_time(instant) == "20240301_014000000500"
    assert parse_ipf_time("20240301_014000000500") == instant
    assert format_ipf_time(datetime(2024, 3, 1)) == "20240301_000000000000"  # naive means UTC
    assert format_ipf_time(MIN_TIME) == "00000000_000000000000"
    assert format_ipf_time(MAX_TIME) == "99999999_999999999999"
    assert parse_ipf_time("00000000_000000000000") == MIN_TIME
    assert parse_ipf_time("99999999_999999999999") == MAX_TIME
    for bad in ("2024-03-01T00:00:00", "20240301_0000000000", "20241301_000000000000", ""):
        with pytest.raises(IpfTimeError):
            parse_ipf_time(bad)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_both_dialects_render_validate_and_read_back(
    job_spec: Callable[..., JobSpec], dialect: str, config_file: Path
) -> None:
    spec = job_spec(dialect=dialect)
    xml = render_job_order(spec)
    validate_job_order(xml)
    order = parse_job_order(xml)

    assert order.dialect == dialect
    assert (order.processor, order.version) == ("TEST_L1B", "01.02.03")
    assert order.tasks == [("TEST_L1B", "01.02.03")]
    assert order.sensing_start == datetime(2024, 3, 1, tzinfo=UTC)
    assert order.sensing_stop == datetime(2024, 3, 1, 1, 40, 0, 500000, tzinfo=UTC)
    assert order.parameters == {"behaviour": "ok", "orbit": "1", "strict": "true", "threshold": "0.25"}
    assert order.inputs == {
        "L0": ["inputs/L0/S5P_L0_ORBIT_00001_A.RAW", "inputs/L0/S5P_L0_ORBIT_00001_B.RAW"],
        "AUX_MET": ["inputs/AUX_MET/S5P_AUX_MET_20240301.nc"],
        "CFG_TEST": [str(config_file)],
    }
    assert [(o.file_type, o.file_name, o.file_name_type) for o in order.outputs] == [
        ("L1B", "outputs/S5P_TEST_L1B_00001.nc", "Physical"),
        ("L2_SAFE", "outputs/S5P_TEST_L2_00001.SAFE", "Physical"),
    ]
    assert order.config_files == [str(config_file)]


def test_the_dialects_differ_in_list_names(job_spec: Callable[..., JobSpec]) -> None:
    mmfi = ET.fromstring(render_job_order(job_spec(dialect="MMFI_1_8"))).find("Ipf_Conf")
    gmes = ET.fromstring(render_job_order(job_spec(dialect="GMES_1_1"))).find("Ipf_Conf")
    assert mmfi is not None and gmes is not None
    assert len(mmfi.findall("Config_Files/Conf_File_Name")) == 1
    assert len(mmfi.findall("Dynamic_Processing_Parameters/Processing_Parameter")) == 4
    configs = gmes.find("List_of_Config_Files")
    params = gmes.find("List_of_Dyn_Processing_Parameters")
    assert configs is not None and configs.get("count") == "1" and len(configs.findall("Config_File")) == 1
    assert params is not None and params.get("count") == "4"
    assert len(params.findall("Dyn_Processing_Parameter")) == 4
    tags = [child.tag for child in mmfi]
    assert tags[:7] == [
        "Processor_Name",
        "Version",
        "Stdout_Log_Level",
        "Stderr_Log_Level",
        "Test",
        "Breakpoint_Enable",
        "Processing_Station",
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_structure_counts_and_times(job_spec: Callable[..., JobSpec], dialect: str) -> None:
    root = ET.fromstring(
        render_job_order(job_spec(dialect=dialect, tasks=[{"name": "A", "version": "1"}] * 2))
    )
    for element in root.iter():
        if element.tag.startswith("List_of_"):
            assert element.get("count") == str(len(element)), element.tag
    assert root.findtext("Ipf_Conf/Sensing_Time/Start") == "20240301_000000000000"
    assert root.findtext("Ipf_Conf/Sensing_Time/Stop") == "20240301_014000500000"
    procs = root.findall("List_of_Ipf_Procs/Ipf_Proc")
    assert len(procs) == 2
    inputs = procs[0].findall("List_of_Inputs/Input")
    assert [i.findtext("File_Type") for i in inputs] == ["L0", "AUX_MET", "CFG_TEST"]  # one Input per type
    l0 = inputs[0]
    assert l0.findtext("File_Name_Type") == "Physical"
    assert len(l0.findall("List_of_File_Names/File_Name")) == 2
    interval = l0.find("List_of_Time_Intervals/Time_Interval")
    assert interval is not None
    assert [interval.findtext(t) for t in ("Start", "Stop", "File_Name")] == [
        "20240301_000000000000",
        "20240301_014000500000",
        "inputs/L0/S5P_L0_ORBIT_00001_A.RAW",
    ]
    assert len(procs[1].findall("List_of_Outputs/Output")) == 2


def test_rendering_is_deterministic_and_has_open_bounds(job_spec: Callable[..., JobSpec]) -> None:
    spec = job_spec()
    assert render_job_order(spec) == render_job_order(JobSpec.model_validate_json(spec.model_dump_json()))
    spec = job_spec(sensing_start="0001-01-01T00:00:00Z", sensing_stop="9999-12-31T23:59:59.999999Z")
    xml = render_job_order(spec)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Ipf_Job_Order>')
    order = parse_job_order(xml)
    assert (order.sensing_start, order.sensing_stop) == (MIN_TIME, MAX_TIME)
    assert b"<Start>00000000_000000000000</Start>" in xml and b"<Stop>99999999_999999999999</Stop>" in xml


def test_read_job_order_resolves_names_against_its_folder(
    job_spec: Callable[..., JobSpec], tmp_path: Path
) -> None:
    path = tmp_path / "work" / "JobOrder_42.xml"
    path.parent.mkdir()
    path.write_bytes(render_job_order(job_spec()))
    order = read_job_order(path)
    assert order.path == path
    assert (
        order.resolve(order.outputs[0].file_name) == tmp_path / "work" / "outputs" / "S5P_TEST_L1B_00001.nc"
    )
    assert order.resolve("/abs/file") == Path("/abs/file")


def _tamper(xml: bytes, path: str, change: Callable[[ET.Element], None]) -> bytes:
    root = ET.fromstring(xml)
    element = root.find(path)
    assert element is not None, path
    change(element)
    return ET.tostring(root)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("path", "change", "named", "problem"),
    [
        (
            "List_of_Ipf_Procs/Ipf_Proc/List_of_Inputs",
            lambda e: e.set("count", "5"),
            "Ipf_Job_Order/List_of_Ipf_Procs/Ipf_Proc/List_of_Inputs:",
            'count="5" but it has 3',
        ),
        (
            "List_of_Ipf_Procs/Ipf_Proc/List_of_Inputs/Input/List_of_File_Names",
            lambda e: e.remove(e[1]),
            "Ipf_Job_Order/List_of_Ipf_Procs/Ipf_Proc/List_of_Inputs/Input[1]/List_of_File_Names:",
            'count="2" but it has 1',
        ),
        (
            "List_of_Ipf_Procs/Ipf_Proc/List_of_Outputs",
            lambda e: e.attrib.pop("count"),
            "Ipf_Job_Order/List_of_Ipf_Procs/Ipf_Proc/List_of_Outputs:",
            "count attribute is missing",
        ),
        (
            "Ipf_Conf/Sensing_Time/Start",
            lambda e: setattr(e, "text", "2024-03-01T00:00:00Z"),
            "Ipf_Job_Order/Ipf_Conf/Sensing_Time/Start:",
            "malformed time",
        ),
        (
            "List_of_Ipf_Procs/Ipf_Proc/List_of_Inputs/Input/List_of_Time_Intervals/Time_Interval[2]/Stop",
            lambda e: setattr(e, "text", "20241301_000000000000"),
            "Input[1]/List_of_Time_Intervals/Time_Interval[2]/Stop:",
            "not a valid date",
        ),
        (
            "List_of_Ipf_Procs/Ipf_Proc/List_of_Outputs/Output[2]/File_Name_Type",
            lambda e: setattr(e, "text", "Physcal"),
            "List_of_Outputs/Output[2]/File_Name_Type:",
            "unknown file name type 'Physcal'",
        ),
    ],
)
def test_validation_names_the_offending_element(
    job_spec: Callable[..., JobSpec],
    dialect: str,
    path: str,
    change: Callable[[ET.Element], None],
    named: str,
    problem: str,
) -> None:
    xml = _tamper(render_job_order(job_spec(dialect=dialect)), path, change)
    with pytest.raises(JobOrderError) as caught:
        validate_job_order(xml)
    assert named in str(caught.value) and problem in str(caught.value)
    assert caught.value.element.endswith(named.rstrip(":"))


def test_a_wrong_count_in_a_dialect_list_is_named(job_spec: Callable[..., JobSpec]) -> None:
    xml = render_job_order(job_spec(dialect="GMES_1_1")).replace(
        b'<List_of_Dyn_Processing_Parameters count="4">', b'<List_of_Dyn_Processing_Parameters count="3">'
    )
    with pytest.raises(JobOrderError, match=r"Ipf_Conf/List_of_Dyn_Processing_Parameters: count=\"3\""):
        validate_job_order(xml)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<Ipf_Job_Order><Ipf_Conf>", "not well-formed XML"),
        (b"<Job_Order/>", "the root element must be Ipf_Job_Order"),
        (b"<Ipf_Job_Order/>", "Ipf_Job_Order/Ipf_Conf: is missing"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><Ipf_Job_Order/>', "document type declarations"),
    ],
)
def test_malformed_documents_are_refused(xml: bytes, message: str) -> None:
    with pytest.raises(JobOrderError, match=message):
        validate_job_order(xml)
