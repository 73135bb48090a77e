"""One job step from spec to manifest: check, stage in, write the Job Order, run, collect, upload.

:func:`run_job` never raises for a failed job: the orchestrator always gets a
manifest, and a FAILED one says at which stage and why. It is the Python API the
local execution backend calls, and what ``proseo-wrapper run`` prints.

Determinism: the manifest holds no timings, no host paths and not the log's bytes
(a real processor logs timestamps), only where the log is kept; keys come from the
spec, so running the same spec twice stores the same keys and returns the same manifest.
"""

from __future__ import annotations

import logging
from pathlib import Path

from proseo.errors import ProseoError, StorageError
from proseo.storage import Storage, check_key, open_storage
from proseo.wrapper.collect import find_outputs, upload_outputs
from proseo.wrapper.failure import Stage, WrapperError
from proseo.wrapper.joborder import render_job_order, validate_job_order
from proseo.wrapper.layout import LOG_NAME, check_spec_names, job_order_name, reset_workdir
from proseo.wrapper.runner import run_processor
from proseo.wrapper.spec import JobSpec, Manifest, ManifestFile, ManifestProduct, Status
from proseo.wrapper.stagein import stage_inputs

log = logging.getLogger("proseo.wrapper")


def _check_keys(spec: JobSpec) -> None:
    """Refuse invalid storage keys before anything is written or uploaded."""
    keys = [("log_key", spec.log_key), ("job_order_key", spec.job_order_key)]
    keys += [(f"output {o.file_name!r} key", o.key) for o in spec.outputs]
    keys += [(f"input {f.file_name!r} key", f.key) for f in spec.inputs]
    for what, key in keys:
        try:
            check_key(key)
        except StorageError as exc:
            raise WrapperError("spec", f"{what}: {exc}") from None


class _Job:
    """The state of one run: where we are, and what has been kept so far."""

    def __init__(self, spec: JobSpec, workdir: Path, echo: bool) -> None:
        self.spec = spec
        self.workdir = workdir
        self.echo = echo
        self.stage: Stage = "spec"
        self.exit_code: int | None = None
        self.job_order: ManifestFile | None = None
        self.staged: list[int | str] = []  # product ids staged and verified (the lineage)
        self.log_path = workdir / LOG_NAME

    @property
    def output_storage(self) -> Storage:
        ref = self.spec.storages[self.spec.output_storage]
        return open_storage(ref.url, ref.options)

    def note(self, message: str) -> None:
        """A wrapper event: to our log (stderr) and into the kept processor log."""
        log.info(message)
        if self.log_path.parent.is_dir():
            with open(self.log_path, "a", encoding="utf-8") as out:
                out.write(f"[proseo-wrapper] {message}\n")

    def run(self) -> tuple[Status, str | None, list[ManifestProduct]]:
        spec = self.spec
        self.stage = "stage-in"
        stage_inputs(spec, self.workdir, self.note)
        self.staged = list(dict.fromkeys(f.product_id for f in spec.inputs if f.product_id is not None))

        self.stage = "job-order"
        name = job_order_name(spec.job_step_id)
        xml = render_job_order(spec)
        validate_job_order(xml)
        (self.workdir / name).write_bytes(xml)
        try:  # one Job Order per try, replaced by the next try (it is no product)
            info = self.output_storage.put_bytes(xml, spec.job_order_key, replace=True)
        except StorageError as exc:
            raise WrapperError("upload", f"the Job Order could not be stored: {exc}") from exc
        self.job_order = ManifestFile(
            file_name=name,
            key=spec.job_order_key,
            url=info.url,
            size=info.size,
            md5=info.md5,
            sha256=info.sha256,
            xxh128=info.xxh128 or None,
        )

        self.stage = "run"
        args = [*spec.command, name]
        self.note(f"running {args} (max run time {spec.max_run_time_s:g} s)")
        try:
            result = run_processor(
                args,
                cwd=self.workdir,
                log_path=self.log_path,
                max_run_time_s=spec.max_run_time_s,
                echo=self.echo,
            )
        except OSError as exc:
            raise WrapperError(
                "run", f"the processor {spec.command[0]!r} could not be started: {exc.strerror}"
            ) from exc
        if result.leftovers:
            self.note("the processor left processes behind; they were terminated")
        if result.timed_out:
            raise WrapperError(
                "run",
                f"the processor exceeded its maximum run time of {spec.max_run_time_s:g} s and was killed",
            )
        self.exit_code = code = result.exit_code
        assert code is not None
        self.note(f"the processor ended with exit code {code}")
        if code >= 128:
            raise WrapperError("run", f"the processor failed with exit code {code}")
        status, reason = Status.SUCCESS, None
        if code != 0:
            status, reason = Status.WARNING, f"the processor ended with warning exit code {code}"

        self.stage = "collect"
        found = find_outputs(spec, self.workdir)
        self.stage = "upload"
        products = upload_outputs(spec, found, self.note)
        self.note(f"stored {sum(len(f.files) for f in found)} file(s) of {len(found)} output product(s)")
        return status, reason, products

    def keep_log(self) -> str:
        """Upload the log (it matters most when the job failed); returns its URL.

        The log is per try and no product: the next try's log replaces it.
        """
        try:
            return self.output_storage.put_file(self.log_path, self.spec.log_key, replace=True).url
        except (StorageError, OSError) as exc:
            raise WrapperError("upload", f"the processor log could not be stored: {exc}") from exc


