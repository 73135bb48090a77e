"""run_job end to end, on file:// and on S3: stage-in, Job Order, run, collect, upload, manifest."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import xxhash

from proseo.wrapper.job import run_job
from proseo.wrapper.joborder import parse_job_order
from proseo.wrapper.spec import JobSpec, Manifest, Status

INPUT_KEYS = {
    "L0/2024/03/01/S5P_L0_ORBIT_00001_A.RAW",
    "L0/2024/03/01/S5P_L0_ORBIT_00001_B.RAW",
    "AUX_MET/2024/03/01/S5P_AUX_MET_20240301.nc",
}
OUTPUT_KEYS = {
    "L1B/2024/03/01/S5P_TEST_L1B_00001.nc",
    "L2/2024/03/01/S5P_TEST_L2_00001.SAFE/data/measurement.bin",
    "L2/2024/03/01/S5P_TEST_L2_00001.SAFE/manifest.xml",
}
KEPT_KEYS = {"logs/42/processor.log", "joborders/42/JobOrder_42.xml"}


def stored(store: Any) -> set[str]:
    return set(store.storage.list(""))


def process_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting to be reaped counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def log_text(store: Any, manifest: Manifest) -> str:
    assert manifest.log_url is not None and manifest.log_url.endswith("logs/42/processor.log")
    return store.storage.get_bytes("logs/42/processor.log").decode()


def test_success_uploads_planned_outputs_with_checksums(make_spec: Any, store: Any, tmp_path: Path) -> None:
    spec: JobSpec = make_spec()
    manifest = run_job(spec, tmp_path / "work")

    assert manifest.status is Status.SUCCESS, manifest.reason
    assert (manifest.exit_code, manifest.stage, manifest.reason) == (0, "done", None)
    assert stored(store) == INPUT_KEYS | OUTPUT_KEYS | KEPT_KEYS
    l1b, l2 = manifest.products
    assert (l1b.product_type, l1b.file_name, l1b.parameters) == ("L1B", "S5P_TEST_L1B_00001.nc", {"orbit": 1})
    assert [f.file_name for f in l2.files] == ["data/measurement.bin", "manifest.xml"]
    for product in manifest.products:
        assert product.metadata == {"job_order": "JobOrder_42.xml", "inputs": 4}  # 3 inputs + config file
        for f in product.files:
            data = store.storage.get_bytes(f.key)
            assert (f.size, f.md5, f.sha256, f.xxh128) == (
                len(data),
                hashlib.md5(data).hexdigest(),
                hashlib.sha256(data).hexdigest(),
                xxhash.xxh3_128_hexdigest(data),
            )
            assert f.url == store.storage.url_for(f.key)
    # The content depends on the inputs (their digest is in it).
    assert b"from 4 inputs" in store.storage.get_bytes(l1b.files[0].key)

    # The Job Order is kept, cites relative paths only, and reads back.
    assert manifest.job_order is not None
    xml = store.storage.get_bytes(manifest.job_order.key)
    assert xml == (tmp_path / "work" / "JobOrder_42.xml").read_bytes()
    assert str(tmp_path).encode() not in xml.replace(str(tmp_path / "config").encode(), b"")
    order = parse_job_order(xml)
    assert order.inputs["L0"] == [
        "inputs/L0/S5P_L0_ORBIT_00001_A.RAW",
        "inputs/L0/S5P_L0_ORBIT_00001_B.RAW",
    ]
    assert [o.file_name for o in order.outputs] == [
        "outputs/S5P_TEST_L1B_00001.nc",
        "outputs/S5P_TEST_L2_00001.SAFE",
    ]
    assert "behaviour ok" in log_text(store, manifest)


@pytest.mark.parametrize(
    "wrong",
    [{"xxh128": "0" * 32}, {"sha256": "0" * 64, "xxh128": None}],
    ids=["xxh128", "sha256 only"],
)
def test_corrupt_input_in_spec_fails_before_the_processor_starts(
    make_spec: Any, store: Any, tmp_path: Path, wrong: dict[str, Any]
) -> None:
    spec: JobSpec = make_spec()
    bad = spec.inputs[1].model_copy(update=wrong)  # the digest stage-in verifies with
    spec = spec.model_copy(update={"inputs": [spec.inputs[0], bad, spec.inputs[2]]})
    manifest = run_job(spec, tmp_path / "work")

    assert (manifest.status, manifest.stage) == (Status.FAILED, "stage-in")
    assert "S5P_L0_ORBIT_00001_B.RAW" in (manifest.reason or "") and "corrupt" in (manifest.reason or "")
    assert not (tmp_path / "work" / "started").exists()
    assert not (tmp_path / "work" / "inputs" / "L0" / "S5P_L0_ORBIT_00001_B.RAW").exists()
    assert "corrupt" in log_text(store, manifest)
    assert stored(store) == INPUT_KEYS | {"logs/42/processor.log"}


@pytest.mark.parametrize("catalogued", ["xxh128", "sha256 only"])
def test_bytes_changed_in_storage_fail_before_the_processor_starts(
    make_spec: Any, store: Any, tmp_path: Path, catalogued: str
) -> None:
    spec: JobSpec = make_spec()
    if catalogued == "sha256 only":  # products catalogued before migration 0007 have no XXH3-128
        old = [f.model_copy(update={"xxh128": None}) for f in spec.inputs]
        spec = spec.model_copy(update={"inputs": old})
    original = store.storage.get_bytes(spec.inputs[2].key)
    tampered = original.replace(b"meteorology", b"meteorologY")  # same size
    store.storage.put_bytes(tampered, spec.inputs[2].key, replace=True)  # changed behind our back
    manifest = run_job(spec, tmp_path / "work")

    assert (manifest.status, manifest.stage) == (Status.FAILED, "stage-in")
    reason = manifest.reason or ""
    assert "'S5P_AUX_MET_20240301.nc'" in reason and "size" not in reason
    # Verified by XXH3-128 where the catalogue has it (file:// alone; S3 with MD5 as the bytes
    # stream), else by SHA-256 (file:// alone; S3 with MD5).
    fast = catalogued == "xxh128"
    assert ("XXH3-128" in reason) is fast and ("SHA-256" in reason) is not fast
    assert ("MD5" in reason) is (store.url.startswith("s3://"))
    assert not (tmp_path / "work" / "started").exists()
    assert not (tmp_path / "work" / "inputs" / "AUX_MET" / "S5P_AUX_MET_20240301.nc").exists()


def test_missing_input_is_named(make_spec: Any, store: Any, tmp_path: Path) -> None:
    spec: JobSpec = make_spec()
    store.storage.delete(spec.inputs[0].key)
    manifest = run_job(spec, tmp_path / "work")

    assert (manifest.status, manifest.stage) == (Status.FAILED, "stage-in")
    assert "'S5P_L0_ORBIT_00001_A.RAW'" in (manifest.reason or "") and "missing" in (manifest.reason or "")
    assert not (tmp_path / "work" / "started").exists()


def test_exit_code_3_is_a_warning_and_outputs_are_kept(make_spec: Any, store: Any, tmp_path: Path) -> None:
    manifest = run_job(make_spec("warn"), tmp_path / "work")

    assert (manifest.status, manifest.exit_code, manifest.stage) == (Status.WARNING, 3, "done")
    assert "3" in (manifest.reason or "") and "warning" in (manifest.reason or "")
    assert [p.file_name for p in manifest.products] == ["S5P_TEST_L1B_00001.nc", "S5P_TEST_L2_00001.SAFE"]
    assert stored(store) == INPUT_KEYS | OUTPUT_KEYS | KEPT_KEYS


def test_exit_code_130_fails_and_the_log_is_kept(make_spec: Any, store: Any, tmp_path: Path) -> None:
    manifest = run_job(make_spec("fail"), tmp_path / "work")

    assert (manifest.status, manifest.exit_code, manifest.stage) == (Status.FAILED, 130, "run")
    assert "130" in (manifest.reason or "")
    assert manifest.products == []
    text = log_text(store, manifest)
    assert "fatal: simulated processing failure" in text and "a line on stderr" in text
    assert stored(store) == INPUT_KEYS | KEPT_KEYS


def test_a_hanging_processor_is_killed_at_its_max_run_time(
    make_spec: Any, store: Any, tmp_path: Path
) -> None:
    began = time.monotonic()
    manifest = run_job(make_spec("hang", max_run_time_s=1.5), tmp_path / "work")
    elapsed = time.monotonic() - began

    assert (manifest.status, manifest.stage, manifest.exit_code) == (Status.FAILED, "run", None)
    assert "maximum run time of 1.5 s" in (manifest.reason or "")
    assert 1.5 <= elapsed < 10
    pids = [int(p) for p in (tmp_path / "work" / "pids.txt").read_text().split()]
    assert len(pids) == 2  # the processor and the helper it started
    assert all(process_gone(pid) for pid in pids)
    assert "hanging" in log_text(store, manifest)


def test_the_same_spec_twice_gives_the_same_keys_and_manifest(
    make_spec: Any, store: Any, tmp_path: Path
) -> None:
    spec: JobSpec = make_spec()
    first = run_job(spec, tmp_path / "one")
    keys = stored(store)
    outputs = {key: store.storage.checksum(key) for key in OUTPUT_KEYS}
    second = run_job(spec, tmp_path / "elsewhere" / "two")  # a retried step: same bytes, already stored

    assert first.status is Status.SUCCESS
    assert first.model_dump_json() == second.model_dump_json()
    assert stored(store) == keys == INPUT_KEYS | OUTPUT_KEYS | KEPT_KEYS
    assert {key: store.storage.checksum(key) for key in OUTPUT_KEYS} == outputs
    assert "3 output file(s) already stored with the same bytes" in log_text(store, second)
    assert (tmp_path / "one" / "JobOrder_42.xml").read_bytes() == (
        tmp_path / "elsewhere" / "two" / "JobOrder_42.xml"
    ).read_bytes()


def test_an_output_key_holding_other_bytes_fails_the_upload_and_is_not_replaced(
    make_spec: Any, store: Any, tmp_path: Path
) -> None:
    """Another run already stored a different product under this step's output key."""
    spec: JobSpec = make_spec()
    key = "L1B/2024/03/01/S5P_TEST_L1B_00001.nc"
    theirs = store.storage.put_bytes(b"the product another order registered\n", key)

    manifest = run_job(spec, tmp_path / "work")

    assert (manifest.status, manifest.stage) == (Status.FAILED, "upload")
    reason = manifest.reason or ""
    assert f"key {key!r} in {store.storage.root_url} already holds other bytes" in reason
    assert f"stored: sha256 {theirs.sha256}, {theirs.size} bytes" in reason
    ours = hashlib.sha256((tmp_path / "work" / "outputs" / "S5P_TEST_L1B_00001.nc").read_bytes()).hexdigest()
    assert f"this upload: sha256 {ours}," in reason and "never replaced" in reason
    assert manifest.products == []
    assert store.storage.checksum(key) == theirs  # byte for byte what was there
    assert "FAILED at upload" in log_text(store, manifest)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "ok/../../passwd"])
