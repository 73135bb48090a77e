"""The sample processors run as real programs: Job Order in, every output out, IPF exit codes.

Each test writes its own inputs and Job Order (MMFI 1.8 or GMES 1.1) and runs the
installed console script with the working directory as cwd, exactly as the wrapper does.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proseo.processors.ipf import GMES_1_1, MMFI_1_8, JobOrderError, read_job_order
from proseo.processors.swath import swath

BIN = Path(sys.executable).parent
START, STOP = "20250301_000000000000", "20250301_014100000000"


@dataclass(frozen=True)
class Case:
    """One processor invocation: command, dialect, input files per type, outputs."""

    command: tuple[str, ...]
    processor: str
    dialect: str
    inputs: dict[str, tuple[str, ...]]
    outputs: tuple[tuple[str, str], ...]
    tasks: tuple[str, ...] = ("PROC",)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return "-".join(self.command)


def _l0(kind: str) -> str:
    return f"inputs/S5P_OPER_{kind}_20250301T000000_20250301T014100_37845_20250301T020000.RAW"


def _nc(kind: str, n: int = 0) -> str:
    return f"inputs/S5P_OFFL_{kind}_20250301T{n:02d}0000_20250301T014100_37845_03_20250301T020000.nc"


def _out(kind: str, ext: str = "nc") -> tuple[str, str]:
    return kind, f"outputs/{kind}_20250301T000000.{ext}"


L1B_PARTS = ("L1B_RA_BD3", "L1B_RA_BD4", "L1B_RA_BD6", "L1B_IR_UVN")
CASES = [
    Case(
        ("s5p-l01b",),
        "L01B",
        MMFI_1_8,
        {t: (_l0(t),) for t in ("L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_")}
        | {"AUX_L1_CKD": (_nc("AUX_L1_CKD"),)},
        tuple(_out(t) for t in ("L1B_______", *L1B_PARTS)),
        ("L01B_PROC",),
        {"calibration_level": "full"},
    ),
    Case(
        ("s5p-l2", "CLOUD"),
        "L2_CLOUD",
        MMFI_1_8,
        {t: (_nc(t),) for t in ("L1B_RA_BD3", "L1B_RA_BD6", "L1B_IR_UVN")}
        | {"AUX_MET_TP": (_nc("AUX_MET_TP", 0), _nc("AUX_MET_TP", 6))},
        (_out("L2__CLOUD_"),),
    ),
    Case(
        ("s5p-l2", "NO2"),
        "L2_NO2",
        MMFI_1_8,
        {t: (_nc(t),) for t in ("L1B_RA_BD4", "L1B_IR_UVN", "L2__CLOUD_", "AUX_MET_TP", "AUX_CTMFCT")},
        (_out("L2__NO2___"),),
        ("TROPNLL2DP",),
        {"threshold_cloud_fraction": "0.5"},
    ),
    Case(
        ("s5p-l2", "O3"),
        "L2_O3",
        GMES_1_1,
        {t: (_nc(t),) for t in ("L1B_RA_BD3", "L1B_IR_UVN", "AUX_MET_TP")},
        (_out("L2__O3____"),),
    ),
    Case(
        ("s5p-l2", "CH4"),
        "L2_CH4",
        GMES_1_1,
        {t: (_nc(t),) for t in ("L1B_RA_BD6", "L2__CLOUD_", "AUX_MET_TP")},
        (_out("L2__CH4___"),),
    ),
    Case(
        ("s5p-l3", "NO2"),
        "L3_NO2",
        MMFI_1_8,
        {"L2__NO2___": tuple(_nc("L2__NO2___", n) for n in range(3))},
        (_out("L3__NO2___"),),
        ("GRIDDER",),
        {"grid_resolution_deg": "0.25"},
    ),
    Case(
        ("sky-calib",),
        "CALIB",
        GMES_1_1,
        {
            "RAW_EXP": tuple(f"inputs/SKY_OPER_RAW_EXP_g_20250301T1015{n}0_{n:06d}.fits" for n in range(3)),
            "CAL_BIAS": ("inputs/SKY_OPER_CAL_BIAS_20250228.fits",),
            "CAL_FLAT": ("inputs/SKY_OPER_CAL_FLAT_g_20250225.fits",),
        },
        (_out("CALEXP_G", "fits"),),
        ("ISR",),
        {"saturation_adu": "60000", "overscan": "true"},
    ),
    Case(
        ("sky-coadd",),
        "COADD",
        GMES_1_1,
        {"CALEXP_R": ("inputs/SKY_NIGHTLY_CALEXP_R_20250301.fits",)},
        (_out("STACK_R", "fits"),),
        ("WARP", "COADD"),
    ),
    Case(
        ("sky-detect",),
        "DETECT",
        GMES_1_1,
        {
            "STACK_G": ("inputs/SKY_NIGHTLY_STACK_G_20250301.fits",),
            "STACK_R": ("inputs/SKY_NIGHTLY_STACK_R_20250301.fits",),
            "REF_CAT": ("inputs/SKY_OPER_REF_CAT_20240101_20261231.parquet",),
        },
        (_out("SRC_CAT", "parquet"),),
    ),
    Case(
        ("sky-associate",),
        "ASSOCIATE",
        MMFI_1_8,
        {"SRC_CAT": tuple(f"inputs/SKY_NIGHTLY_SRC_CAT_202503{d:02d}.parquet" for d in (1, 2, 5))},
        (_out("OBJ_CAT", "parquet"),),
        ("ASSOC",),
        {"match_radius_arcsec": "0.5"},
    ),
]
BY_ID = {case.id: case for case in CASES}


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrib)
    if text is not None:
        child.text = text
    return child


def job_order_xml(
    case: Case, params: dict[str, str] | None = None, config_files: tuple[str, ...] = ()
) -> str:
    """A Job Order as the Generic IPF specification lays it out, in the case's dialect."""
    gmes = case.dialect == GMES_1_1
    root = ET.Element("Ipf_Job_Order")
    conf = _add(root, "Ipf_Conf")
    for tag, text in [
        ("Processor_Name", case.processor),
        ("Version", "01.04.00"),
        ("Stdout_Log_Level", "INFO"),
        ("Stderr_Log_Level", "WARNING"),
        ("Test", "false"),
        ("Breakpoint_Enable", "false"),
        ("Processing_Station", "PDGS"),
    ]:
        _add(conf, tag, text)
    # Only List_of_* elements carry a count (MMFI's Config_Files has none).
    count = str(len(config_files))
    configs = _add(conf, "List_of_Config_Files", count=count) if gmes else _add(conf, "Config_Files")
    for name in config_files:
        _add(configs, "Config_File" if gmes else "Conf_File_Name", name)
    sensing = _add(conf, "Sensing_Time")
    _add(sensing, "Start", START)
    _add(sensing, "Stop", STOP)
    all_params = case.params | (params or {})
    dyn = _add(
        conf,
        "List_of_Dyn_Processing_Parameters" if gmes else "Dynamic_Processing_Parameters",
        count=str(len(all_params)),
    )
    for name, value in all_params.items():
        param = _add(dyn, "Dyn_Processing_Parameter" if gmes else "Processing_Parameter")
        _add(param, "Name", name)
        _add(param, "Value", value)
    procs = _add(root, "List_of_Ipf_Procs", count=str(len(case.tasks)))
    for task in case.tasks:
        proc = _add(procs, "Ipf_Proc")
        _add(proc, "Task_Name", task)
        _add(proc, "Task_Version", "01.04.00")
        inputs = _add(proc, "List_of_Inputs", count=str(len(case.inputs)))
        for file_type, names in case.inputs.items():
            item = _add(inputs, "Input")
            _add(item, "File_Type", file_type)
            _add(item, "File_Name_Type", "Physical")
            files = _add(item, "List_of_File_Names", count=str(len(names)))
            for name in names:
                _add(files, "File_Name", name)
        outputs = _add(proc, "List_of_Outputs", count=str(len(case.outputs)))
        for file_type, name in case.outputs:
            item = _add(outputs, "Output")
            _add(item, "File_Type", file_type)
            _add(item, "File_Name_Type", "Physical")
            _add(item, "File_Name", name)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def prepare(
    workdir: Path, case: Case, params: dict[str, str] | None = None, config_files: tuple[str, ...] = ()
) -> dict[str, str]:
    """Write the case's inputs (content depends on type and name) and its Job Order; name -> sha256."""
    digests = {}
    for file_type, names in case.inputs.items():
        for name in names:
            path = workdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            data = f"{file_type} {name}\n".encode() * 50
            path.write_bytes(data)
            digests[Path(name).name] = hashlib.sha256(data).hexdigest()
    (workdir / "JobOrder.xml").write_text(job_order_xml(case, params, config_files))
    return digests