def run_job(spec: JobSpec, workdir: Path, *, echo: bool = True) -> Manifest:
    """Run one job step in ``workdir`` (created if missing) and return its manifest.

    A spec whose names could escape the working directory or whose keys are invalid is
    refused before anything is written or uploaded (FAILED at stage "spec", no log).
    Otherwise the log is uploaded whatever happens. ``echo`` copies the processor's
    output to our stderr as well.
    """
    workdir = Path(workdir).absolute()
    job = _Job(spec, workdir, echo)
    try:
        check_spec_names(spec)
        _check_keys(spec)
        reset_workdir(workdir)
    except WrapperError as exc:
        log.error("job step %s refused: %s", spec.job_step_id, exc.reason)
        return Manifest(job_step_id=spec.job_step_id, status=Status.FAILED, stage="spec", reason=exc.reason)
    except OSError as exc:
        refused = f"the working directory could not be prepared: {exc.strerror}"
        return Manifest(job_step_id=spec.job_step_id, status=Status.FAILED, stage="spec", reason=refused)

    log_url: str | None
    try:
        status, reason, products = job.run()
        job.stage = "upload"
        log_url = job.keep_log()
    except Exception as exc:
        stage, why = _failure(job.stage, exc)
        job.note(f"FAILED at {stage}: {why}")
        log_url = None
        try:
            log_url = job.keep_log()
        except WrapperError as upload_error:
            log.error("%s", upload_error.reason)
        return Manifest(
            job_step_id=spec.job_step_id,
            status=Status.FAILED,
            exit_code=job.exit_code,
            reason=why,
            stage=stage,
            inputs=job.staged,
            job_order=job.job_order,
            log_url=log_url,
        )
    if reason:
        log.warning("%s", reason)
    return Manifest(
        job_step_id=spec.job_step_id,
        status=status,
        exit_code=job.exit_code,
        reason=reason,
        inputs=job.staged,
        products=products,
        job_order=job.job_order,
        log_url=log_url,
    )


def _failure(stage: Stage, exc: Exception) -> tuple[Stage, str]:
    """The stage and reason a failure is reported with."""
    if isinstance(exc, WrapperError):
        return exc.stage, exc.reason
    if isinstance(exc, ProseoError):
        return stage, str(exc)
    log.exception("unexpected error at stage %s", stage)
    return stage, f"internal error: {type(exc).__name__}: {exc}"