def test_an_escaping_output_name_is_refused(make_spec: Any, store: Any, tmp_path: Path, name: str) -> None:
    spec: JobSpec = make_spec()
    evil = spec.outputs[0].model_copy(update={"file_name": name})
    spec = spec.model_copy(update={"outputs": [evil, spec.outputs[1]]})
    workdir = tmp_path / "a" / "b" / "work"
    manifest = run_job(spec, workdir)

    assert (manifest.status, manifest.stage) == (Status.FAILED, "spec")
    assert repr(name) in (manifest.reason or "")
    assert manifest.log_url is None and manifest.job_order is None
    assert stored(store) == INPUT_KEYS  # nothing uploaded
    assert not (workdir / "started").exists()
    assert not [p for p in tmp_path.rglob("passwd")]  # nothing written outside the workdir


def test_a_symlink_output_is_refused(make_spec: Any, store: Any, tmp_path: Path) -> None:
    manifest = run_job(make_spec("symlink"), tmp_path / "work")

    assert (manifest.status, manifest.stage, manifest.exit_code) == (Status.FAILED, "collect", 0)
    assert "S5P_TEST_L1B_00001.nc" in (manifest.reason or "") and "symbolic link" in (manifest.reason or "")
    assert stored(store) == INPUT_KEYS | KEPT_KEYS  # no output uploaded, log and Job Order kept


