"""Job specs built from stored plans: inputs, outputs, keys and parameters match the catalogue."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests_execution_helpers import (
    COLLECTION,
    DAY,
    ingest,
    l1b_window,
    orbit_inside,
    plan,
    register_outputs,
    steps_of,
)

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Facility, ProductClass
from proseo.catalog.model_order import InputQuery, InputQueryProduct, JobStep
from proseo.catalog.model_product import Product, ProductFile
from proseo.errors import NotFoundError
from proseo.execution import InputsNotReady, UnknownBackend, build_job_spec
from proseo.execution.backends import OPERATORS, operator_class
from proseo.execution.jobspec import sum_cpu, sum_memory
from proseo.storage import open_storage
from proseo.wrapper.spec import StorageRef

from tests_paths import REPO
from tests_registration import planned_outputs


def _l1b_order(catalog: Catalog, tmp: Path, *, ingest_inputs: bool = True, **fields) -> int:
    start, stop = l1b_window()
    if ingest_inputs:
        ingest(catalog, "S5P", start, stop, tmp)
    orbit = orbit_inside(catalog, start, stop)
    plan(
        catalog,
        "S5P",
        requested_classes=fields.pop("requested_classes", ["L1B_______"]),
        orbit_from=orbit,
        orbit_to=orbit,
        output_parameters=COLLECTION,
        processing_mode="OFFL",
        **fields,
    )
    return orbit


def _chosen_files(catalog: Catalog, step_id: int) -> set[tuple]:
    """(product id, type, file name, key, size, md5, sha256) of every product the step's
    input queries chose, straight from the catalogue."""
    with catalog.session() as s:
        (local,) = s.scalars(select(Facility).where(Facility.name == "local")).all()
        root = local.storage_url.rstrip("/") + "/"
        rows = s.execute(
            select(Product.id, ProductClass.product_type, ProductFile)
            .join(InputQueryProduct, InputQueryProduct.product_id == Product.id)
            .join(InputQuery, InputQuery.id == InputQueryProduct.query_id)
            .join(ProductClass, ProductClass.id == Product.product_class_id)
            .join(ProductFile, ProductFile.product_id == Product.id)
            .where(InputQuery.job_step_id == step_id)
        ).all()
        return {
            (pid, ptype, f.file_name, f.storage_url.removeprefix(root), f.size, f.md5, f.sha256)
            for pid, ptype, f in rows
        }


def test_inputs_and_outputs_match_the_plan(s5p_cat: Catalog, data_dirs, tmp_path: Path) -> None:
    _l1b_order(s5p_cat, tmp_path)
    (step_id,) = steps_of(s5p_cat)["L1B_______"]
    with s5p_cat.session() as s:
        ctx = build_job_spec(s, step_id, try_number=3)
        step = s.get(JobStep, step_id)
        planned, window = planned_outputs(s, step_id), (step.start_time, step.stop_time)
        facility = s.scalar(select(Facility).where(Facility.name == "local"))
        storage_url = facility.storage_url
    spec = ctx.spec

    # Inputs: exactly the chosen products' files, with the catalogue's sizes and checksums.
    got = {(f.product_id, f.product_type, f.file_name, f.key, f.size, f.md5, f.sha256) for f in spec.inputs}
    expected = _chosen_files(s5p_cat, step_id)
    assert got == expected and len(spec.inputs) == len(expected)
    assert {f.product_type for f in spec.inputs} == {
        "L0__ODB_1_",
        "L0__ODB_4_",
        "L0__ODB_6_",
        "L0__ENG_A_",
        "AUX_L1_CKD",
    }
    # Keys are the ingestion scheme and the bytes behind them are what the catalogue says.
    storage = open_storage(storage_url)
    for f in spec.inputs:
        assert f.storage == "local"
        assert f.key == f"{f.product_type}/{f.start:%Y/%m/%d}/{f.file_name}"
        assert storage.checksum(f.key).md5 == f.md5
    # Listed query by query (rule order), each query's products by validity.
    types = [f.product_type for f in spec.inputs]
    assert types == sorted(types, key=types.index)  # grouped
    eng = [f.start for f in spec.inputs if f.product_type == "L0__ENG_A_"]
    assert eng == sorted(eng) and len(eng) == 3  # ValIntersect(60 s, 60 s) reaches the neighbours

    # Outputs: the planned ones, under deterministic keys by sensing start.
    assert [(o.product_type, o.file_name) for o in spec.outputs] == [
        (p["product_type"], p["file_name"]) for p in planned
    ]
    assert [o.product_type for o in spec.outputs] == [
        "L1B_______",
        "L1B_RA_BD3",
        "L1B_RA_BD4",
        "L1B_RA_BD6",
        "L1B_IR_UVN",
    ]
    for o in spec.outputs:
        assert o.key == f"{o.product_type}/{o.start:%Y/%m/%d}/{o.file_name}"
        assert o.parameters == {"collection": 3}
        assert (o.start, o.stop) == window
    assert spec.storages == {"local": StorageRef(url=storage_url, options={})}
    assert spec.output_storage == "local"
    assert spec.log_key == f"logs/o1/{step_id}/processor.log"
    assert spec.job_order_key == f"joborders/o1/{step_id}/JobOrder.{step_id}.xml"
    assert ctx.log_url == f"{storage_url}/logs/o1/{step_id}/processor.log"

    # The processor and the run.
    assert (spec.processor, spec.version, spec.configuration) == ("L01B", "02.10.00", "2025.01")
    assert spec.command == ["s5p-l01b"] and [(t.name, t.version) for t in spec.tasks] == [
        ("L01B_PROC", "02.10.00")
    ]
    assert (spec.mode, spec.file_class, spec.dialect.value) == ("OFFL", "OPER", "MMFI_1_8")
    assert (spec.sensing_start, spec.sensing_stop) == window
    assert spec.max_run_time_s == ctx.max_run_time_s == 7200
    assert [(c.file_type, c.path) for c in spec.config_files] == [("CFG_L01B__", "cfg/l01b_2025.01.xml")]
    assert spec.job_step_id == ctx.job_step_id == step_id

    # Around the spec: facility, pool, resources, scratch.
    assert (ctx.facility, ctx.backend, ctx.namespace) == ("local", "local", None)
    assert (ctx.pool, ctx.pool_size) == ("proseo__s5p__local", 2)
    assert (ctx.image, ctx.cpu_request, ctx.memory_request, ctx.min_disk) == (
        "proseo/s5p-l01b:2.10.0",
        "2",
        "4Gi",
        "20Gi",
    )
    assert ctx.deadline_s == 7800
    assert ctx.try_number == 3
    assert str(ctx.scratch_dir()) == f"{data_dirs['scratch']}/S5P/S5P/o1/{step_id}/try-3"
    assert ctx.task_defaults() == {"pool": "proseo__s5p__local", "priority_weight": 50}


def test_inputs_held_at_another_facility_get_their_own_storage(
    s5p_cat: Catalog, data_dirs, tmp_path: Path
) -> None:
    _l1b_order(s5p_cat, tmp_path, facility="cloud")
    (step_id,) = steps_of(s5p_cat)["L1B_______"]
    with s5p_cat.session() as s:
        ctx = build_job_spec(s, step_id)
    spec = ctx.spec
    assert spec.output_storage == "cloud" and spec.storages["cloud"].url == "s3://s5p-products"
    assert spec.storages["cloud"].options == {"endpoint_url": "https://s3.eu-central-1.amazonaws.com"}
    assert spec.storages["local"].url == f"file://{data_dirs['data']}/S5P"
    assert {f.storage for f in spec.inputs} == {"local"}  # ingested at the default facility
    assert {(f.file_name, f.key, f.md5) for f in spec.inputs} == {
        (name, key, md5) for _, _, name, key, _, md5, _ in _chosen_files(s5p_cat, step_id)
    }
    assert (ctx.namespace, ctx.service_account, ctx.pool, ctx.pool_size) == (
        "s5p-processing",
        "proseo-processor",
        "proseo__s5p__cloud",
        400,
    )
    assert dict(ctx.node_selector) == {"proseo.io/pool": "processing"}


def test_order_dynamic_parameters_override_the_configuration(
    s5p_cat: Catalog, data_dirs, tmp_path: Path
) -> None:
    _l1b_order(s5p_cat, tmp_path, dynamic_parameters={"calibration_level": "quick", "dump_spectra": True})
    (step_id,) = steps_of(s5p_cat)["L1B_______"]
    with s5p_cat.session() as s:
        spec = build_job_spec(s, step_id).spec
    assert spec.dynamic_parameters == {"calibration_level": "quick", "dump_spectra": True}


def test_configuration_parameters_without_order_values(sky_cat: Catalog, data_dirs, tmp_path: Path) -> None:
    ingest(sky_cat, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    plan(
        sky_cat,
        "SKY",
        requested_classes=["CALEXP_G"],
        start=DAY,
        stop=DAY + timedelta(days=1),
        dynamic_parameters={"overscan": False},
    )
    (step_id,) = steps_of(sky_cat)["CALEXP_G"]
    with sky_cat.session() as s:
        ctx = build_job_spec(s, step_id)
    assert ctx.spec.dynamic_parameters == {"saturation_adu": 60000, "overscan": False}
    assert ctx.spec.dialect.value == "GMES_1_1"
    # 15 g exposures of the night, the bias and the g flat, all with catalogue checksums.
    types = [f.product_type for f in ctx.spec.inputs]
    assert types.count("RAW_EXP") == 15 and types.count("CAL_BIAS") == 1 and types.count("CAL_FLAT") == 1
    got = {(f.product_id, f.file_name, f.key, f.size, f.md5, f.sha256) for f in ctx.spec.inputs}
    assert got == {(p, n, k, z, m, h) for p, _, n, k, z, m, h in _chosen_files(sky_cat, step_id)}


def test_upstream_outputs_must_be_registered_first(s5p_cat: Catalog, data_dirs, tmp_path: Path) -> None:
    _l1b_order(s5p_cat, tmp_path, requested_classes=["L2__CLOUD_"])
    steps = steps_of(s5p_cat)
    (l1b,) = steps["L1B_______"]
    (cloud,) = steps["L2__CLOUD_"]
    with s5p_cat.session() as s, pytest.raises(InputsNotReady) as info:
        build_job_spec(s, cloud)
    err = info.value
    assert (err.job_step_id, err.upstream_step_id) == (cloud, l1b)
    assert err.product_type == "L1B_RA_BD3"  # the first rule of L2__CLOUD_
    assert f"job step {cloud}" in str(err) and f"upstream job step {l1b}" in str(err)
    assert "L1B_RA_BD3" in str(err) and "has not registered it yet" in str(err)

    registered = register_outputs(s5p_cat, l1b)
    with s5p_cat.session() as s:
        upstream_spec = build_job_spec(s, l1b).spec
        spec = build_job_spec(s, cloud).spec
    from_upstream = [f for f in spec.inputs if f.product_type.startswith("L1B_")]
    assert [f.product_type for f in from_upstream] == ["L1B_RA_BD3", "L1B_RA_BD6", "L1B_IR_UVN"]
    assert {f.product_id for f in from_upstream} <= set(registered)
    # What the upstream run writes is exactly what the downstream run reads.
    written = {o.product_type: (o.file_name, o.key) for o in upstream_spec.outputs}
    for f in from_upstream:
        assert (f.file_name, f.key) == written[f.product_type]
        assert f.storage == "local"
    assert any(f.product_type == "AUX_MET_TP" for f in spec.inputs)


def test_a_step_waiting_for_deliveries_is_not_ready(s5p_cat: Catalog, data_dirs, tmp_path: Path) -> None:
    _l1b_order(s5p_cat, tmp_path, ingest_inputs=False)
    (step_id,) = steps_of(s5p_cat)["L1B_______"]
    with s5p_cat.session() as s, pytest.raises(InputsNotReady, match="L0__ODB_1_ is not satisfied") as info:
        build_job_spec(s, step_id)
    assert info.value.upstream_step_id is None and "waits for input" in str(info.value)
    with s5p_cat.session() as s, pytest.raises(NotFoundError, match="job step 999999"):
        build_job_spec(s, 999999)


def test_quantities_add_up() -> None:
    assert sum_cpu(["2", "4"]) == "6"
    assert sum_cpu(["500m", "1"]) == "1500m"
    assert sum_cpu(["0.25", "250m"]) == "500m"
    assert sum_memory(["8Gi", "16Gi"]) == "24Gi"
    assert sum_memory(["512Mi", "1Gi"]) == "1536Mi"
    assert sum_memory(["1G", "500M"]) == "1500M"
    assert sum_memory(["4Gi"]) == "4Gi"


def test_backends_are_one_plain_mapping() -> None:
    assert OPERATORS == {
        "local": "proseo.execution.local:JobStepOperator",
        "kubernetes": "proseo.execution.kubernetes:JobStepPodOperator",
        "slurm": "proseo.execution.slurm:JobStepSlurmOperator",
    }
    with pytest.raises(
        UnknownBackend,
        match=r"order S5P/o1: facility hpc uses execution backend 'lsf', which proseo does not know "
        r"\(known: kubernetes, local, slurm\)",
    ):
        operator_class("lsf", order="S5P/o1", facility="hpc")


def test_the_job_spec_builder_imports_no_airflow() -> None:
    code = (
        "import sys\n"
        "import proseo.execution, proseo.execution.jobspec, proseo.execution.backends\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
