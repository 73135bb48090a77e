"""geo_l1.py: GEO L1 processor, radiometric calibration of one 15-minute full-disk scan.

Usage: python3 geo_l1.py JOB_ORDER.xml   (run in the job step's working directory)
Inputs: exactly one RAW_FDS, one AUX_CALIB, the CFG_L1 configuration file.
"""

import hashlib
from pathlib import Path

from geo_ipf import BAD_INPUT, FULL_DISK, Failure, JobOrder, log, read_input, run, write_output

NAME = "geo_l1 2.0.1"


def process(order: JobOrder) -> None:
    raws, cals = order.inputs.get("RAW_FDS", []), order.inputs.get("AUX_CALIB", [])
    if len(raws) != 1 or len(cals) != 1:
        raise Failure(BAD_INPUT, f"need one RAW_FDS and one AUX_CALIB, got {len(raws)} and {len(cals)}")
    if not order.config_files or not Path(order.config_files[0]).is_file():
        raise Failure(BAD_INPUT, f"configuration file missing: {order.config_files}")
    raw, cal = read_input(raws[0]), read_input(cals[0])
    gain = 1.0 + len(cal) / 1000.0
    counts = sum(raw) / max(len(raw), 1)
    radiance = round((counts - int(order.params.get("dark_offset", "0"))) * gain, 3)
    for product_type, path in order.outputs:
        body = {
            "product_type": product_type,
            "scan": [order.start, order.stop],
            "raw_sha256": hashlib.sha256(raw).hexdigest(),
            "calibration": Path(cals[0]).name,
            "model": order.params.get("calibration_model"),
            "mean_radiance": radiance,
        }
        write_output(path, body, {"mean_radiance": radiance, "footprint": FULL_DISK})
        log(NAME, "I", f"wrote {path}")


if __name__ == "__main__":
    run(NAME, process)