def test_a_missing_output_fails_the_run(make_spec: Any, store: Any, tmp_path: Path) -> None:
    manifest = run_job(make_spec("nothing"), tmp_path / "work")

    assert (manifest.status, manifest.stage) == (Status.FAILED, "collect")
    assert "'S5P_TEST_L1B_00001.nc'" in (manifest.reason or "") and "did not write" in (manifest.reason or "")
    assert stored(store) == INPUT_KEYS | KEPT_KEYS


def test_metadata_contradicting_a_planned_parameter_fails_the_collect(
    make_spec: Any, store: Any, tmp_path: Path
) -> None:
    manifest = run_job(make_spec("contradict"), tmp_path / "work")

    assert (manifest.status, manifest.stage) == (Status.FAILED, "collect")
    assert "reports orbit=2, but the job step planned orbit=1" in (manifest.reason or "")
    assert stored(store) == INPUT_KEYS | KEPT_KEYS  # nothing uploaded


def test_a_reported_footprint_travels_in_the_manifest(make_spec: Any, store: Any, tmp_path: Path) -> None:
    manifest = run_job(make_spec("footprint"), tmp_path / "work")

    assert manifest.status is Status.SUCCESS, manifest.reason
    for product in manifest.products:
        assert product.footprint == {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}
        assert "footprint" not in product.metadata


