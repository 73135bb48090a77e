"""Every sample processor, run through the wrapper on file:// and on moto's S3.

Each job stages real inputs from the store, runs the installed sample processor
(`s5p-l01b`, `s5p-l2 CLOUD|NO2|O3|CH4`, `s5p-l3 NO2`, `sky-calib`, `sky-coadd`,
`sky-detect`, `sky-associate`) on the Job Order the wrapper wrote, and uploads its
outputs; the outputs must name the SHA-256 of every input (provenance). The failure
modes of the sample processors (warning exit 3, failure exit 130, hang) behave as
the contract says through the wrapper too.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from proseo.wrapper.job import run_job
from proseo.wrapper.spec import JobSpec, Status

BIN = Path(sys.executable).parent
START, STOP = "2025-03-01T00:00:00Z", "2025-03-01T01:41:00Z"

#: (command, input product types, output product types)
PROCESSORS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "s5p-l01b": (
        ["s5p-l01b"],
        ["L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_", "AUX_L1_CKD"],
        ["L1B_______", "L1B_RA_BD3", "L1B_RA_BD4", "L1B_RA_BD6", "L1B_IR_UVN"],
    ),
    "s5p-l2-cloud": (
        ["s5p-l2", "CLOUD"],
        ["L1B_RA_BD3", "L1B_RA_BD6", "L1B_IR_UVN", "AUX_MET_TP"],
        ["L2__CLOUD_"],
    ),
    "s5p-l2-no2": (
        ["s5p-l2", "NO2"],
        ["L1B_RA_BD4", "L1B_IR_UVN", "L2__CLOUD_", "AUX_MET_TP", "AUX_CTMFCT"],
        ["L2__NO2___"],
    ),
    "s5p-l2-o3": (["s5p-l2", "O3"], ["L1B_RA_BD3", "L1B_IR_UVN", "AUX_MET_TP"], ["L2__O3____"]),
    "s5p-l2-ch4": (["s5p-l2", "CH4"], ["L1B_RA_BD6", "L2__CLOUD_", "AUX_MET_TP"], ["L2__CH4___"]),
    "s5p-l3": (["s5p-l3", "NO2"], ["L2__NO2___", "L2__NO2___", "L2__NO2___"], ["L3__NO2___"]),
    "sky-calib": (["sky-calib"], ["RAW_EXP", "RAW_EXP", "CAL_BIAS", "CAL_FLAT"], ["CALEXP_G"]),
    "sky-coadd": (["sky-coadd"], ["CALEXP_G"], ["STACK_G"]),
    "sky-detect": (["sky-detect"], ["STACK_G", "STACK_R", "REF_CAT"], ["SRC_CAT"]),
    "sky-associate": (["sky-associate"], ["SRC_CAT", "SRC_CAT", "SRC_CAT"], ["OBJ_CAT"]),
}


def _spec(store: Any, name: str, *, mode: str | None = None, max_run_time_s: float = 60) -> JobSpec:
    command, in_types, out_types = PROCESSORS[name]
    inputs = []
    for i, product_type in enumerate(in_types):
        file_name = f"{product_type}_{i:02d}.dat"
        content = f"{name} input {i} of type {product_type}\n".encode() * (50 + i)
        key = f"{product_type}/2025/03/01/{file_name}"
        store.storage.put_bytes(content, key)
        inputs.append(
            {
                "product_id": i + 1,
                "product_type": product_type,
                "file_name": file_name,
                "storage": "archive",
                "key": key,
                "size": len(content),
                "md5": hashlib.md5(content).hexdigest(),
                "sha256": hashlib.sha256(content).hexdigest(),
                "start": START,
                "stop": STOP,
            }
        )
    outputs = [
        {
            "product_type": t,
            "file_name": f"{t}_OUT.nc",
            "key": f"{t}/2025/03/01/{t}_OUT.nc",
            "start": START,
            "stop": STOP,
        }
        for t in out_types
    ]
    return JobSpec.model_validate(
        {
            "job_step_id": 7,
            "mission": "S5P" if name.startswith("s5p") else "SKY",
            "processor": name.upper(),
            "version": "01.00.00",
            "configuration": "2025.01",
            "file_class": "TEST",
            "tasks": [{"name": name.upper(), "version": "01.00.00"}],
            "command": [str(BIN / command[0]), *command[1:]],
            "sensing_start": START,
            "sensing_stop": STOP,
            "dynamic_parameters": {"proseo_test_mode": mode} if mode else {},
            "inputs": inputs,
            "outputs": outputs,
            "storages": {"archive": {"url": store.url, "options": store.options}},
            "output_storage": "archive",
            "log_key": f"logs/{name}/7.log",
            "job_order_key": f"joborders/{name}/7.xml",
            "max_run_time_s": max_run_time_s,
            "transfer_workers": 4,
        }
    )


@pytest.mark.parametrize("name", sorted(PROCESSORS))
def test_every_sample_processor_runs_through_the_wrapper(store: Any, name: str, tmp_path: Path) -> None:
    spec = _spec(store, name)
    manifest = run_job(spec, tmp_path / "work", echo=False)
    assert manifest.status is Status.SUCCESS, manifest.reason
    assert [p.product_type for p in manifest.products] == PROCESSORS[name][2]
    input_digests = {f.sha256 for f in spec.inputs}
    for product in manifest.products:
        (stored,) = product.files
        body = store.storage.get_bytes(stored.key)
        assert hashlib.sha256(body).hexdigest() == stored.sha256
        cited = {entry["sha256"] for entry in json.loads(body)["inputs"]}
        assert cited == input_digests  # every input was read and is cited
        assert product.metadata["input_count"] == len(spec.inputs)
    assert manifest.job_order is not None and store.storage.exists(manifest.job_order.key)


@pytest.mark.parametrize("name", ["s5p-l2-no2", "sky-calib"])
def test_sample_processor_failure_modes_through_the_wrapper(store: Any, name: str, tmp_path: Path) -> None:
    warned = run_job(_spec(store, name, mode="warn"), tmp_path / "warn", echo=False)
    assert (warned.status, warned.exit_code) == (Status.WARNING, 3)
    assert warned.products and all(store.storage.exists(p.files[0].key) for p in warned.products)

    failed = run_job(_spec(store, name, mode="fail"), tmp_path / "fail", echo=False)
    assert (failed.status, failed.exit_code, failed.stage) == (Status.FAILED, 130, "run")
    assert failed.log_url and store.storage.exists(f"logs/{name}/7.log")
    assert b"processing failed (proseo_test_mode=fail)" in store.storage.get_bytes(f"logs/{name}/7.log")

    hung = run_job(_spec(store, name, mode="hang", max_run_time_s=1.5), tmp_path / "hang", echo=False)
    assert (hung.status, hung.stage) == (Status.FAILED, "run")
    assert "exceeded its maximum run time of 1.5 s and was killed" in (hung.reason or ""), hung.reason
