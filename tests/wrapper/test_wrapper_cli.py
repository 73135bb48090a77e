"""``proseo-wrapper run`` as a subprocess: stdout is exactly the manifest, exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proseo.wrapper.spec import Manifest, Status

WRAPPER = Path(sys.executable).with_name("proseo-wrapper")


def wrapper(tmp_path: Path, *args: str | Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROSEO_SCRATCH": str(tmp_path / "scratch"), **env_vars}
    return subprocess.run(
        [str(WRAPPER), *map(str, args)], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def write_spec(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    return path


def scratch_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "scratch").iterdir())


def test_success_prints_only_the_manifest_and_cleans_up(
    spec_data: Callable[..., dict[str, Any]], store: Any, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, spec_data(store))
    result = wrapper(tmp_path, "run", spec, "--xcom", tmp_path / "xcom" / "return.json")

    assert result.returncode == 0, result.stderr
    manifest = Manifest.model_validate_json(result.stdout)
    assert result.stdout == manifest.model_dump_json() + "\n"
    assert manifest.status is Status.SUCCESS and len(manifest.products) == 2
    assert (tmp_path / "xcom" / "return.json").read_text() == manifest.model_dump_json()
    assert "behaviour ok" in result.stderr  # the processor's output is echoed to stderr, not stdout
    assert scratch_dirs(tmp_path) == []  # the temporary working directory is removed


def test_a_warning_exits_0_and_a_failure_exits_1_keeping_the_workdir(
    spec_data: Callable[..., dict[str, Any]], file_store: Any, tmp_path: Path
) -> None:
    warned = wrapper(tmp_path, "run", write_spec(tmp_path, spec_data(file_store, "warn")))
    assert warned.returncode == 0, warned.stderr
    assert Manifest.model_validate_json(warned.stdout).status is Status.WARNING

    failed = wrapper(tmp_path, "run", write_spec(tmp_path, spec_data(file_store, "fail")))
    assert failed.returncode == 1, failed.stderr
    manifest = Manifest.model_validate_json(failed.stdout)
    assert (manifest.status, manifest.exit_code, manifest.stage) == (Status.FAILED, 130, "run")
    (kept,) = scratch_dirs(tmp_path)
    assert f"working directory kept at {kept}" in failed.stderr
    assert "fatal: simulated processing failure" in (kept / "processor.log").read_text()


def test_workdir_options(spec_data: Callable[..., dict[str, Any]], file_store: Any, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, spec_data(file_store))
    result = wrapper(tmp_path, "run", spec, "--workdir", tmp_path / "mine")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mine" / "JobOrder_42.xml").is_file()  # a given workdir is the caller's: kept
    assert (tmp_path / "spec.json").is_file()

    kept = wrapper(tmp_path, "run", spec, "--keep-workdir")
    assert kept.returncode == 0, kept.stderr
    (workdir,) = scratch_dirs(tmp_path)
    assert (workdir / "outputs" / "S5P_TEST_L1B_00001.nc").is_file()
    assert kept.stdout == result.stdout  # same spec, same manifest, whatever the working directory


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda d: d["outputs"][0].update(file_name=""),
            "outputs.0.file_name: String should have at least 1",
        ),
        (lambda d: d.pop("max_run_time_s"), "max_run_time_s: Field required"),
        (lambda d: d["inputs"][0].update(md5="xyz"), "inputs.0.md5: String should match pattern"),
        (lambda d: d.update(output_storage="nowhere"), "output_storage 'nowhere' is not in storages"),
    ],
)
def test_an_invalid_spec_exits_2_naming_the_field(
    spec_data: Callable[..., dict[str, Any]],
    file_store: Any,
    tmp_path: Path,
    change: Callable[[dict[str, Any]], Any],
    named: str,
) -> None:
    data = spec_data(file_store)
    change(data)
    result = wrapper(tmp_path, "run", write_spec(tmp_path, data))
    assert result.returncode == 2
    assert result.stdout == ""
    assert named in result.stderr


def test_unreadable_or_malformed_spec_files_exit_2(tmp_path: Path) -> None:
    missing = wrapper(tmp_path, "run", tmp_path / "missing.json")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "cannot read the job specification" in missing.stderr
    (tmp_path / "bad.json").write_text("{not json")
    bad = wrapper(tmp_path, "run", tmp_path / "bad.json")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "Invalid JSON" in bad.stderr


def test_the_spec_may_come_from_an_environment_variable(
    spec_data: Callable[..., dict[str, Any]], file_store: Any, tmp_path: Path
) -> None:
    """How the Kubernetes backend runs it: ``run --spec-env PROSEO_JOB_SPEC --xcom ...``."""
    xcom = tmp_path / "airflow" / "xcom" / "return.json"
    spec = json.dumps(spec_data(file_store))
    result = wrapper(tmp_path, "run", "--spec-env", "PROSEO_JOB_SPEC", "--xcom", xcom, PROSEO_JOB_SPEC=spec)
    assert result.returncode == 0, result.stderr
    assert xcom.read_text() + "\n" == result.stdout
    assert Manifest.model_validate_json(result.stdout).status is Status.SUCCESS

    unset = wrapper(tmp_path, "run", "--spec-env", "NO_SUCH_VARIABLE_SET")
    assert (unset.returncode, unset.stdout) == (2, "")
    assert "NO_SUCH_VARIABLE_SET is not set" in unset.stderr
    neither = wrapper(tmp_path, "run")
    assert (neither.returncode, neither.stdout) == (2, "")


def test_importing_the_wrapper_loads_no_airflow() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import proseo.wrapper\n"
        "names = [m.name for m in pkgutil.iter_modules(proseo.wrapper.__path__, 'proseo.wrapper.')]\n"
        "expected = {'proseo.wrapper.main', 'proseo.wrapper.job', 'proseo.wrapper.joborder'}\n"
        "assert expected <= set(names), names\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_reading_a_job_order_needs_only_the_standard_library() -> None:
    """Sample processors import the reader and must start fast: no pydantic, no fsspec."""
    code = (
        "import sys\n"
        "from proseo.wrapper.joborder import read_job_order\n"
        "heavy = sorted(m for m in ('pydantic', 'fsspec', 's3fs', 'sqlalchemy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
