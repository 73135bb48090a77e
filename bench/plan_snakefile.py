"""A Snakefile with the job steps and edges of a plan, and `snakemake -n` timed on it.

bench/plan.py compares the planner with a general workflow engine resolving the same
dependency graph. The Snakefile is written from the plan itself, so the job count and the
edges are the same by construction: one rule per processed class (its outputs are the
step's output classes, keyed by the slice), one job per planned step, and each job's
inputs are the files its step's chosen inputs name: an ingested product (touched in the
work directory, so snakemake finds it present) or an output of another planned step.
snakemake still does its own planning: it matches every input file to the rule that
makes it, stats the present files, builds and orders the DAG, and counts the jobs.

Only the plan's choices are looked up (a table of inputs per job); evaluating selection
rules over a catalogue is the part snakemake has no counterpart for.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from proseo.errors import ProseoError
from proseo.planning.model import Plan, StepPlan

SLICE = r"\d{8}T\d{6}_\d{8}T\d{6}"
TOTAL = re.compile(r"^total\s+(\d+)\s*$", re.MULTILINE)


class SnakefileError(ProseoError):
    """The plan cannot be written as a Snakefile of the same graph, or snakemake disagrees."""


@dataclass(frozen=True)
class Workflow:
    """What :func:`write_workflow` wrote: the graph's size, to check snakemake's against."""

    snakefile: Path
    jobs: int  # job steps of the plan (the `all` rule adds one snakemake job)
    edges: int
    present: int  # ingested input files touched in the work directory
    rules: int


@dataclass(frozen=True)
class DryRun:
    seconds: float
    cpu: float  # user + system time of snakemake's process: less sensitive to a busy machine
    jobs: int  # snakemake's "Job stats" total, the `all` job included
    log: Path


def slice_key(step: StepPlan) -> str:
    return f"{step.slice.start:%Y%m%dT%H%M%S}_{step.slice.stop:%Y%m%dT%H%M%S}"


def output_path(step: StepPlan, output: int) -> str:
    return f"{step.outputs[output].product_type}/{slice_key(step)}"


def _step_inputs(step: StepPlan, by_index: dict[int, StepPlan]) -> tuple[list[str], set[int], set[str]]:
    """The files a step reads, the steps that make some of them, and those that exist already."""
    files: set[str] = set()
    upstream: set[int] = set()
    present: set[str] = set()
    for inp in step.inputs:
        for chosen in inp.chosen:
            if chosen.step is not None:
                files.add(output_path(by_index[chosen.step], chosen.output or 0))
                upstream.add(chosen.step)
            elif chosen.product_id is not None:
                path = f"inputs/{chosen.product_type}/{chosen.product_id}"
                files.add(path)
                present.add(path)
            else:
                raise SnakefileError(
                    f"step {step.index} ({step.product_type}): input {inp.origin!r} waits for an "
                    "output another order plans; the bench plans on a fresh catalogue"
                )
    return sorted(files), upstream, present


def write_workflow(plan: Plan, work: Path) -> Workflow:
    """Write ``Snakefile`` and its input table into ``work`` and touch the present inputs."""
    by_index = {s.index: s for s in plan.steps}
    outputs: dict[str, list[str]] = {}
    inputs: dict[str, list[str]] = {}
    targets: list[str] = []
    present: set[str] = set()
    edges = 0
    for step in plan.steps:
        classes = [o.product_type for o in step.outputs]
        if outputs.setdefault(step.product_type, classes) != classes:
            raise SnakefileError(f"step {step.index}: {step.product_type} steps differ in their outputs")
        files, upstream, found = _step_inputs(step, by_index)
        if upstream != step.upstream:
            raise SnakefileError(
                f"step {step.index} ({step.product_type}): chosen inputs come from steps "
                f"{sorted(upstream)}, its upstream steps are {sorted(step.upstream)}"
            )
        edges += len(upstream)
        present |= found
        key = output_path(step, 0)
        if key in inputs:
            raise SnakefileError(f"two job steps make {key}")
        inputs[key] = files
        if step.requested:
            targets.append(key)
    work.mkdir(parents=True, exist_ok=True)
    for path in present:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).touch()
    (work / "plan_inputs.json").write_text(json.dumps({"targets": targets, "inputs": inputs}))
    snakefile = work / "Snakefile"
    snakefile.write_text(_snakefile(len(plan.steps), outputs))
    return Workflow(snakefile, len(plan.steps), edges, len(present), len(outputs))


def _snakefile(steps: int, outputs: dict[str, list[str]]) -> str:
    lines = [
        f"# Written by bench/plan.py from a plan of {steps} job steps (one rule per processed class).",
        "import json",
        "",
        'with open("plan_inputs.json") as f:',
        "    PLAN = json.load(f)",
        'INPUTS = PLAN["inputs"]',
        "",
        "wildcard_constraints:",
        f'    slice=r"{SLICE}"',
        "",
        "rule all:",
        '    input: PLAN["targets"]',
    ]
    for ptype, classes in outputs.items():
        lines += [
            "",
            f"rule {ptype}:",
            f'    input: lambda wc: INPUTS["{ptype}/" + wc.slice]',
            "    output: " + ", ".join(f'"{c}/{{slice}}"' for c in classes),
            '    shell: "touch {output}"',
        ]
    return "\n".join(lines) + "\n"


def dry_run(snakemake: Path, workflow: Workflow) -> DryRun:
    """Time ``snakemake -n`` on the workflow; its job count must be the plan's plus `all`."""
    work = workflow.snakefile.parent
    log = work / "snakemake-n.log"
    command = [str(snakemake), "-n", "--cores", "1", "-s", str(workflow.snakefile), "-d", str(work)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    text = log.read_text(errors="replace")
    if done.returncode != 0:
        raise SnakefileError(
            f"snakemake -n exited {done.returncode}; its output is in {log}:\n{text[-2000:]}"
        )
    totals = TOTAL.findall(text)
    if not totals:
        raise SnakefileError(f"no 'total' line in the Job stats of snakemake -n ({log})")
    jobs = int(totals[-1])
    if jobs != workflow.jobs + 1:
        raise SnakefileError(
            f"snakemake -n counted {jobs} jobs, the plan has {workflow.jobs} job steps (+1 for `all`)"
        )
    return DryRun(seconds, cpu, jobs, log)


def startup_seconds(snakemake: Path) -> float:
    """The interpreter start and import cost inside every snakemake run, for reading the ratio."""
    t0 = time.perf_counter()
    subprocess.run([str(snakemake), "--version"], capture_output=True, check=True)
    return time.perf_counter() - t0
