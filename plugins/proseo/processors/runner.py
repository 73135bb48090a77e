"""The run of one sample processor: read the Job Order, hash every input, write every output.

What makes the samples useful in tests is that their outputs are a pure function of
the Job Order and the input bytes: the body names each input with its SHA-256 and a
combined digest, so provenance can be checked end to end and a changed input always
changes the output. Failure modes are switched by the dynamic processing parameter
``proseo_test_mode`` so chains can exercise the orchestrator's error handling with
the same binaries, and ``proseo_test_seconds`` makes a run take that long before it
writes, so a test can catch a step in the middle of its work.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

from proseo.processors.ipf import IpfLog, JobOrder, JobOrderError, OutputSpec, read_job_order

EXIT_OK = 0
EXIT_WARNING = 3
EXIT_MISSING_INPUT = 128
EXIT_BAD_JOB_ORDER = 129
EXIT_FAILED = 130
EXIT_INTERNAL = 131

TEST_MODE = "proseo_test_mode"
TEST_MODES = ("warn", "fail", "hang", "partial")
TEST_SECONDS = "proseo_test_seconds"
MAX_TEST_SECONDS = 3600.0
PRODUCT_FORMAT = "proseo-sample-product/1"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class InputFact:
    """One input file as read: its type, the name it is known by, size and SHA-256."""

    file_type: str
    file_name: str
    size: int
    sha256: str


class MissingInput(Exception):
    """An input file named in the Job Order is absent or unreadable (IPF exit 128)."""


Details = Callable[[JobOrder, OutputSpec, Sequence[InputFact]], dict[str, object]]
#: The GeoJSON footprint of an output (``footprint`` of its meta.json), or None for none.
Footprint = Callable[[JobOrder, OutputSpec], "dict[str, object] | None"]


def _no_details(job: JobOrder, output: OutputSpec, inputs: Sequence[InputFact]) -> dict[str, object]:
    return {}


def _no_footprint(job: JobOrder, output: OutputSpec) -> dict[str, object] | None:
    return None


@dataclass(frozen=True)
class Processor:
    """A sample processor: its command, the input types it needs and what it adds to a product."""

    command: str
    expected_inputs: tuple[str, ...] = ()
    details: Details = field(default=_no_details)
    footprint: Footprint = field(default=_no_footprint)


def _files(name: str, name_type: str) -> Iterator[tuple[str, Path]]:
    """The files behind one File_Name, with the names they are recorded under."""
    path = Path(name)
    if name_type in ("Stem", "Regexp"):
        siblings = sorted(path.parent.iterdir()) if path.parent.is_dir() else []
        if name_type == "Stem":
            matches = [p for p in siblings if p.name.startswith(path.name)]
        else:
            try:
                pattern = re.compile(path.name)
            except re.error as exc:
                raise JobOrderError(f"File_Name {name!r} is not a valid regular expression: {exc}") from None
            matches = [p for p in siblings if pattern.fullmatch(p.name)]
        if not matches:
            raise MissingInput(f"no input file matches {name} ({name_type})")
        for match in matches:
            yield from _files(str(match), "Physical")
    elif path.is_dir():  # a directory product (or File_Name_Type Directory): every file in it
        for sub in sorted(p for p in path.rglob("*") if p.is_file()):
            yield f"{path.name}/{sub.relative_to(path).as_posix()}", sub
    elif path.is_file():
        yield path.name, path
    else:
        raise MissingInput(f"input file not found: {name}")


def sha256_of(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read completely in chunks (inputs may be gigabytes)."""
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise MissingInput(f"input file unreadable: {path}: {exc.strerror}") from None
    return size, digest.hexdigest()


def read_inputs(job: JobOrder, log: IpfLog) -> list[InputFact]:
    """Read every file of every input completely; sorted so the order in the Job Order is moot.

    Configuration files are listed as Inputs too (the interface says so); they are left
    to :func:`_config_facts`, which tolerates their absence.
    """
    facts = []
    for spec in job.inputs:
        for name in spec.file_names:
            if name in job.config_files:
                continue
            for recorded, path in _files(name, spec.file_name_type):
                size, sha = sha256_of(path)
                facts.append(InputFact(spec.file_type, recorded, size, sha))
                log.debug(f"read input {spec.file_type} {recorded}: {size} bytes, sha256 {sha}")
    return sorted(facts, key=lambda f: (f.file_name, f.file_type, f.sha256))


def combined_digest(facts: Sequence[InputFact]) -> str:
    """One SHA-256 over the sorted (type, name, sha256) of all inputs."""
    digest = hashlib.sha256()
    for fact in facts:
        digest.update(f"{fact.file_type}\t{fact.file_name}\t{fact.sha256}\n".encode())
    return digest.hexdigest()


