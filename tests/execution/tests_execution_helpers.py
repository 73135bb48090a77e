"""Helpers shared by the execution tests: onboard a sample mission, ingest inputs, plan an order,
and register the outputs of a job step as registration will (files on storage + rows)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import Job, JobStep, ProcessingOrder
from proseo.devtools.generate import write_inputs
from proseo.execution.jobspec import StepContext, TaskResources
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec
from proseo.wrapper.spec import InputFile, JobSpec, OutputSpec, StorageRef, TaskSpec

from tests_paths import MISSION_DIR
from tests_registration import register_planned

DAY = datetime(2025, 3, 1, tzinfo=UTC)
COLLECTION = {"*": {"collection": 3}}


#: A stand-in for ``proseo-wrapper`` (tests of the local backend): it reads the spec and
#: prints a manifest of the planned outputs, fails, babbles or hangs on request (``--mode``).
STAND_IN = r"""
import json, sys, time
args = sys.argv[1:]
mode = "ok"
if args[:1] == ["--mode"]:
    mode, args = args[1], args[2:]
assert args[0] == "run" and args[2] == "--workdir", args
spec = json.load(open(args[1]))
print("stand-in: argv " + json.dumps(args), file=sys.stderr, flush=True)
print(f"stand-in: {len(spec['inputs'])} input(s), {len(spec['outputs'])} output(s)", file=sys.stderr)
if mode == "sleep":
    print("stand-in: sleeping", file=sys.stderr, flush=True)
    time.sleep(120)
if mode == "garbage":
    print("this is not a manifest")
    sys.exit(0)
if mode == "badspec":
    print("stand-in: spec.outputs: field required", file=sys.stderr)
    sys.exit(2)
root = spec["storages"][spec["output_storage"]]["url"]
status = {"ok": "SUCCESS", "warning": "WARNING", "fail": "FAILED", "failspec": "FAILED"}[mode]
manifest = {
    "job_step_id": spec["job_step_id"],
    "status": status,
    "exit_code": {"ok": 0, "warning": 3, "fail": 134, "failspec": None}[mode],
    "reason": {"warning": "exit code 3", "fail": "the processor failed with exit code 134",
               "failspec": "spec.outputs: field required"}.get(mode),
    "stage": {"fail": "run", "failspec": "spec"}.get(mode, "done"),
    "products": [] if status == "FAILED" else [
        {"product_type": o["product_type"], "file_name": o["file_name"], "start": o["start"],
         "stop": o["stop"], "parameters": o["parameters"],
         "files": [{"file_name": o["file_name"], "key": o["key"], "url": root + "/" + o["key"],
                    "size": 1, "md5": "0" * 32, "sha256": "0" * 64}]}
        for o in spec["outputs"]
    ],
    "log_url": root + "/" + spec["log_key"],
}
print(json.dumps(manifest))
sys.exit(1 if status == "FAILED" else 0)
"""


class Lines:
    """A logger stand-in that keeps what it was told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _keep(self, msg: str, *args: object) -> None:
        self.lines.append(msg % args if args else msg)

    info = warning = error = debug = _keep


def onboard(catalog: Catalog, code: str) -> None:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / f"{code.lower()}.yaml"))


def ingest(catalog: Catalog, code: str, start: datetime, stop: datetime, tmp: Path) -> None:
    with catalog.session() as s:
        mission = loaded_from_catalog(s, code)
    files = write_inputs(mission, start, stop, tmp / f"in-{uuid.uuid4().hex[:6]}", size=256)
    report = Ingestor(catalog, mission).run(files)
    assert report.ok, [o for o in report.outcomes if o.status not in ("new", "unchanged")]


def orbit_inside(catalog: Catalog, start: datetime, stop: datetime) -> int:
    """Number of the first S5P orbit wholly inside [start, stop)."""
    with catalog.session() as s:
        orbits = loaded_from_catalog(s, "S5P").orbits["S5P"]
    return next(o.number for o in orbits if o.start >= start and o.stop <= stop)


def plan(catalog: Catalog, code: str, identifier: str = "o1", **fields: Any) -> None:
    spec = OrderSpec(identifier=identifier, **fields)
    with catalog.session() as s:
        orders.create_order(s, code, spec)
    lifecycle.approve_order(catalog, code, identifier)
    lifecycle.plan_order(catalog, code, identifier)


