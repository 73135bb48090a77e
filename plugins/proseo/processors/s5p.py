"""Sample Sentinel-5P processors: L0 -> L1B per orbit, L1B -> L2 (four species), L2 -> daily L3.

The input types each one expects mirror the selection rules of mission_configs/s5p.yaml
(mandatory inputs only); a missing type is logged as a warning, as a real processor
would note a degraded run, while the outputs are always exactly those the Job Order lists.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from proseo.processors.ipf import IpfLog, JobOrder, OutputSpec
from proseo.processors.runner import EXIT_BAD_JOB_ORDER, InputFact, Processor, run
from proseo.processors.swath import swath

L1B_ENCLOSING = "L1B_______"


def _count(inputs: Sequence[InputFact], file_type: str) -> int:
    return sum(1 for fact in inputs if fact.file_type == file_type)


def _l1b_details(job: JobOrder, output: OutputSpec, inputs: Sequence[InputFact]) -> dict[str, object]:
    """The enclosing L1B names its components; each component names its band."""
    l0_files = sum(1 for fact in inputs if fact.file_type.startswith("L0_"))
    if output.file_type == L1B_ENCLOSING:
        components = sorted(o.file_type for o in job.outputs if o.file_type != L1B_ENCLOSING)
        return {"level": "L1B", "components": components, "l0_files": l0_files}
    return {"level": "L1B", "band": output.file_type.removeprefix("L1B_"), "l0_files": l0_files}


def _orbit_swath(job: JobOrder, output: OutputSpec) -> dict[str, object] | None:
    """An orbit product looks where its orbit's sunlit half does (as its L0 say)."""
    try:
        start, stop = (datetime.strptime(t, "%Y%m%d_%H%M%S%f") for t in (job.sensing_start, job.sensing_stop))
    except ValueError:  # open bounds or another format: no place to give
        return None
    return swath(start.replace(tzinfo=UTC), stop.replace(tzinfo=UTC))


def _daily_globe(job: JobOrder, output: OutputSpec) -> dict[str, object] | None:
    """A daily L3 grid covers the globe."""
    corners = [[-180.0, -90.0], [180.0, -90.0], [180.0, 90.0], [-180.0, 90.0], [-180.0, -90.0]]
    return {"type": "Polygon", "coordinates": [corners]}


def _l2(species: str, expected: tuple[str, ...]) -> Processor:
    def details(job: JobOrder, output: OutputSpec, inputs: Sequence[InputFact]) -> dict[str, object]:
        l1b_files = sum(1 for fact in inputs if fact.file_type.startswith("L1B_"))
        return {"level": "L2", "species": species, "l1b_files": l1b_files}

    return Processor(f"s5p-l2 {species}", expected, details, _orbit_swath)


def _l3_no2_details(job: JobOrder, output: OutputSpec, inputs: Sequence[InputFact]) -> dict[str, object]:
    return {"level": "L3", "species": "NO2", "orbits_gridded": _count(inputs, "L2__NO2___")}


L01B = Processor(
    "s5p-l01b", ("L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "AUX_L1_CKD"), _l1b_details, _orbit_swath
)
L2: Mapping[str, Processor] = {
    "CLOUD": _l2("CLOUD", ("L1B_RA_BD3", "L1B_RA_BD6", "L1B_IR_UVN", "AUX_MET_TP")),
    "NO2": _l2("NO2", ("L1B_RA_BD4", "L1B_IR_UVN", "L2__CLOUD_", "AUX_MET_TP", "AUX_CTMFCT")),
    "O3": _l2("O3", ("L1B_RA_BD3", "L1B_IR_UVN", "AUX_MET_TP")),
    "CH4": _l2("CH4", ("L1B_RA_BD6", "L2__CLOUD_", "AUX_MET_TP")),
}
L3: Mapping[str, Processor] = {"NO2": Processor("s5p-l3 NO2", ("L2__NO2___",), _l3_no2_details, _daily_globe)}


def _args(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)


def _run_variant(command: str, variants: Mapping[str, Processor], args: list[str]) -> int:
    """``<command> TYPE JOB_ORDER.xml``: the product type is part of the command, as configured."""
    if not args or args[0] not in variants:
        IpfLog(command).error(f"usage: {command} {'|'.join(variants)} JOB_ORDER.xml (got {args[:1]})")
        return EXIT_BAD_JOB_ORDER
    return run(variants[args[0]], args[1:])


def l01b_main(argv: Sequence[str] | None = None) -> int:
    """``s5p-l01b JOB_ORDER.xml``: all L1B bands of one orbit in one run."""
    return run(L01B, _args(argv))


def l2_main(argv: Sequence[str] | None = None) -> int:
    """``s5p-l2 CLOUD|NO2|O3|CH4 JOB_ORDER.xml``."""
    return _run_variant("s5p-l2", L2, _args(argv))


def l3_main(argv: Sequence[str] | None = None) -> int:
    """``s5p-l3 NO2 JOB_ORDER.xml``: the daily grid of every L2 orbit of the day."""
    return _run_variant("s5p-l3", L3, _args(argv))
