"""Wrapper fixtures: a product store on file:// and on moto's S3, and job specs built on it.

``store`` is parametrised over both backends, so every wrapper scenario runs twice.
``make_spec`` uploads a few inputs (two L0 files, one AUX file), then builds a JobSpec
that runs ``ipf_test_processor.py`` with the interpreter of this test run.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xxhash

from proseo.devtools.s3server import MotoServer
from proseo.storage import Storage, open_storage
from proseo.wrapper.spec import JobSpec

PROCESSOR = Path(__file__).with_name("ipf_test_processor.py")
INPUTS = {
    ("L0", "S5P_L0_ORBIT_00001_A.RAW"): b"first half of orbit 1\n" * 50,
    ("L0", "S5P_L0_ORBIT_00001_B.RAW"): b"second half of orbit 1\n" * 70,
    ("AUX_MET", "S5P_AUX_MET_20240301.nc"): b"meteorology\n" * 30,
}


@dataclass(frozen=True)
class Store:
    url: str
    options: dict[str, Any]

    @property
    def storage(self) -> Storage:
        return open_storage(self.url, self.options)


@pytest.fixture
def file_store(tmp_path: Path) -> Store:
    return Store(f"file://{tmp_path}/store", {})


@pytest.fixture
def s3_store(moto_s3: MotoServer, bucket: str) -> Store:
    return Store(f"s3://{bucket}/archive", moto_s3.options())


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest) -> Store:
    """The storage the job reads inputs from and writes outputs to: a folder, then a bucket."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config" / "processor.cfg"
    path.parent.mkdir()
    path.write_text("threshold = 0.5\n")
    return path


SpecFactory = Callable[..., JobSpec]


def _spec_data(store: Store, config_file: Path, **overrides: Any) -> dict[str, Any]:
    """A JSON-ready job spec with uploaded inputs; ``overrides`` replace top-level fields."""
    inputs = []
    for (product_type, name), content in INPUTS.items():
        key = f"{product_type}/2024/03/01/{name}"
        store.storage.put_bytes(content, key)
        inputs.append(
            {
                "product_id": len(inputs) + 1,
                "product_type": product_type,
                "file_name": name,
                "storage": "archive",
                "key": key,
                "size": len(content),
                "md5": hashlib.md5(content).hexdigest(),
                "sha256": hashlib.sha256(content).hexdigest(),
                "xxh128": xxhash.xxh3_128_hexdigest(content),
                "start": "2024-03-01T00:00:00Z",
                "stop": "2024-03-01T01:40:00.5Z",
            }
        )
    data: dict[str, Any] = {
        "job_step_id": 42,
        "mission": "S5P",
        "processor": "TEST_L1B",
        "version": "01.02.03",
        "configuration": "OPER",
        "file_class": "TEST",
        "tasks": [{"name": "TEST_L1B", "version": "01.02.03"}],
        "command": [sys.executable, str(PROCESSOR)],
        "sensing_start": "2024-03-01T00:00:00Z",
        "sensing_stop": "2024-03-01T01:40:00.5Z",
        "dynamic_parameters": {"behaviour": "ok", "orbit": 1, "threshold": 0.25, "strict": True},
        "config_files": [{"file_type": "CFG_TEST", "version": "1", "path": str(config_file)}],
        "inputs": inputs,
        "outputs": [
            {
                "product_type": "L1B",
                "file_name": "S5P_TEST_L1B_00001.nc",
                "key": "L1B/2024/03/01/S5P_TEST_L1B_00001.nc",
                "start": "2024-03-01T00:00:00Z",
                "stop": "2024-03-01T01:40:00.5Z",
                "parameters": {"orbit": 1},
            },
            {
                "product_type": "L2_SAFE",
                "file_name": "S5P_TEST_L2_00001.SAFE",
                "key": "L2/2024/03/01/S5P_TEST_L2_00001.SAFE",
                "start": "2024-03-01T00:00:00Z",
                "stop": "2024-03-01T01:40:00.5Z",
            },
        ],
        "storages": {"archive": {"url": store.url, "options": store.options}},
        "output_storage": "archive",
        "log_key": "logs/42/processor.log",
        "job_order_key": "joborders/42/JobOrder_42.xml",
        "max_run_time_s": 30,
        "transfer_workers": 4,
    }
    data.update(overrides)
    return data


@pytest.fixture
def spec_data(config_file: Path) -> Callable[..., dict[str, Any]]:
    """spec_data(store, behaviour="ok", **overrides) -> a JSON-ready spec whose inputs are in ``store``."""

    def make(store: Store, behaviour: str = "ok", **overrides: Any) -> dict[str, Any]:
        data = _spec_data(store, config_file, **overrides)
        data["dynamic_parameters"] = {**data["dynamic_parameters"], "behaviour": behaviour}
        return data

    return make


@pytest.fixture
def make_spec(store: Store, spec_data: Callable[..., dict[str, Any]]) -> SpecFactory:
    """make_spec(behaviour="ok", **overrides) -> JobSpec on the parametrised store."""

    def make(behaviour: str = "ok", **overrides: Any) -> JobSpec:
        return JobSpec.model_validate(spec_data(store, behaviour, **overrides))

    return make
