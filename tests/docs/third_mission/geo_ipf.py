"""geo_ipf.py: the Job Order reading and output writing shared by the GEO processors.

Standard library only; imported by geo_l1.py, geo_l2.py and geo_l3.py from their own folder.
Follows docs/processor-contract.md: one argument (the Job Order), both dialects, every
planned output plus a ``.meta.json`` with a footprint, IPF exit codes.
"""

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OK, MISSING_INPUT, BAD_JOB_ORDER, BAD_INPUT, INTERNAL_ERROR = 0, 128, 129, 130, 131

# The full disk seen from 0 deg E, as a counter-clockwise WGS 84 ring [lon, lat].
FULL_DISK = {
    "type": "Polygon",
    "coordinates": [[[-81.0, -81.0], [81.0, -81.0], [81.0, 81.0], [-81.0, 81.0], [-81.0, -81.0]]],
}


class Failure(Exception):
    """A failure with its IPF exit code (128 or more)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class JobOrder:
    """What a GEO processor needs from the Job Order."""

    processor: str
    version: str
    start: str
    stop: str
    params: dict[str, str]
    config_files: list[str]
    inputs: dict[str, list[str]] = field(default_factory=dict)
    outputs: list[tuple[str, Path]] = field(default_factory=list)


def log(name: str, tag: str, message: str) -> None:
    """IPF-style line: warnings and errors on stderr, the rest on stdout."""
    stream = sys.stderr if tag in ("W", "E") else sys.stdout
    print(f"{name}: [{tag}] {message}", file=stream, flush=True)


def read_job_order(path: str) -> JobOrder:
    """Parse MMFI 1.8 or GMES 1.1; configuration files are kept apart from product inputs."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise Failure(BAD_JOB_ORDER, f"cannot read the Job Order: {exc}") from exc
    conf = root.find("Ipf_Conf")
    task = root.find("List_of_Ipf_Procs/Ipf_Proc")
    if conf is None or task is None:
        raise Failure(BAD_JOB_ORDER, "the Job Order has no Ipf_Conf or Ipf_Proc")
    params = {
        p.findtext("Name"): p.findtext("Value")
        for p in conf.iter()
        if p.tag in ("Processing_Parameter", "Dyn_Processing_Parameter")
    }
    config_files = [c.text for c in conf.iter() if c.tag in ("Conf_File_Name", "Config_File")]
    order = JobOrder(
        processor=conf.findtext("Processor_Name"),
        version=conf.findtext("Version"),
        start=conf.findtext("Sensing_Time/Start"),
        stop=conf.findtext("Sensing_Time/Stop"),
        params=params,
        config_files=config_files,
    )
    for entry in task.iterfind("List_of_Inputs/Input"):
        names = [n.text for n in entry.iterfind("List_of_File_Names/File_Name")]
        files = [n for n in names if n not in config_files]
        if files:
            order.inputs.setdefault(entry.findtext("File_Type"), []).extend(files)
    for output in task.iterfind("List_of_Outputs/Output"):
        order.outputs.append((output.findtext("File_Type"), Path(output.findtext("File_Name"))))
    return order


def read_input(name: str) -> bytes:
    """Read one staged input completely (never write to it: it may be a hard link)."""
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise Failure(MISSING_INPUT, f"input {name}: {exc.strerror}") from exc


def write_output(path: Path, body: dict, meta: dict) -> None:
    """Write a planned output (deterministic bytes) and its .meta.json next to it."""
    path.write_text(json.dumps(body, sort_keys=True) + "\n")
    path.with_name(path.name + ".meta.json").write_text(json.dumps(meta, sort_keys=True) + "\n")


def run(name: str, process: Callable[[JobOrder], None]) -> None:
    """Entry point: parse the Job Order, call ``process``, exit with an IPF code."""
    try:
        if len(sys.argv) != 2:
            raise Failure(BAD_JOB_ORDER, f"usage: {name} JOB_ORDER.xml")
        order = read_job_order(sys.argv[1])
        log(name, "I", f"{order.processor} {order.version} {order.start}..{order.stop}")
        process(order)
        code = int(order.params.get("exit_code", OK))
    except Failure as exc:
        log(name, "E", str(exc))
        code = exc.code
    except Exception as exc:  # an uncaught traceback would exit 1, a mere warning
        log(name, "E", f"internal error: {exc!r}")
        code = INTERNAL_ERROR
    sys.exit(code)
