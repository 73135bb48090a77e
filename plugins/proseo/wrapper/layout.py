"""The working directory of a job step, and the names that may appear in it.

Every path the wrapper writes or the processor is told about is *relative* to the
working directory, so the Job Order (and the manifest) is the same for the same spec
wherever it runs. Names come from the spec, which comes from the catalogue, which
comes from files other people named: each one is checked here, before anything is
written, so that no name can climb out of the working directory.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from proseo.wrapper.failure import WrapperError

if TYPE_CHECKING:  # the spec imports pydantic; sample processors import this module via joborder
    from proseo.wrapper.spec import InputFile, JobSpec, OutputSpec

INPUTS_DIR = "inputs"
OUTPUTS_DIR = "outputs"
LOG_NAME = "processor.log"
META_SUFFIX = ".meta.json"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a relative path inside the working directory (None if it can)."""
    if not name:
        return "it is empty"
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        return "it is an absolute path"
    if "\\" in name:
        return "it contains a backslash"
    if _CONTROL.search(name):
        return "it contains control characters"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "it contains an empty, '.' or '..' path segment"
    return None


def safe_name(name: str, what: str, *, single: bool = False) -> str:
    """``name`` if it stays inside the directory it is joined to; else WrapperError naming it."""
    problem = name_problem(name)
    if problem is None and single and "/" in name:
        problem = "it must be a single path segment"
    if problem is not None:
        raise WrapperError("spec", f"{what} {name!r} is refused: {problem}")
    return name


def job_order_name(job_step_id: int | str) -> str:
    """File name of the Job Order: it cites the job step, which products may keep as provenance."""
    return f"JobOrder_{_UNSAFE_ID.sub('_', str(job_step_id))}.xml"


def input_path(f: InputFile) -> str:
    """Where an input file is staged, relative to the working directory."""
    product_type = safe_name(f.product_type, "input product type", single=True)
    return f"{INPUTS_DIR}/{product_type}/{safe_name(f.file_name, 'input file name')}"


def output_path(o: OutputSpec) -> str:
    """Where the processor must write a planned output, relative to the working directory."""
    return f"{OUTPUTS_DIR}/{safe_name(o.file_name, 'planned output file name')}"


def check_spec_names(spec: JobSpec) -> None:
    """Refuse, before anything is written, every spec name that could escape the working directory."""
    _no_duplicates((input_path(f) for f in spec.inputs), "input file")
    outputs = [output_path(o) for o in spec.outputs]
    _no_duplicates(outputs, "planned output")
    for a in outputs:
        for b in outputs:
            if b.startswith(a + "/"):
                raise WrapperError("spec", f"planned output {b!r} lies inside planned output {a!r}")


def _no_duplicates(paths: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise WrapperError("spec", f"two {what}s have the same path {path!r}")
        seen.add(path)


def reset_workdir(workdir: Path) -> None:
    """Create the working directory; drop what an earlier attempt there left in our own places.

    Only the wrapper's own entries are removed (inputs, outputs, Job Order, log), so a
    caller may keep the spec file in the same directory; a retry then sees no stale outputs.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for name in (INPUTS_DIR, OUTPUTS_DIR, LOG_NAME):
        path = workdir / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    for old in workdir.glob("JobOrder_*.xml"):
        old.unlink()
    (workdir / INPUTS_DIR).mkdir()
    (workdir / OUTPUTS_DIR).mkdir()
