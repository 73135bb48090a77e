"""geo_l2.py: GEO L2 processor, hourly cloud mask from the hour's four calibrated scans.

Usage: python3 geo_l2.py JOB_ORDER.xml   (GMES 1.1 Job Order)
Inputs: exactly four L1_FDS; AUX_CLIM if there is one (the rule is OPTIONAL).
"""

import json

from geo_ipf import BAD_INPUT, FULL_DISK, Failure, JobOrder, log, read_input, run, write_output

NAME = "geo_l2 1.4.0"


def process(order: JobOrder) -> None:
    scans = order.inputs.get("L1_FDS", [])
    if len(scans) != 4:
        raise Failure(BAD_INPUT, f"an hour needs four L1_FDS scans, got {len(scans)}")
    radiances = [json.loads(read_input(name))["mean_radiance"] for name in sorted(scans)]
    threshold = float(order.params.get("threshold", "0.5"))
    mean = sum(radiances) / len(radiances)
    cloud_fraction = round(min(1.0, max(0.0, threshold + (mean % 100) / 400)), 4)
    climatology = "AUX_CLIM" in order.inputs
    log(NAME, "I", f"{len(scans)} scans, climatology {'used' if climatology else 'absent'}")
    for product_type, path in order.outputs:
        body = {
            "product_type": product_type,
            "hour": [order.start, order.stop],
            "radiances": radiances,
            "cloud_fraction": cloud_fraction,
        }
        meta = {
            "cloud_fraction": cloud_fraction,
            "scan_count": len(scans),
            "climatology": climatology,
            "footprint": FULL_DISK,
        }
        write_output(path, body, meta)
        log(NAME, "I", f"wrote {path}")


if __name__ == "__main__":
    run(NAME, process)
