"""A self-contained reader of Generic IPF Job Orders (MMFI 1.8 and GMES 1.1) and an IPF log.

Processors are independent programs whose only interface is the Job Order, so this
module uses nothing but the standard library and knows nothing of the wrapper that
writes the file. It is strict where a wrong reading would silently process the wrong
data (element counts, sensing-time format, outputs without a name) and lenient where
nothing is at stake (unknown log levels fall back to the defaults).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

MMFI_1_8 = "MMFI_1_8"
GMES_1_1 = "GMES_1_1"
OPEN_START = "00000000_000000000000"
OPEN_STOP = "99999999_999999999999"
_TIME = re.compile(r"^\d{8}_\d{12}$")
_TIME_FORMAT = "%Y%m%d_%H%M%S%f"
_GMES_CONF = ("List_of_Config_Files", "List_of_Dyn_Processing_Parameters")
_MMFI_CONF = ("Config_Files", "Dynamic_Processing_Parameters")


class JobOrderError(Exception):
    """The Job Order cannot be read or does not follow the interface (IPF exit 129)."""


@dataclass(frozen=True)
class InputSpec:
    """One Input element: every file of one input product type."""

    file_type: str
    file_name_type: str
    file_names: tuple[str, ...]


@dataclass(frozen=True)
class OutputSpec:
    """One Output element: a planned output product."""

    file_type: str
    file_name_type: str
    file_name: str


@dataclass(frozen=True)
class JobOrder:
    """What a processor needs from its Job Order, whatever the dialect."""

    path: Path
    dialect: str
    processor_name: str
    version: str
    stdout_log_level: str
    stderr_log_level: str
    sensing_start: str
    sensing_stop: str
    config_files: tuple[str, ...]
    parameters: dict[str, str]
    tasks: tuple[tuple[str, str], ...]
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]


def parse_ipf_time(value: str) -> datetime | None:
    """``yyyyMMdd_HHmmssffffff`` as a UTC datetime; None for the open bounds."""
    if value in (OPEN_START, OPEN_STOP):
        return None
    if not _TIME.match(value):
        raise JobOrderError(f"sensing time {value!r} is not in the format yyyyMMdd_HHmmssffffff")
    try:
        return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise JobOrderError(f"sensing time {value!r} is not a valid date: {exc}") from None


def _text(parent: ET.Element, tag: str, where: str, default: str | None = None) -> str:
    """The stripped text of a child; a missing or empty one is an error unless defaulted."""
    value = (parent.findtext(tag) or "").strip()
    if not value:
        if default is None:
            raise JobOrderError(f"{where}/{tag} is missing or empty")
        return default
    return value


def _check_counts(root: ET.Element) -> None:
    """Every ``count`` attribute must equal the number of children (the interface says so)."""
    for element in root.iter():
        count = element.get("count")
        if count is None:
            continue
        if not count.strip().isdigit() or int(count) != len(element):
            raise JobOrderError(f"{element.tag} has count={count!r} but {len(element)} children")


def _dialect(conf: ET.Element) -> str:
    gmes = any(conf.find(tag) is not None for tag in _GMES_CONF)
    mmfi = any(conf.find(tag) is not None for tag in _MMFI_CONF)
    if gmes and mmfi:
        raise JobOrderError("Ipf_Conf mixes MMFI 1.8 and GMES 1.1 elements")
    return GMES_1_1 if gmes else MMFI_1_8


def _parameters(conf: ET.Element, dialect: str) -> dict[str, str]:
    path = (
        "List_of_Dyn_Processing_Parameters/Dyn_Processing_Parameter"
        if dialect == GMES_1_1
        else "Dynamic_Processing_Parameters/Processing_Parameter"
    )
    parameters: dict[str, str] = {}
    for element in conf.findall(path):
        name = _text(element, "Name", path)
        if name in parameters:
            raise JobOrderError(f"dynamic processing parameter {name!r} is given twice")
        parameters[name] = (element.findtext("Value") or "").strip()
    return parameters


def _config_files(conf: ET.Element, dialect: str) -> tuple[str, ...]:
    path = "List_of_Config_Files/Config_File" if dialect == GMES_1_1 else "Config_Files/Conf_File_Name"
    return tuple((e.text or "").strip() for e in conf.findall(path) if (e.text or "").strip())


def _input(element: ET.Element) -> InputSpec:
    file_type = _text(element, "File_Type", "Input")
    names = tuple((e.text or "").strip() for e in element.findall("List_of_File_Names/File_Name"))
    if any(not name for name in names):
        raise JobOrderError(f"Input {file_type} has an empty File_Name")
    return InputSpec(file_type, _text(element, "File_Name_Type", "Input", default="Physical"), names)


def _output(element: ET.Element) -> OutputSpec:
    file_type = _text(element, "File_Type", "Output")
    return OutputSpec(
        file_type,
        _text(element, "File_Name_Type", "Output", default="Physical"),
        _text(element, "File_Name", f"Output {file_type}"),
    )


def read_job_order(path: Path) -> JobOrder:
    """Read and check a Job Order file of either dialect."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise JobOrderError(f"cannot read Job Order {path}: {exc}") from None
    if root.tag != "Ipf_Job_Order":
        raise JobOrderError(f"root element is {root.tag!r}, expected 'Ipf_Job_Order'")
    _check_counts(root)
    conf = root.find("Ipf_Conf")
    procs = root.findall("List_of_Ipf_Procs/Ipf_Proc")
    if conf is None or not procs:
        raise JobOrderError("the Job Order needs Ipf_Conf and at least one List_of_Ipf_Procs/Ipf_Proc")
    dialect = _dialect(conf)
    start = _text(conf, "Sensing_Time/Start", "Ipf_Conf", default=OPEN_START)
    stop = _text(conf, "Sensing_Time/Stop", "Ipf_Conf", default=OPEN_STOP)
    first, last = parse_ipf_time(start), parse_ipf_time(stop)
    if first is not None and last is not None and first > last:
        raise JobOrderError(f"sensing start {start} is after sensing stop {stop}")
    inputs: dict[tuple[str, str, tuple[str, ...]], InputSpec] = {}
    outputs: dict[str, OutputSpec] = {}
    for proc in procs:  # a multi-task processor may list the same input for several tasks
        for spec in map(_input, proc.findall("List_of_Inputs/Input")):
            inputs.setdefault((spec.file_type, spec.file_name_type, spec.file_names), spec)
        for out in map(_output, proc.findall("List_of_Outputs/Output")):
            if outputs.setdefault(out.file_name, out) != out:
                raise JobOrderError(f"output {out.file_name} is listed with two different types")
    return JobOrder(
        path=path,
        dialect=dialect,
        processor_name=_text(conf, "Processor_Name", "Ipf_Conf"),
        version=_text(conf, "Version", "Ipf_Conf"),
        stdout_log_level=_text(conf, "Stdout_Log_Level", "Ipf_Conf", default="INFO"),
        stderr_log_level=_text(conf, "Stderr_Log_Level", "Ipf_Conf", default="WARNING"),
        sensing_start=start,
        sensing_stop=stop,
        config_files=_config_files(conf, dialect),
        parameters=_parameters(conf, dialect),
        tasks=tuple(
            (_text(p, "Task_Name", "Ipf_Proc"), _text(p, "Task_Version", "Ipf_Proc", "")) for p in procs
        ),
        inputs=tuple(inputs.values()),
        outputs=tuple(outputs.values()),
    )


