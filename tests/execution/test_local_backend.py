"""The local backend: a serialisable operator around ``run_wrapper`` (the wrapper as a subprocess).

Most cases run ``run_wrapper`` against a stand-in wrapper written here (it prints a
manifest, fails, babbles or hangs on request), so the subprocess handling is tested
independently of the real wrapper. One case runs the real ``proseo-wrapper`` with the
real sample processor for a planned SKY night; it is skipped while the wrapper's
``--help`` does not work.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from tests_execution_helpers import DAY, ingest, plan, sample_context, steps_of

from proseo.catalog.db import Catalog
from proseo.execution import ExecutionError, StepContext, backend_for, build_job_spec
from proseo.execution.local import LocalWrapperOperator, find_wrapper, run_wrapper, subprocess_env
from proseo.storage import open_storage
from proseo.wrapper.spec import Manifest, Status

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


@pytest.fixture
def stand_in(tmp_path: Path) -> list[str]:
    script = tmp_path / "stand_in_wrapper.py"
    script.write_text(STAND_IN)
    return [sys.executable, str(script)]


@pytest.fixture
def ctx(tmp_path: Path) -> StepContext:
    return sample_context(scratch=str(tmp_path / "scratch"), storage=f"file://{tmp_path / 'data'}")


def test_operator_arguments_are_plain_json(ctx: StepContext, stand_in: list[str]) -> None:
    op = backend_for("local").make_task(ctx, task_id="step_42", retries=2, pool=ctx.pool, priority_weight=7)
    assert isinstance(op, LocalWrapperOperator)
    assert (op.task_id, op.retries, op.pool, op.priority_weight) == ("step_42", 2, ctx.pool, 7)
    # Only serialisable arguments: the step context as a dict and the wrapper command.
    own = [
        p for p in inspect.signature(LocalWrapperOperator.__init__).parameters if p not in ("self", "kwargs")
    ]
    assert own == ["step", "wrapper"]
    again = json.loads(json.dumps(op.step))
    assert again == op.step and StepContext.from_dict(again) == ctx
    rebuilt = LocalWrapperOperator(task_id="step_42", step=again, wrapper=stand_in)
    assert json.loads(json.dumps(rebuilt.wrapper)) == stand_in
    with pytest.raises(ExecutionError, match="invalid step context"):
        LocalWrapperOperator(task_id="broken", step={"spec": {}})


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


def test_operator_returns_the_manifest_and_fails_on_failed(ctx: StepContext, stand_in: list[str]) -> None:
    def op(mode: str) -> LocalWrapperOperator:
        return LocalWrapperOperator(
            task_id=f"t_{mode}", step=ctx.to_dict(), wrapper=[*stand_in, "--mode", mode]
        )

    result = op("ok").execute(context={})
    assert json.loads(json.dumps(result)) == result  # the XCom value is plain JSON
    assert Manifest.model_validate(result).status is Status.SUCCESS
    assert Manifest.model_validate(op("warning").execute(context={})).status is Status.WARNING

    with pytest.raises(AirflowException) as info:
        op("fail").execute(context={})
    assert not isinstance(info.value, AirflowFailException)  # a processor failure may be retried
    message = str(info.value)
    assert "FAILED at stage run" in message and "exit code 134" in message
    assert message.endswith(f"processor log: {ctx.log_url}")

    with pytest.raises(AirflowFailException, match="FAILED at stage spec"):  # no retry: same spec, same end
        op("failspec").execute(context={})


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


def test_on_kill_ends_the_wrapper_process_group(ctx: StepContext, stand_in: list[str]) -> None:
    op = LocalWrapperOperator(task_id="t", step=ctx.to_dict(), wrapper=[*stand_in, "--mode", "sleep"])
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context={})
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while op._process is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the stand-in get going
    op.on_kill()
    thread.join(30)
    assert not thread.is_alive()
    assert op._process.returncode is not None and op._process.returncode < 0  # killed by a signal
    assert outcome and isinstance(outcome[0], ExecutionError)


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