def run(case: Case, workdir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / case.command[0]), *case.command[1:], *(args or ("JobOrder.xml",))]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def _outputs(workdir: Path, case: Case) -> list[Path]:
    return [workdir / name for _, name in case.outputs]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_processor_writes_every_output_naming_its_inputs(tmp_path: Path, case: Case) -> None:
    digests = prepare(tmp_path, case)
    result = run(case, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{case.processor} 01.04.00: [I] processing finished" in result.stdout
    assert result.stderr == ""  # nothing at WARNING or above
    for (file_type, name), path in zip(case.outputs, _outputs(tmp_path, case), strict=True):
        body = json.loads(path.read_text())
        assert body["processor"] == {
            "command": " ".join(case.command),
            "name": case.processor,
            "version": "01.04.00",
        }
        assert body["product"]["file_type"] == file_type and body["product"]["file_name"] == Path(name).name
        assert body["sensing"] == {"start": START, "stop": STOP}
        assert body["job_order"] == "JobOrder.xml"
        assert body["parameters"] == case.params
        assert [t["name"] for t in body["tasks"]] == list(case.tasks)
        assert {i["file_name"]: i["sha256"] for i in body["inputs"]} == digests
        assert [i["file_name"] for i in body["inputs"]] == sorted(digests)
        meta = json.loads(path.with_name(path.name + ".meta.json").read_text())
        sizes = [(tmp_path / n).stat().st_size for names in case.inputs.values() for n in names]
        footprint = meta.pop("footprint", None)
        assert meta == {
            "input_count": len(digests),
            "input_bytes": sum(sizes),
            "input_digest": body["input_digest"],
            "job_order": "JobOrder.xml",
        }
        assert footprint == _expected_footprint(case)


def _expected_footprint(case: Case) -> dict[str, object] | None:
    """S5P orbit products look where the orbit's sunlit half does; the daily L3 at the globe."""
    if case.id.startswith("s5p-l3"):
        globe = [[-180.0, -90.0], [180.0, -90.0], [180.0, 90.0], [-180.0, 90.0], [-180.0, -90.0]]
        return {"type": "Polygon", "coordinates": [globe]}
    if case.id.startswith("s5p"):
        start, stop = (datetime.strptime(t, "%Y%m%d_%H%M%S%f").replace(tzinfo=UTC) for t in (START, STOP))
        return swath(start, stop)
    return None


def test_l1b_enclosing_product_names_its_components(tmp_path: Path) -> None:
    case = BY_ID["s5p-l01b"]
    prepare(tmp_path, case)
    assert run(case, tmp_path).returncode == 0
    products = {
        p.name.split("_2025")[0]: json.loads(p.read_text())["product"] for p in _outputs(tmp_path, case)
    }
    assert products["L1B_______"]["components"] == sorted(L1B_PARTS)
    assert products["L1B_RA_BD4"]["band"] == "RA_BD4"
    assert all(p["l0_files"] == 4 for p in products.values())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_outputs_are_a_function_of_the_inputs(tmp_path: Path, case: Case) -> None:
    """Same inputs: same bytes and same log; one changed input: different outputs."""
    runs = {}
    for label in ("a", "b", "changed"):
        workdir = tmp_path / label
        workdir.mkdir()
        prepare(workdir, case)
        if label == "changed":  # one more byte in the last file of the last input type
            last = workdir / list(case.inputs.values())[-1][-1]
            last.write_bytes(last.read_bytes() + b"!")
        result = run(case, workdir)
        assert result.returncode == 0, result.stdout + result.stderr
        runs[label] = (result.stdout, [p.read_bytes() for p in _outputs(workdir, case)])
    assert runs["a"] == runs["b"]
    for before, after in zip(runs["a"][1], runs["changed"][1], strict=True):
        assert before != after
        assert json.loads(before)["input_digest"] != json.loads(after)["input_digest"]


def test_provenance_chain_l0_to_l3(tmp_path: Path) -> None:
    """Each level's products cite the exact bytes of the previous level's outputs."""
    l1b = BY_ID["s5p-l01b"]
    prepare(tmp_path, l1b)
    assert run(l1b, tmp_path).returncode == 0
    made = dict(l1b.outputs)
    (tmp_path / "inputs/met.nc").write_bytes(b"temperature and pressure")
    (tmp_path / "inputs/ctm.nc").write_bytes(b"chemistry forecast")
    made |= {"AUX_MET_TP": "inputs/met.nc", "AUX_CTMFCT": "inputs/ctm.nc"}

    def step(command: tuple[str, ...], dialect: str, inputs: tuple[str, ...], output: str) -> None:
        case = Case(command, command[-1], dialect, {t: (made[t],) for t in inputs}, (_out(output),))
        (tmp_path / "JobOrder.xml").write_text(job_order_xml(case))
        result = run(case, tmp_path)
        assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
        made[output] = case.outputs[0][1]

    step(
        ("s5p-l2", "CLOUD"), MMFI_1_8, ("L1B_RA_BD3", "L1B_RA_BD6", "L1B_IR_UVN", "AUX_MET_TP"), "L2__CLOUD_"
    )
    step(
        ("s5p-l2", "NO2"),
        GMES_1_1,
        ("L1B_RA_BD4", "L1B_IR_UVN", "L2__CLOUD_", "AUX_MET_TP", "AUX_CTMFCT"),
        "L2__NO2___",
    )
    step(("s5p-l3", "NO2"), MMFI_1_8, ("L2__NO2___",), "L3__NO2___")
    for producer, consumer in [
        ("L1B_RA_BD4", "L2__NO2___"),
        ("L2__CLOUD_", "L2__NO2___"),
        ("L2__NO2___", "L3__NO2___"),
    ]:
        product = tmp_path / made[producer]
        cited = json.loads((tmp_path / made[consumer]).read_text())["inputs"]
        assert {
            "file_type": producer,
            "file_name": product.name,
            "size": product.stat().st_size,
            "sha256": hashlib.sha256(product.read_bytes()).hexdigest(),
        } in cited


def test_warn_mode_writes_outputs_and_exits_3(tmp_path: Path) -> None:
    case = BY_ID["sky-calib"]
    prepare(tmp_path, case, params={"proseo_test_mode": "warn"})
    result = run(case, tmp_path)
    assert result.returncode == 3
    assert "[W] proseo_test_mode=warn" in result.stderr
    assert all(p.is_file() and p.with_name(p.name + ".meta.json").is_file() for p in _outputs(tmp_path, case))


@pytest.mark.parametrize("case_id", ["s5p-l01b", "sky-coadd"])
def test_fail_mode_exits_130_without_outputs(tmp_path: Path, case_id: str) -> None:
    case = BY_ID[case_id]
    prepare(tmp_path, case, params={"proseo_test_mode": "fail"})
    result = run(case, tmp_path)
    assert result.returncode == 130
    assert "[E] processing failed" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_hang_mode_runs_until_the_timeout_kills_it(tmp_path: Path) -> None:
    case = BY_ID["s5p-l2-NO2"]
    prepare(tmp_path, case, params={"proseo_test_mode": "hang"})
    with pytest.raises(subprocess.TimeoutExpired):  # subprocess.run kills the child on timeout
        run(case, tmp_path, timeout=3)
    assert not (tmp_path / "outputs").exists()


def test_partial_mode_writes_only_the_first_output(tmp_path: Path) -> None:
    case = BY_ID["s5p-l01b"]
    prepare(tmp_path, case, params={"proseo_test_mode": "partial"})
    result = run(case, tmp_path)
    assert result.returncode == 0
    first, *rest = _outputs(tmp_path, case)
    assert first.is_file() and not any(p.exists() for p in rest)
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == [first.name, first.name + ".meta.json"]


def test_test_seconds_keeps_the_run_busy_before_it_writes(tmp_path: Path) -> None:
    case = BY_ID["s5p-l2-NO2"]
    prepare(tmp_path, case, params={"proseo_test_seconds": "30"})
    with pytest.raises(subprocess.TimeoutExpired):  # still working when the timeout kills it
        run(case, tmp_path, timeout=3)
    assert not (tmp_path / "outputs").exists()
    prepare(tmp_path, case, params={"proseo_test_seconds": "0.2"})
    result = run(case, tmp_path)
    assert result.returncode == 0
    assert "proseo_test_seconds: working for 0.2 s" in result.stdout + result.stderr
    assert all(p.is_file() for p in _outputs(tmp_path, case))


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "3601"])
def test_bad_test_seconds_is_a_job_order_error(tmp_path: Path, value: str) -> None:
    case = BY_ID["sky-detect"]
    prepare(tmp_path, case, params={"proseo_test_seconds": value})
    result = run(case, tmp_path)
    assert result.returncode == 129
    assert f"proseo_test_seconds={value!r} is not a number of seconds from 0 to 3600" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_unknown_test_mode_is_a_job_order_error(tmp_path: Path) -> None:
    case = BY_ID["sky-detect"]
    prepare(tmp_path, case, params={"proseo_test_mode": "explode"})
    result = run(case, tmp_path)
    assert result.returncode == 129 and "explode" in result.stderr


