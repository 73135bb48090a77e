"""Sample astronomy processors: calibrate a night's exposures, stack them, detect, associate.

Expected input types follow mission_configs/sky.yaml (mandatory inputs only). The band
of a frame or stack is the last letter of its product type (CALEXP_G, STACK_R).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from proseo.processors.ipf import JobOrder, OutputSpec
from proseo.processors.runner import InputFact, Processor, run


def _band(file_type: str) -> str:
    return file_type.rsplit("_", 1)[-1].lower()


def _names(inputs: Sequence[InputFact], prefix: str) -> list[str]:
    return sorted(f.file_name for f in inputs if f.file_type.startswith(prefix))


def _calib_details(job: JobOrder, output: OutputSpec, inputs: Sequence[InputFact]) -> dict[str, object]:
    """A calibrated frame set records which master bias and flat it was corrected with."""
    return {
        "level": "L1",
        "filter": _band(output.file_type),
        "exposures": len(_names(inputs, "RAW_EXP")),
        "calibrations": _names(inputs, "CAL_"),
    }


def _coadd_details(job: JobOrder, output: OutputSpec, inputs: Sequence[InputFact]) -> dict[str, object]:
    return {"level": "L2", "filter": _band(output.file_type), "frames": len(_names(inputs, "CALEXP_"))}


def _detect_details(job: JobOrder, output: OutputSpec, inputs: Sequence[InputFact]) -> dict[str, object]:
    bands = sorted({_band(f.file_type) for f in inputs if f.file_type.startswith("STACK_")})
    return {"level": "L3", "bands": bands, "reference_catalogues": _names(inputs, "REF_CAT")}


def _associate_details(job: JobOrder, output: OutputSpec, inputs: Sequence[InputFact]) -> dict[str, object]:
    return {"level": "L4", "nightly_catalogues": len(_names(inputs, "SRC_CAT"))}


CALIB = Processor("sky-calib", ("RAW_EXP", "CAL_BIAS", "CAL_FLAT"), _calib_details)
COADD = Processor("sky-coadd", (), _coadd_details)  # CALEXP_G or CALEXP_R, by band
DETECT = Processor("sky-detect", ("STACK_G", "REF_CAT"), _detect_details)
ASSOCIATE = Processor("sky-associate", ("SRC_CAT",), _associate_details)


def _args(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)


def calib_main(argv: Sequence[str] | None = None) -> int:
    """``sky-calib JOB_ORDER.xml``: bias-subtract and flat-field one night's exposures."""
    return run(CALIB, _args(argv))


def coadd_main(argv: Sequence[str] | None = None) -> int:
    """``sky-coadd JOB_ORDER.xml``: co-add one night's calibrated frames of one band."""
    return run(COADD, _args(argv))


def detect_main(argv: Sequence[str] | None = None) -> int:
    """``sky-detect JOB_ORDER.xml``: a nightly source catalogue from the stacks."""
    return run(DETECT, _args(argv))


def associate_main(argv: Sequence[str] | None = None) -> int:
    """``sky-associate JOB_ORDER.xml``: a monthly object catalogue from the nightly ones."""
    return run(ASSOCIATE, _args(argv))