def steps_of(catalog: Catalog, identifier: str = "o1") -> dict[str, list[int]]:
    """Job step ids of an order by product class, in id order."""
    with catalog.session() as s:
        rows = s.execute(
            select(ProductClass.product_type, JobStep.id)
            .join(JobStep, JobStep.product_class_id == ProductClass.id)
            .join(Job, Job.id == JobStep.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .where(ProcessingOrder.identifier == identifier)
            .order_by(JobStep.id)
        ).all()
    out: dict[str, list[int]] = {}
    for ptype, sid in rows:
        out.setdefault(ptype, []).append(sid)
    return out


def register_outputs(catalog: Catalog, job_step_id: int, facility: str = "local") -> list[int]:
    """Write the step's planned outputs to the facility's storage and register them, as a
    successful run's registration does (without running the processor)."""
    return register_planned(catalog, job_step_id, facility=facility)


def l1b_window() -> tuple[datetime, datetime]:
    """Ingestion window for the S5P tests: six hours of L0 and the AUX around them."""
    return DAY, DAY + timedelta(hours=6)


def sample_context(
    *, backend: str = "local", scratch: str = "/tmp/proseo-scratch", storage: str = "file:///tmp/proseo-data"
) -> StepContext:
    """A small StepContext built by hand (no catalogue): one input, two outputs."""
    start, stop = DAY, DAY + timedelta(hours=1)
    spec = JobSpec(
        job_step_id=42,
        mission="S5P",
        processor="L2_O3",
        version="01.04.00",
        configuration="2025.01",
        mode="OFFL",
        file_class="OPER",
        tasks=[TaskSpec(name="O3_TCL", version="01.04.00")],
        command=["s5p-l2", "O3"],
        sensing_start=start,
        sensing_stop=stop,
        dynamic_parameters={"threshold": 0.5, "flag": True, "n": 3, "name": "x"},
        inputs=[
            InputFile(
                product_id=7,
                product_type="L1B_RA_BD3",
                file_name="in.nc",
                storage="local",
                key="L1B_RA_BD3/2025/03/01/in.nc",
                size=3,
                md5="0" * 32,
                sha256="0" * 64,
                start=start,
                stop=stop,
            )
        ],
        outputs=[
            OutputSpec(
                product_type="L2__O3____",
                file_name="out.nc",
                key="L2__O3____/2025/03/01/out.nc",
                start=start,
                stop=stop,
                parameters={"collection": 3},
            ),
            OutputSpec(
                product_type="L2__O3____",
                file_name="out2.nc",
                key="L2__O3____/2025/03/01/out2.nc",
                start=start,
                stop=stop,
            ),
        ],
        storages={"local": StorageRef(url=storage)},
        output_storage="local",
        log_key="logs/o1/42/processor.log",
        job_order_key="joborders/o1/42/JobOrder.42.xml",
        max_run_time_s=3600,
    )
    kube = backend == "kubernetes"
    return StepContext(
        spec=spec,
        mission="S5P",
        order_identifier="o1",
        order_id=1,
        priority=50,
        facility="cloud" if kube else "local",
        backend=backend,
        scratch_path=scratch,
        image="proseo/s5p-l2:1.4.0",
        tasks=(TaskResources("O3_TCL", "1", "2Gi"),),
        min_disk="1Gi",
        max_run_time_s=3600.0,
        pool="proseo__s5p__local",
        pool_size=2,
        namespace="s5p-processing" if kube else None,
        node_selector={"proseo.io/pool": "processing"} if kube else {},
        service_account="proseo-processor" if kube else None,
    )


def plan_cloud_l1b(catalog: Catalog, tmp: Path) -> int:
    """Ingest one orbit's inputs and plan its L1B run on the Kubernetes facility; the step id."""
    start, stop = l1b_window()
    ingest(catalog, "S5P", start, stop, tmp)
    orbit = orbit_inside(catalog, start, stop)
    plan(
        catalog,
        "S5P",
        requested_classes=["L1B_______"],
        orbit_from=orbit,
        orbit_to=orbit,
        output_parameters=COLLECTION,
        facility="cloud",
        priority=70,
        identifier="cloud-l1b",
    )
    (step,) = steps_of(catalog, "cloud-l1b")["L1B_______"]
    return step
