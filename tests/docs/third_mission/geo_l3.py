"""geo_l3.py: GEO L3 processor, daily cloud-fraction composite of the day's hourly products.

Usage: python3 geo_l3.py JOB_ORDER.xml
Inputs: the repeat-cycle day's L2_CLOUD products (24 of them).
"""

import json

from geo_ipf import BAD_INPUT, FULL_DISK, Failure, JobOrder, log, read_input, run, write_output

NAME = "geo_l3 1.0.0"


def process(order: JobOrder) -> None:
    hours = order.inputs.get("L2_CLOUD", [])
    if not hours:
        raise Failure(BAD_INPUT, "no L2_CLOUD input")
    fractions = [json.loads(read_input(name))["cloud_fraction"] for name in sorted(hours)]
    daily = round(sum(fractions) / len(fractions), 4)
    for product_type, path in order.outputs:
        body = {
            "product_type": product_type,
            "day": [order.start, order.stop],
            "hourly_cloud_fraction": fractions,
            "daily_cloud_fraction": daily,
        }
        meta = {"daily_cloud_fraction": daily, "hour_count": len(hours), "footprint": FULL_DISK}
        write_output(path, body, meta)
        log(NAME, "I", f"wrote {path} from {len(hours)} hours")


if __name__ == "__main__":
    run(NAME, process)
