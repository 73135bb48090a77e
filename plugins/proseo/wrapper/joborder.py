"""The Job Order XML of the Generic IPF interface: write it, check it, read it back.

Two dialects exist (MMFI 1.8, the default, and GMES 1.1); they differ only in the
names of the configuration-file and dynamic-parameter lists. Rendering is pure and
deterministic (no timestamps, paths relative to the working directory), so the same
spec gives the same bytes anywhere. Reading needs only the standard library: sample
processors call :func:`read_job_order` and must start fast.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from proseo.errors import ProseoError
from proseo.wrapper.ipftime import IpfTimeError, format_ipf_time, parse_ipf_time
from proseo.wrapper.layout import input_path, output_path

if TYPE_CHECKING:  # the spec imports pydantic, which a processor reading its Job Order does not need
    from proseo.wrapper.spec import JobSpec

MMFI = "MMFI_1_8"
GMES = "GMES_1_1"
#: Per dialect: (config list, config element, parameter list, parameter element).
_NAMES = {
    MMFI: ("Config_Files", "Conf_File_Name", "Dynamic_Processing_Parameters", "Processing_Parameter"),
    GMES: (
        "List_of_Config_Files",
        "Config_File",
        "List_of_Dyn_Processing_Parameters",
        "Dyn_Processing_Parameter",
    ),
}
PHYSICAL = "Physical"
FILE_NAME_TYPES = frozenset({"Physical", "Logical", "Stem", "Regexp", "Directory", "Archive"})


class JobOrderError(ProseoError):
    """A Job Order is malformed; ``element`` is the path of the offending element."""

    def __init__(self, element: str, message: str) -> None:
        self.element = element
        super().__init__(f"Job Order {element}: {message}")


# --- writing --------------------------------------------------------------------------------


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrs)
    if text is not None:
        child.text = text
    return child


def _list(parent: ET.Element, tag: str, n: int) -> ET.Element:
    """A container of ``n`` children; List_of_* elements carry the count."""
    return _add(parent, tag, count=str(n)) if tag.startswith("List_of_") else _add(parent, tag)


def render_job_order(
    spec: JobSpec,
    *,
    input_paths: Sequence[str] | None = None,
    output_paths: Sequence[str] | None = None,
) -> bytes:
    """The Job Order of ``spec`` in its dialect, as UTF-8 bytes.

    ``input_paths`` and ``output_paths`` (parallel to ``spec.inputs`` and ``spec.outputs``)
    are the local names the processor is given; by default the working-directory layout
    (``inputs/<type>/<name>``, ``outputs/<name>``), relative to the processor's cwd.
    Configuration files are listed in Ipf_Conf *and*, with their file type, as Inputs.
    """
    ins = list(input_paths) if input_paths is not None else [input_path(f) for f in spec.inputs]
    outs = list(output_paths) if output_paths is not None else [output_path(o) for o in spec.outputs]
    if len(ins) != len(spec.inputs) or len(outs) != len(spec.outputs):
        raise ValueError("input_paths and output_paths must match spec.inputs and spec.outputs")
    conf_list, conf_item, par_list, par_item = _NAMES[str(spec.dialect)]

    root = ET.Element("Ipf_Job_Order")
    conf = _add(root, "Ipf_Conf")
    _add(conf, "Processor_Name", spec.processor)
    _add(conf, "Version", spec.version)
    _add(conf, "Stdout_Log_Level", spec.stdout_log_level)
    _add(conf, "Stderr_Log_Level", spec.stderr_log_level)
    _add(conf, "Test", "false")
    _add(conf, "Breakpoint_Enable", "false")
    _add(conf, "Processing_Station", spec.processing_station)
    configs = _list(conf, conf_list, len(spec.config_files))
    for cf in spec.config_files:
        _add(configs, conf_item, cf.path)
    sensing = _add(conf, "Sensing_Time")
    _add(sensing, "Start", format_ipf_time(spec.sensing_start))
    _add(sensing, "Stop", format_ipf_time(spec.sensing_stop))
    params = sorted(spec.dynamic_parameters.items())
    plist = _list(conf, par_list, len(params))
    for name, value in params:
        item = _add(plist, par_item)
        _add(item, "Name", name)
        _add(item, "Value", _text(value))

    # One Input per file type, in order of first appearance; each lists all its files.
    by_type: dict[str, list[tuple[str, datetime | None, datetime | None]]] = {}
    for f, path in zip(spec.inputs, ins, strict=True):
        by_type.setdefault(f.product_type, []).append((path, f.start, f.stop))
    for cf in spec.config_files:
        by_type.setdefault(cf.file_type, []).append((cf.path, None, None))

    procs = _list(root, "List_of_Ipf_Procs", len(spec.tasks))
    for task in spec.tasks:
        proc = _add(procs, "Ipf_Proc")
        _add(proc, "Task_Name", task.name)
        _add(proc, "Task_Version", task.version)
        inputs = _list(proc, "List_of_Inputs", len(by_type))
        for file_type, files in by_type.items():
            entry = _add(inputs, "Input")
            _add(entry, "File_Type", file_type)
            _add(entry, "File_Name_Type", PHYSICAL)
            names = _list(entry, "List_of_File_Names", len(files))
            for path, _, _ in files:
                _add(names, "File_Name", path)
            timed = [(p, a, b) for p, a, b in files if a is not None and b is not None]
            if timed:
                intervals = _list(entry, "List_of_Time_Intervals", len(timed))
                for path, start, stop in timed:
                    interval = _add(intervals, "Time_Interval")
                    _add(interval, "Start", format_ipf_time(start))
                    _add(interval, "Stop", format_ipf_time(stop))
                    _add(interval, "File_Name", path)
        outputs = _list(proc, "List_of_Outputs", len(spec.outputs))
        for o, path in zip(spec.outputs, outs, strict=True):
            entry = _add(outputs, "Output")
            _add(entry, "File_Type", o.product_type)
            _add(entry, "File_Name_Type", PHYSICAL)
            _add(entry, "File_Name", path)
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


# --- checking -------------------------------------------------------------------------------


def _parse(xml: bytes) -> ET.Element:
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise JobOrderError("Ipf_Job_Order", "document type declarations are not allowed")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise JobOrderError("Ipf_Job_Order", f"not well-formed XML ({exc})") from None
    if root.tag != "Ipf_Job_Order":
        raise JobOrderError(root.tag, "the root element must be Ipf_Job_Order")
    return root


def _walk(element: ET.Element, path: str) -> list[tuple[ET.Element, str]]:
    """Every element below ``element`` with its path; repeated siblings get a 1-based index."""
    found = [(element, path)]
    totals: dict[str, int] = {}
    for child in element:
        totals[child.tag] = totals.get(child.tag, 0) + 1
    seen: dict[str, int] = {}
    for child in element:
        seen[child.tag] = seen.get(child.tag, 0) + 1
        index = f"[{seen[child.tag]}]" if totals[child.tag] > 1 else ""
        found.extend(_walk(child, f"{path}/{child.tag}{index}"))
    return found


def _require(element: ET.Element, path: str, tag: str) -> ET.Element:
    child = element.find(tag)
    if child is None:
        raise JobOrderError(f"{path}/{tag}", "is missing")
    return child


def validate_job_order(xml: bytes) -> None:
    """Check a Job Order: structure, every List_of_* count against its children, every time.

    Raises JobOrderError naming the offending element's path.
    """
    root = _parse(xml)
    conf = _require(root, "Ipf_Job_Order", "Ipf_Conf")
    for tag in ("Processor_Name", "Version", "Sensing_Time/Start", "Sensing_Time/Stop"):
        _require(conf, "Ipf_Job_Order/Ipf_Conf", tag)
    procs = _require(root, "Ipf_Job_Order", "List_of_Ipf_Procs")
    for element, path in _walk(root, "Ipf_Job_Order"):
        if element.tag.startswith("List_of_"):
            count = element.get("count")
            if count is None or not count.strip().isdigit():
                raise JobOrderError(path, f"count attribute is missing or not a number: {count!r}")
            if int(count) != len(element):
                raise JobOrderError(path, f'count="{count}" but it has {len(element)} child elements')
        if element.tag == "File_Name_Type" and (element.text or "").strip() not in FILE_NAME_TYPES:
            raise JobOrderError(path, f"unknown file name type {element.text!r}")
        if element.tag in ("Start", "Stop"):
            try:
                parse_ipf_time(element.text or "")
            except IpfTimeError as exc:
                raise JobOrderError(path, f"malformed time: {exc}") from None
    for element, path in _walk(procs, "Ipf_Job_Order/List_of_Ipf_Procs"):
        if element.tag == "Ipf_Proc":
            for tag in ("Task_Name", "List_of_Inputs", "List_of_Outputs"):
                _require(element, path, tag)


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOrderOutput:
    file_type: str
    file_name: str
    file_name_type: str = PHYSICAL


@dataclass(frozen=True)
class JobOrder:
    """What a processor needs from its Job Order. File names are as written: relative to its cwd."""

    path: Path | None
    dialect: str
    processor: str
    version: str
    sensing_start: datetime
    sensing_stop: datetime
    parameters: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, list[str]] = field(default_factory=dict)  # file type -> file names
    outputs: list[JobOrderOutput] = field(default_factory=list)
    config_files: list[str] = field(default_factory=list)
    tasks: list[tuple[str, str]] = field(default_factory=list)  # (name, version)

    def resolve(self, name: str) -> Path:
        """A file name of the Job Order as a path: relative names are relative to its folder."""
        path = Path(name)
        if path.is_absolute() or self.path is None:
            return path
        return self.path.parent / path


def _t(element: ET.Element, tag: str) -> str:
    return (element.findtext(tag) or "").strip()


def parse_job_order(xml: bytes, path: Path | None = None) -> JobOrder:
    """Validate and parse a Job Order of either dialect (the dialect is recognised by its lists)."""
    validate_job_order(xml)
    root = _parse(xml)
    conf = root.find("Ipf_Conf")
    assert conf is not None  # validate_job_order checked it
    dialect = GMES if conf.find("List_of_Config_Files") is not None else MMFI
    if conf.find("List_of_Dyn_Processing_Parameters") is not None:
        dialect = GMES
    conf_list, conf_item, par_list, par_item = _NAMES[dialect]
    parameters = {_t(p, "Name"): _t(p, "Value") for p in conf.iterfind(f"{par_list}/{par_item}")}
    inputs: dict[str, list[str]] = {}
    outputs: list[JobOrderOutput] = []
    tasks: list[tuple[str, str]] = []
    for proc in root.iterfind("List_of_Ipf_Procs/Ipf_Proc"):
        tasks.append((_t(proc, "Task_Name"), _t(proc, "Task_Version")))
        for entry in proc.iterfind("List_of_Inputs/Input"):
            names = inputs.setdefault(_t(entry, "File_Type"), [])
            for name in entry.iterfind("List_of_File_Names/File_Name"):
                if (name.text or "").strip() not in names:
                    names.append((name.text or "").strip())
        for entry in proc.iterfind("List_of_Outputs/Output"):
            kind = _t(entry, "File_Name_Type")
            output = JobOrderOutput(_t(entry, "File_Type"), _t(entry, "File_Name"), kind)
            if output not in outputs:
                outputs.append(output)
    return JobOrder(
        path=path,
        dialect=dialect,
        processor=_t(conf, "Processor_Name"),
        version=_t(conf, "Version"),
        sensing_start=parse_ipf_time(_t(conf, "Sensing_Time/Start")),
        sensing_stop=parse_ipf_time(_t(conf, "Sensing_Time/Stop")),
        parameters=parameters,
        inputs=inputs,
        outputs=outputs,
        config_files=[(c.text or "").strip() for c in conf.iterfind(f"{conf_list}/{conf_item}")],
        tasks=tasks,
    )


def read_job_order(path: str | Path) -> JobOrder:
    """Read, validate and parse the Job Order file at ``path`` (what a processor does first)."""
    path = Path(path)
    return parse_job_order(path.read_bytes(), path.absolute())
