"""``proseo-wrapper run SPEC.json``: the entry point of processor containers and local runs.

``run --spec-env VAR`` reads the spec from an environment variable instead (how the
Kubernetes backend passes it to the pod).

stdout carries exactly one thing, the manifest JSON, because the local backend reads
it from there; the KubernetesPodOperator reads ``/airflow/xcom/return.json`` instead,
so it is written there too when that directory exists. Everything else (our log, the
processor's output) goes to stderr. Exit codes: 0 SUCCESS or WARNING, 1 FAILED (the
manifest is still printed), 2 an unusable spec (nothing on stdout; stderr names the field).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from proseo.settings import get_settings
from proseo.wrapper.job import run_job
from proseo.wrapper.spec import JobSpec, Manifest, Status

log = logging.getLogger("proseo.wrapper")
XCOM_DIR = Path("/airflow/xcom")
EXIT_OK, EXIT_FAILED, EXIT_BAD_SPEC = 0, 1, 2


class SpecError(Exception):
    """The spec file cannot be read or is not a valid job specification."""


def load_spec(path: Path | None = None, *, env: str | None = None) -> JobSpec:
    """Read and validate a spec (a file, or JSON in the environment variable ``env``).

    SpecError lists every problem with its field.
    """
    if env is not None:
        where = f"${env}"
        text = os.environ.get(env)
        if text is None:
            raise SpecError(f"cannot read the job specification: the environment variable {env} is not set")
        data = text.encode()
    else:
        assert path is not None
        where = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SpecError(f"cannot read the job specification {path}: {exc.strerror}") from None
    try:
        return JobSpec.model_validate_json(data)
    except ValidationError as exc:
        lines = [f"invalid job specification {where}: {exc.error_count()} error(s)"]
        for error in exc.errors(include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or "(spec)"
            lines.append(f"  {field}: {error['msg']}")
        raise SpecError("\n".join(lines)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="proseo-wrapper", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one job step and print its manifest")
    run.add_argument("spec", type=Path, nargs="?", help="the job specification (JSON file)")
    run.add_argument("--spec-env", metavar="VAR", help="read the spec (JSON) from this environment variable")
    run.add_argument("--workdir", type=Path, help="working directory (kept; default: a fresh temporary one)")
    run.add_argument("--keep-workdir", action="store_true", help="keep the temporary working directory")
    run.add_argument(
        "--xcom",
        type=Path,
        help=f"also write the manifest here (default: {XCOM_DIR}/return.json if it exists)",
    )
    return parser


def _fresh_workdir(job_step_id: int | str) -> Path:
    scratch = get_settings().scratch
    if scratch:
        scratch.mkdir(parents=True, exist_ok=True)
    label = re.sub(r"[^A-Za-z0-9._-]", "_", str(job_step_id))
    return Path(tempfile.mkdtemp(prefix=f"proseo-job-{label}-", dir=str(scratch) if scratch else None))


def _write_xcom(manifest_json: str, target: Path | None) -> None:
    if target is None and XCOM_DIR.is_dir():
        target = XCOM_DIR / "return.json"
    if target is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(manifest_json, encoding="utf-8")


def _terminated(signum: int, _: FrameType | None) -> None:
    """SIGTERM (pod deletion, a cancelled task) unwinds, so the processor group is terminated too."""
    raise SystemExit(128 + signum)


def run_command(args: argparse.Namespace) -> int:
    if (args.spec is None) == (args.spec_env is None):
        print("proseo-wrapper run: give either SPEC or --spec-env VAR", file=sys.stderr)
        return EXIT_BAD_SPEC
    try:
        spec = load_spec(args.spec, env=args.spec_env)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_SPEC
    owned = args.workdir is None
    workdir = _fresh_workdir(spec.job_step_id) if owned else args.workdir
    log.info("job step %s: working directory %s", spec.job_step_id, workdir)
    with contextlib.redirect_stdout(sys.stderr):  # stray prints must not corrupt the manifest
        manifest: Manifest = run_job(spec, workdir)
    text = manifest.model_dump_json()
    print(text, flush=True)
    try:
        _write_xcom(text, args.xcom)
    except OSError as exc:
        log.error("could not write the XCom file: %s", exc)
        return EXIT_FAILED
    failed = manifest.status is Status.FAILED
    if failed:
        log.error("job step %s FAILED at %s: %s", spec.job_step_id, manifest.stage, manifest.reason)
    if owned and not (failed or args.keep_workdir):
        shutil.rmtree(workdir, ignore_errors=True)
    elif owned:
        log.info("working directory kept at %s", workdir)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="proseo-wrapper %(levelname)s: %(message)s"
    )
    in_main_thread = threading.current_thread() is threading.main_thread()  # handlers only go there
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        return run_command(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
