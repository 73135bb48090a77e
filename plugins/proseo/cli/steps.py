"""``proseo order steps`` and ``proseo order step``: an order's job steps from the command line.

The same documents as the REST API's job-step routes (``proseo.api.schemas``), so an
operator without a browser sees why a step failed (its reason, exit code and log),
which inputs each step was given and why, and can print the job specification the
wrapper would get (``--spec``), to run a processor by hand with ``proseo-wrapper run``.
"""

from __future__ import annotations

import click
from rich.markup import escape

from proseo.api.schemas import job_step_detail, job_steps
from proseo.cli.context import open_catalog
from proseo.cli.order import order
from proseo.cli.output import console, print_json, table
from proseo.errors import NotFoundError
from proseo.execution.jobspec import build_job_spec
from proseo.planning import orders as ops


@order.command("steps")
@click.option("--mission", "-m", required=True)
@click.option("--state", help="Only job steps in this state (e.g. FAILED).")
@click.option("--limit", default=100, show_default=True)
@click.option("--offset", default=0)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.argument("identifier")
@click.pass_context
def steps(
    ctx: click.Context, mission: str, state: str | None, limit: int, offset: int, fmt: str, identifier: str
) -> None:
    """An order's job steps: state, window, try, exit code and why a step failed."""
    catalog = open_catalog(ctx)
    with catalog.session() as session:
        page = job_steps(
            session, ops.get_order(session, mission, identifier), state=state, limit=limit, offset=offset
        )
    if fmt == "json":
        print_json(page.model_dump(mode="json"))
        return
    table(
        f"{mission}/{identifier}: job steps {offset + 1}-{offset + len(page.items)} of {page.total}",
        ["step", "class", "window", "state", "try", "exit", "reason"]
        + (["facility", "why there"] if any(s.facility for s in page.items) else []),
        [
            [
                s.id,
                s.product_type,
                f"{s.start:%Y-%m-%dT%H:%M:%S} {s.stop:%Y-%m-%dT%H:%M:%S}",
                s.state,
                s.try_number or "",
                "" if s.exit_code is None else s.exit_code,
                s.failure_reason or "",
            ]
            + ([s.facility or "", s.facility_reason or ""] if any(x.facility for x in page.items) else [])
            for s in page.items
        ],
    )


@order.command("step")
@click.option("--mission", "-m", required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--spec",
    is_flag=True,
    help="Print the job specification the wrapper would get (JSON, for proseo-wrapper run).",
)
@click.argument("identifier")
@click.argument("step_id", type=click.IntRange(min=1, max=2**63 - 1))
@click.pass_context
def step(ctx: click.Context, mission: str, fmt: str, spec: bool, identifier: str, step_id: int) -> None:
    """One job step: its outputs, each input's rule, what was chosen and why, its log."""
    catalog = open_catalog(ctx)
    with catalog.session() as session:
        o = ops.get_order(session, mission, identifier)
        detail = job_step_detail(session, o, step_id)
        if detail is None:
            raise NotFoundError(f"{mission}/{identifier} has no job step {step_id}")
        if spec:
            print(build_job_spec(session, step_id).spec.model_dump_json(indent=2))
            return
    if fmt == "json":
        print_json(detail.model_dump(mode="json"))
        return
    console.print(
        f"[bold]job step {detail.id}[/bold]  {escape(detail.product_type)}  {detail.state}  "
        f"{detail.start:%Y-%m-%dT%H:%M:%S}/{detail.stop:%Y-%m-%dT%H:%M:%S}  {escape(detail.processor)}"
    )
    if detail.failure_reason:
        console.print(f"reason: {detail.failure_reason}", markup=False, soft_wrap=True)
    if detail.facility:
        console.print(f"facility: {detail.facility} ({detail.facility_reason})", markup=False, soft_wrap=True)
    if detail.run_ref:
        console.print(f"run: {detail.run_ref}", markup=False)
    if detail.exit_code is not None or detail.log_url:
        console.print(f"exit code: {detail.exit_code}  log: {detail.log_url or '-'}", markup=False)
    table(
        "planned outputs",
        ["#", "class", "file", "product"],
        [[o.index, o.product_type, o.file_name, o.product_id or ""] for o in detail.planned_outputs],
    )
    for i in detail.inputs:
        mark = "satisfied" if i.satisfied else "NOT satisfied"
        console.print(f"\ninput {i.source_class} ({mark}): {i.rule}", markup=False, soft_wrap=True)
        console.print(f"  why: {i.explanation}", markup=False, soft_wrap=True)
        for c in i.chosen:
            via = f" from job step {c.via_job_step}" if c.via_job_step else ""
            console.print(f"  - product {c.product_id} {c.name or ''}{via} by {c.policy}", markup=False)
        for u in i.upstream:
            if u.product_id is None:
                gone = " (given up)" if u.given_up_at else ""
                console.print(
                    f"  - output {u.output_index} of job step {u.job_step_id} ({u.order}, {u.state}): "
                    f"{u.file_name}{gone}",
                    markup=False,
                )