@pytest.mark.parametrize("case_id", ["s5p-l2-O3", "sky-associate"])
def test_missing_input_exits_128_naming_it(tmp_path: Path, case_id: str) -> None:
    case = BY_ID[case_id]
    prepare(tmp_path, case)
    missing = next(iter(case.inputs.values()))[-1]
    (tmp_path / missing).unlink()
    result = run(case, tmp_path)
    assert result.returncode == 128
    assert f"input file not found: {missing}" in result.stdout
    assert missing in result.stderr
    assert not (tmp_path / "outputs").exists()


BROKEN: dict[str, Callable[[str], str]] = {
    "not-xml": lambda text: text[: len(text) // 2],
    "wrong-root": lambda text: "<Job_Order/>",
    "count-mismatch": lambda text: text.replace('count="1"', 'count="7"', 1),
    "bad-sensing-time": lambda text: text.replace(START, "2025-03-01T00:00:00"),
    "start-after-stop": lambda text: text.replace(STOP, "20250228_000000000000"),
    "output-without-name": lambda text: re.sub(r"<File_Name>outputs/[^<]*</File_Name>", "", text),
    "no-processor-name": lambda text: re.sub(r"<Processor_Name>[^<]*</Processor_Name>", "", text),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_malformed_job_order_exits_129(tmp_path: Path, kind: str) -> None:
    case = BY_ID["s5p-l2-NO2"]
    prepare(tmp_path, case)
    job_order = tmp_path / "JobOrder.xml"
    job_order.write_text(BROKEN[kind](job_order.read_text()))
    result = run(case, tmp_path)
    assert result.returncode == 129, result.stdout + result.stderr
    assert "[E] malformed Job Order" in result.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (("sky-calib",), ("missing.xml",)),
        (("sky-calib",), ("a.xml", "b.xml")),
        (("s5p-l2", "SO2"), ("JobOrder.xml",)),
    ],
)
def test_bad_invocation_exits_129(tmp_path: Path, command: tuple[str, ...], args: tuple[str, ...]) -> None:
    case = Case(command, "X", MMFI_1_8, {}, ())
    result = run(case, tmp_path, *args)
    assert result.returncode == 129
    assert "[E]" in result.stderr