def test_an_invalid_reported_footprint_fails_the_collect(make_spec: Any, store: Any, tmp_path: Path) -> None:
    manifest = run_job(make_spec("bad-footprint"), tmp_path / "work")

    assert (manifest.status, manifest.stage) == (Status.FAILED, "collect")
    assert ".meta.json: footprint: POLYGON is not valid: Self-intersection" in (manifest.reason or "")
    assert stored(store) == INPUT_KEYS | KEPT_KEYS  # nothing uploaded


def test_processes_left_behind_are_terminated(make_spec: Any, store: Any, tmp_path: Path) -> None:
    manifest = run_job(make_spec("leftover"), tmp_path / "work")

    assert manifest.status is Status.SUCCESS
    (pid,) = [int(p) for p in (tmp_path / "work" / "pids.txt").read_text().split()]
    assert process_gone(pid)
    assert "left processes behind" in log_text(store, manifest)


def test_a_processor_that_cannot_start_fails_at_the_run_stage(
    make_spec: Any, tmp_path: Path, store: Any
) -> None:
    """A processor that cannot be started fails at the run stage, naming it."""
    manifest = run_job(make_spec(command=["/nonexistent/processor"]), tmp_path / "work")

    assert (manifest.status, manifest.stage) == (Status.FAILED, "run")
    assert "'/nonexistent/processor'" in (manifest.reason or "")
    assert json.loads(manifest.model_dump_json())["log_url"].endswith("logs/42/processor.log")
    assert os.path.exists(tmp_path / "work" / "processor.log")