def _config_facts(job: JobOrder, log: IpfLog) -> list[dict[str, object]]:
    """Configuration files are hashed when present; absent ones are recorded and warned about.

    Their paths point into the processor image, which a local run may not have.
    """
    facts: list[dict[str, object]] = []
    for name in job.config_files:
        path = Path(name)
        if path.is_file():
            size, sha = sha256_of(path)
            facts.append({"file_name": path.name, "size": size, "sha256": sha})
        else:
            log.warning(f"configuration file not found, using built-in defaults: {name}")
            facts.append({"file_name": path.name, "size": None, "sha256": None})
    return facts


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary sibling so a killed processor never leaves a half-written output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def write_output(
    processor: Processor,
    job: JobOrder,
    output: OutputSpec,
    facts: Sequence[InputFact],
    configs: list[dict[str, object]],
) -> Path:
    """Write one output product and its ``<output>.meta.json``; return the product's path."""
    digest = combined_digest(facts)
    body = {
        "format": PRODUCT_FORMAT,
        "processor": {"command": processor.command, "name": job.processor_name, "version": job.version},
        "tasks": [{"name": name, "version": version} for name, version in job.tasks],
        "job_order": job.path.name,
        "product": {
            "file_type": output.file_type,
            "file_name": Path(output.file_name).name,
            **processor.details(job, output, facts),
        },
        "sensing": {"start": job.sensing_start, "stop": job.sensing_stop},
        "parameters": dict(sorted(job.parameters.items())),
        "inputs": [asdict(fact) for fact in facts],
        "config_files": configs,
        "input_digest": digest,
    }
    data = (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()
    path = Path(output.file_name)
    target = path / "product.json" if output.file_name_type == "Directory" else path
    _write_atomically(target, data)
    # A few values, all about provenance: the wrapper reports them and the catalogue keeps them
    # as product parameters, next to the facts (type, times) it already has.
    meta = {
        "input_count": len(facts),
        "input_bytes": sum(f.size for f in facts),
        "input_digest": digest,
        "job_order": job.path.name,
    }
    footprint = processor.footprint(job, output)
    if footprint is not None:  # where the product looks (the catalogue's Footprint)
        meta["footprint"] = footprint
    meta_path = path.with_name(path.name + ".meta.json")
    _write_atomically(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    return path


def _hang(log: IpfLog) -> NoReturn:
    log.warning(f"{TEST_MODE}=hang: waiting until killed")
    while True:
        time.sleep(3600)


def _test_seconds(job: JobOrder) -> float:
    """How long the run pretends to work (``proseo_test_seconds``, 0 if not given)."""
    raw = job.parameters.get(TEST_SECONDS, "")
    if raw == "":
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0.0 <= seconds <= MAX_TEST_SECONDS:  # also false for NaN
        bounds = f"from 0 to {MAX_TEST_SECONDS:g}"
        raise JobOrderError(f"dynamic parameter {TEST_SECONDS}={raw!r} is not a number of seconds {bounds}")
    return seconds


def _process(processor: Processor, job: JobOrder, log: IpfLog) -> int:
    mode = job.parameters.get(TEST_MODE, "")
    if mode and mode not in TEST_MODES:
        log.error(f"dynamic parameter {TEST_MODE}={mode!r} is not one of {', '.join(TEST_MODES)}")
        return EXIT_BAD_JOB_ORDER
    tasks = ", ".join(name for name, _ in job.tasks)
    log.info(f"job order {job.path.name} ({job.dialect}), tasks {tasks}")
    log.info(f"sensing {job.sensing_start} .. {job.sensing_stop}; {len(job.outputs)} output(s) planned")
    given = {spec.file_type for spec in job.inputs}
    for missing in (t for t in processor.expected_inputs if t not in given):
        log.warning(f"no input of type {missing} in the Job Order")
    try:
        seconds = _test_seconds(job)
        facts = read_inputs(job, log)
        configs = _config_facts(job, log)
    except MissingInput as exc:
        log.error(str(exc))
        return EXIT_MISSING_INPUT
    except JobOrderError as exc:
        log.error(f"malformed Job Order: {exc}")
        return EXIT_BAD_JOB_ORDER
    log.progress(f"read {len(facts)} input file(s), {sum(f.size for f in facts)} bytes")
    if mode == "fail":
        log.error(f"processing failed ({TEST_MODE}=fail); no outputs written")
        return EXIT_FAILED
    if mode == "hang":
        _hang(log)
    if seconds:
        log.progress(f"{TEST_SECONDS}: working for {seconds:g} s")
        time.sleep(seconds)
    outputs = job.outputs[:1] if mode == "partial" else job.outputs
    for output in outputs:
        path = write_output(processor, job, output, facts, configs)
        log.info(f"wrote {output.file_type} {path}")
    if mode == "partial":
        log.info(f"{TEST_MODE}=partial: wrote {len(outputs)} of {len(job.outputs)} output(s)")
    if mode == "warn":
        log.warning(f"{TEST_MODE}=warn: outputs written, finishing with a warning")
        return EXIT_WARNING
    log.info("processing finished")
    return EXIT_OK


def run(processor: Processor, argv: Sequence[str]) -> int:
    """Run as ``<command> JOB_ORDER.xml``; return the IPF exit code."""
    log = IpfLog(processor.command)
    if len(argv) != 1:
        log.error(f"usage: {processor.command} JOB_ORDER.xml (got {len(argv)} arguments)")
        return EXIT_BAD_JOB_ORDER
    try:
        job = read_job_order(Path(argv[0]))
    except JobOrderError as exc:
        log.error(f"malformed Job Order: {exc}")
        return EXIT_BAD_JOB_ORDER
    log.configure(job)
    try:
        return _process(processor, job, log)
    except OSError as exc:
        log.error(f"cannot write output: {exc}")
        return EXIT_INTERNAL
    except Exception as exc:  # an uncaught traceback would exit 1, which IPF reads as a mere warning
        log.error(f"internal error: {type(exc).__name__}: {exc}")
        return EXIT_INTERNAL
