"""The local backend's run: ``run_wrapper`` (the wrapper as a subprocess), without Airflow.

Most cases run ``run_wrapper`` against a stand-in wrapper (``STAND_IN``: it prints a
manifest, fails, babbles or hangs on request), so the subprocess handling is tested
independently of the real wrapper; the operator around it is tested in
``test_step_task.py``. One case runs the real ``proseo-wrapper`` with the
real sample processor for a planned SKY night; it is skipped while the wrapper's
``--help`` does not work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from tests_execution_helpers import DAY, Lines, ingest, plan, sample_context, steps_of

from proseo.catalog.db import Catalog
from proseo.execution import ExecutionError, StepContext, build_job_spec
from proseo.execution.local import find_wrapper, run_wrapper, subprocess_env
from proseo.storage import open_storage
from proseo.wrapper.spec import Manifest, Status


@pytest.fixture
def ctx(tmp_path: Path) -> StepContext:
    return sample_context(scratch=str(tmp_path / "scratch"), storage=f"file://{tmp_path / 'data'}")


def test_run_wrapper_writes_the_spec_and_streams_stderr(ctx: StepContext, stand_in: list[str]) -> None:
    log = Lines()
    manifest = run_wrapper(ctx, 2, log=log, wrapper=stand_in)
    assert isinstance(manifest, Manifest) and manifest.status is Status.SUCCESS
    assert [p.file_name for p in manifest.products] == ["out.nc", "out2.nc"]
    base = Path(ctx.scratch_dir(2))
    assert base == Path(ctx.scratch_path) / "S5P" / "o1" / "42" / "try-2"
    assert json.loads((base / "spec.json").read_text()) == ctx.spec.model_dump(mode="json")
    assert Manifest.model_validate_json((base / "manifest.json").read_text()) == manifest
    argv = next(line for line in log.lines if line.startswith("stand-in: argv "))
    assert json.loads(argv.removeprefix("stand-in: argv ")) == [
        "run",
        str(base / "spec.json"),
        "--workdir",
        str(base / "work"),
    ]
    assert "stand-in: 1 input(s), 2 output(s)" in log.lines


def test_wrapper_without_a_manifest_is_an_error(ctx: StepContext, stand_in: list[str]) -> None:
    with pytest.raises(ExecutionError, match="exited 0 without a valid manifest") as info:
        run_wrapper(ctx, 1, log=Lines(), wrapper=[*stand_in, "--mode", "garbage"])
    assert "stand-in: 1 input(s), 2 output(s)" in str(info.value)  # the stderr tail
    with pytest.raises(ExecutionError, match="refused the job spec") as info:
        run_wrapper(ctx, 1, log=Lines(), wrapper=[*stand_in, "--mode", "badspec"])
    assert "spec.outputs: field required" in str(info.value)


def test_run_wrapper_kills_a_wrapper_past_its_time(ctx: StepContext, stand_in: list[str]) -> None:
    started = time.monotonic()
    with pytest.raises(ExecutionError, match="ran longer than 1 s"):
        run_wrapper(ctx, 1, log=Lines(), wrapper=[*stand_in, "--mode", "sleep"], timeout_s=1.0)
    assert time.monotonic() - started < 30


def test_wrapper_is_found_beside_the_interpreter() -> None:
    assert find_wrapper() == [str(Path(sys.executable).parent / "proseo-wrapper")]
    env = subprocess_env({"PATH": "/usr/bin"})
    assert env["PATH"].split(":")[:2] == [str(Path(sys.executable).parent), "/usr/bin"]


def _wrapper_works() -> bool:
    try:
        return subprocess.run([*find_wrapper(), "--help"], capture_output=True, timeout=60).returncode == 0
    except (ExecutionError, OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _wrapper_works(), reason="proseo-wrapper --help does not work (yet)")
@pytest.mark.parametrize("launch", ["fork", "exec"])
def test_the_real_wrapper_runs_a_planned_night(
    sky_cat: Catalog, data_dirs, tmp_path: Path, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROSEO_WRAPPER_LAUNCH", launch)
    ingest(sky_cat, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    plan(sky_cat, "SKY", requested_classes=["CALEXP_G"], start=DAY, stop=DAY + timedelta(days=1))
    (step_id,) = steps_of(sky_cat)["CALEXP_G"]
    with sky_cat.session() as s:
        ctx = build_job_spec(s, step_id)
    log = Lines()
    manifest = run_wrapper(ctx, 1, log=log)
    assert manifest.status is Status.SUCCESS, manifest.reason
    assert ("(forked) run " in log.lines[0]) is (launch == "fork"), log.lines[0]
    assert any(line.startswith("proseo-wrapper INFO: ") for line in log.lines)  # its log, streamed
    assert [(p.product_type, p.file_name) for p in manifest.products] == [
        (o.product_type, o.file_name) for o in ctx.spec.outputs
    ]
    storage = open_storage(ctx.spec.storages[ctx.spec.output_storage].url)
    for product, planned in zip(manifest.products, ctx.spec.outputs, strict=True):
        (f,) = product.files
        assert f.key == planned.key and storage.checksum(f.key).sha256 == f.sha256
    assert manifest.log_url == ctx.log_url
    assert manifest.job_order is not None and manifest.job_order.key == ctx.spec.job_order_key