_LEVELS = {"DEBUG": 10, "INFO": 20, "PROGRESS": 25, "WARNING": 30, "ERROR": 40, "OFF": 100, "NONE": 100}
_TAGS = {"DEBUG": "D", "INFO": "I", "PROGRESS": "P", "WARNING": "W", "ERROR": "E"}


class IpfLog:
    """IPF-style log lines (``name version: [I] message``) on stdout and stderr.

    Lines at or above the Job Order's Stdout_Log_Level go to stdout, those at or above
    Stderr_Log_Level to stderr. They carry no wall-clock time, host or pid unless
    ``PROSEO_IPF_LOG_TIMESTAMPS=1``, so a rerun logs the same bytes.
    """

    def __init__(
        self,
        name: str,
        version: str = "",
        stdout_level: str = "INFO",
        stderr_level: str = "WARNING",
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.name, self.version = name, version
        self._out, self._err = stdout or sys.stdout, stderr or sys.stderr
        self._out_level, self._err_level = _LEVELS[stdout_level], _LEVELS[stderr_level]
        self.timestamps = os.environ.get("PROSEO_IPF_LOG_TIMESTAMPS", "") in ("1", "true", "yes")

    def configure(self, job: JobOrder) -> None:
        """Adopt the Job Order's processor identity and log levels (unknown levels keep defaults)."""
        self.name, self.version = job.processor_name, job.version
        self._out_level = _LEVELS.get(job.stdout_log_level.upper(), self._out_level)
        self._err_level = _LEVELS.get(job.stderr_log_level.upper(), self._err_level)

    def _emit(self, level: str, message: str) -> None:
        prefix = f"{self.name} {self.version}".strip()
        if self.timestamps:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
            prefix = f"{now} {socket.gethostname()} {prefix} [{os.getpid():010d}]"
        line = f"{prefix}: [{_TAGS[level]}] {message}\n"
        for stream, threshold in ((self._out, self._out_level), (self._err, self._err_level)):
            if _LEVELS[level] >= threshold:
                stream.write(line)
                stream.flush()

    def debug(self, message: str) -> None:
        self._emit("DEBUG", message)

    def info(self, message: str) -> None:
        self._emit("INFO", message)

    def progress(self, message: str) -> None:
        self._emit("PROGRESS", message)

    def warning(self, message: str) -> None:
        self._emit("WARNING", message)

    def error(self, message: str) -> None:
        self._emit("ERROR", message)