def test_config_files_are_hashed_or_warned_about(tmp_path: Path) -> None:
    """Configuration files are in Ipf_Conf and, as the interface wants, among the Inputs too.

    Their paths point into the processor image: an absent one is a warning, not a missing input.
    """
    configs = ("cfg/l01b.xml", "cfg/absent.xml")
    l01b = BY_ID["s5p-l01b"]
    case = replace(l01b, inputs=l01b.inputs | {"CFG_L01B__": configs})
    digests = prepare(tmp_path, l01b)
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg/l01b.xml").write_text("<cfg/>")
    (tmp_path / "JobOrder.xml").write_text(job_order_xml(case, config_files=configs))
    result = run(case, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration file not found, using built-in defaults: cfg/absent.xml" in result.stderr
    body = json.loads((tmp_path / case.outputs[0][1]).read_text())
    assert {i["file_name"] for i in body["inputs"]} == set(digests)  # products only
    assert body["config_files"] == [
        {"file_name": "l01b.xml", "size": 6, "sha256": hashlib.sha256(b"<cfg/>").hexdigest()},
        {"file_name": "absent.xml", "size": None, "sha256": None},
    ]


def test_directory_inputs_are_read_file_by_file(tmp_path: Path) -> None:
    case = Case(
        ("sky-associate",), "ASSOCIATE", GMES_1_1, {"SRC_CAT": ("inputs/night.SAFE",)}, (_out("OBJ_CAT"),)
    )
    (tmp_path / "inputs").mkdir()
    (tmp_path / "JobOrder.xml").write_text(job_order_xml(case).replace(">Physical<", ">Directory<", 1))
    (tmp_path / "inputs/night.SAFE/measurement").mkdir(parents=True)
    (tmp_path / "inputs/night.SAFE/manifest.safe").write_text("m")
    (tmp_path / "inputs/night.SAFE/measurement/a.parquet").write_text("a")
    assert run(case, tmp_path).returncode == 0
    body = json.loads((tmp_path / case.outputs[0][1]).read_text())
    assert [i["file_name"] for i in body["inputs"]] == [
        "night.SAFE/manifest.safe",
        "night.SAFE/measurement/a.parquet",
    ]


@pytest.mark.parametrize("case_id", ["s5p-l2-NO2", "sky-coadd"])
def test_both_dialects_read_the_same(tmp_path: Path, case_id: str) -> None:
    case = BY_ID[case_id]
    readings = {}
    for dialect in (MMFI_1_8, GMES_1_1):
        path = tmp_path / f"{dialect}.xml"
        variant = replace(case, dialect=dialect)
        path.write_text(job_order_xml(variant, params={"p": "1"}, config_files=("cfg/a.xml",)))
        job = read_job_order(path)
        assert job.dialect == dialect
        readings[dialect] = (
            job.parameters,
            job.config_files,
            job.inputs,
            job.outputs,
            job.tasks,
            job.sensing_start,
        )
    assert readings[MMFI_1_8] == readings[GMES_1_1]
    parameters, configs, inputs, outputs, tasks, _ = readings[MMFI_1_8]
    assert parameters == case.params | {"p": "1"} and configs == ("cfg/a.xml",)
    assert [i.file_type for i in inputs] == list(case.inputs)  # listed once even with several tasks
    assert [(o.file_type, o.file_name) for o in outputs] == list(case.outputs)
    assert [name for name, _ in tasks] == list(case.tasks)


def test_a_job_order_mixing_dialects_is_rejected(tmp_path: Path) -> None:
    text = job_order_xml(BY_ID["sky-detect"]).replace(
        "<Sensing_Time>", '<Dynamic_Processing_Parameters count="0" />\n    <Sensing_Time>'
    )
    (tmp_path / "jo.xml").write_text(text)
    with pytest.raises(JobOrderError, match="mixes"):
        read_job_order(tmp_path / "jo.xml")


@pytest.mark.parametrize(
    ("name_type", "pattern"), [("Stem", "inputs/SRC_"), ("Regexp", r"inputs/SRC_\d+\.parquet")]
)
def test_stem_and_regexp_inputs_match_every_file(tmp_path: Path, name_type: str, pattern: str) -> None:
    case = Case(("sky-associate",), "ASSOCIATE", MMFI_1_8, {"SRC_CAT": (pattern,)}, (_out("OBJ_CAT"),))
    (tmp_path / "inputs").mkdir()
    for name in ("SRC_1.parquet", "SRC_2.parquet", "other.parquet"):
        (tmp_path / "inputs" / name).write_text(name)
    (tmp_path / "JobOrder.xml").write_text(job_order_xml(case).replace(">Physical<", f">{name_type}<", 1))
    assert run(case, tmp_path).returncode == 0
    body = json.loads((tmp_path / case.outputs[0][1]).read_text())
    assert [i["file_name"] for i in body["inputs"]] == ["SRC_1.parquet", "SRC_2.parquet"]


def test_log_levels_come_from_the_job_order(tmp_path: Path) -> None:
    case = BY_ID["sky-detect"]
    digests = prepare(tmp_path, case)
    job_order = tmp_path / "JobOrder.xml"
    job_order.write_text(job_order.read_text().replace(">INFO<", ">DEBUG<"))
    verbose = run(case, tmp_path)
    assert verbose.returncode == 0
    for name, sha in digests.items():  # DEBUG names every input with its checksum
        line = rf"DETECT 01\.04\.00: \[D\] read input \w+ {re.escape(name)}: \d+ bytes, sha256 {sha}\n"
        assert re.search(line, verbose.stdout)
    job_order.write_text(job_order.read_text().replace(">DEBUG<", ">ERROR<"))
    quiet = run(case, tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_an_unwritable_output_is_an_internal_error_not_a_warning(tmp_path: Path) -> None:
    """An uncaught traceback would exit 1, which the IPF convention reads as a mere warning."""
    case = BY_ID["sky-detect"]
    prepare(tmp_path, case)
    (tmp_path / case.outputs[0][1]).mkdir(parents=True)  # a directory where the product must go
    result = run(case, tmp_path)
    assert result.returncode == 131
    assert "[E] cannot write output" in result.stderr
