"""``proseo order``: create, plan and steer processing orders; look at their plans.

An order is named by its mission and identifier. ``create`` takes the request from a
YAML/JSON file or from options (options override the file); it goes through the same
pydantic model as the REST API, so an error names the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml
from pydantic import ValidationError
from rich.markup import escape

from proseo.api.schemas import job_steps, order_detail, order_summaries
from proseo.catalog.db import Catalog
from proseo.cli.context import open_catalog
from proseo.cli.output import console, err_console, print_json, table
from proseo.errors import MissingExtra, OrderError
from proseo.planning import lifecycle
from proseo.planning import orders as ops
from proseo.planning.graph import to_dot, to_svg, to_text
from proseo.planning.spec import OrderSpec
from proseo.planning.states import STEERING
from proseo.planning.store import order_graph
from proseo.settings import load_settings

if TYPE_CHECKING:
    from proseo.api.airflow_runs import AirflowRuns


@click.group()
def order() -> None:
    """Processing orders: create, plan, release, steer, inspect."""


def _pairs(values: tuple[str, ...], option: str) -> dict[str, dict[str, Any]]:
    """``CLASS.key=value`` options into {class: {key: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in values:
        target, sep, value = item.partition("=")
        cls, dot, key = target.rpartition(".")
        if not sep or not dot or not cls or not key:
            raise click.BadParameter(f"{item!r} is not CLASS.key=value", param_hint=option)
        out.setdefault(cls, {})[key] = yaml.safe_load(value) if value else ""
    return out


def _load_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise OrderError(f"{path}: cannot read the order request: {exc}") from exc
    if not isinstance(data, dict):
        raise OrderError(f"{path}: an order request must be a mapping of fields")
    return data


@order.command("create")
@click.option("--mission", "-m", required=True, help="Mission code.")
@click.option(
    "--file", "spec_file", type=click.Path(exists=True, path_type=Path), help="Order request (YAML/JSON)."
)
@click.option("--id", "identifier", help="Order identifier (unique per mission).")
@click.option("--class", "classes", multiple=True, help="Requested product class (repeatable).")
@click.option("--start", help="Start of the period (ISO 8601 UTC).")
@click.option("--stop", help="End of the period (ISO 8601 UTC).")
@click.option("--orbits", help="Orbit range FIRST..LAST instead of --start/--stop.")
@click.option("--mode", help="Processing mode (default: the mission's first).")
@click.option("--file-class", help="Output file class (default: the mission's first).")
@click.option("--slicing", help="TYPE[:DURATION[:OVERLAP]], e.g. CALENDAR_DAY or TIME_SLICE:6h:10min.")
@click.option("--pin", multiple=True, help="Configured processor to use (repeatable).")
@click.option("--input-only", multiple=True, help="Class never to produce, only to wait for (repeatable).")
@click.option("--filter", "filters", multiple=True, help="Input filter CLASS.key=value (repeatable).")
@click.option(
    "--output-param", multiple=True, help="Output parameter CLASS.key=value; CLASS * = every class."
)
@click.option("--dynamic-param", multiple=True, help="Dynamic processing parameter key=value (repeatable).")
@click.option("--priority", type=int, help="1..100 (default 50).")
@click.option(
    "--facility",
    multiple=True,
    help="Processing facility (default: the mission's default); given more than once, each job "
    "step gets one of them at release (the facility choice).",
)
@click.option("--plan", "do_plan", is_flag=True, help="Approve and plan at once.")
@click.option("--release", "do_release", is_flag=True, help="Approve, plan and release at once.")
@click.pass_context
def create(
    ctx: click.Context,
    mission: str,
    spec_file: Path | None,
    identifier: str | None,
    classes: tuple[str, ...],
    start: str | None,
    stop: str | None,
    orbits: str | None,
    mode: str | None,
    file_class: str | None,
    slicing: str | None,
    pin: tuple[str, ...],
    input_only: tuple[str, ...],
    filters: tuple[str, ...],
    output_param: tuple[str, ...],
    dynamic_param: tuple[str, ...],
    priority: int | None,
    facility: tuple[str, ...],
    do_plan: bool,
    do_release: bool,
) -> None:
    """Create an order (INITIAL); with --plan or --release carry it further."""
    data: dict[str, Any] = _load_file(spec_file) if spec_file else {}
    given = {
        "identifier": identifier,
        "start": start,
        "stop": stop,
        "processing_mode": mode,
        "output_file_class": file_class,
        "priority": priority,
        "facility": facility[0] if len(facility) == 1 else None,
        "facilities": list(facility) if len(facility) > 1 else None,
    }
    data.update({k: v for k, v in given.items() if v is not None})
    for key, values in (
        ("requested_classes", classes),
        ("configured_processors", pin),
        ("input_only_classes", input_only),
    ):
        if values:
            data[key] = list(values)
    if orbits:
        first, sep, last = orbits.partition("..")
        if not sep or not first.isdigit() or not last.isdigit():
            raise click.BadParameter(f"{orbits!r} is not FIRST..LAST", param_hint="--orbits")
        data["orbit_from"], data["orbit_to"] = int(first), int(last)
    if slicing:
        parts = slicing.split(":")
        data["slicing"] = {
            "type": parts[0].upper(),
            **({"duration": parts[1]} if len(parts) > 1 else {}),
            **({"overlap": parts[2]} if len(parts) > 2 else {}),
        }
    if filters:
        data["input_filters"] = {**data.get("input_filters", {}), **_pairs(filters, "--filter")}
    if output_param:
        data["output_parameters"] = {
            **data.get("output_parameters", {}),
            **_pairs(output_param, "--output-param"),
        }
    for item in dynamic_param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--dynamic-param")
        data.setdefault("dynamic_parameters", {})[key] = yaml.safe_load(value) if value else ""
    try:
        spec = OrderSpec.model_validate(data)
    except ValidationError as exc:
        where = f"{spec_file}: " if spec_file else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(order)'}: {e['msg']}" for e in exc.errors()
        )
        raise OrderError(f"{where}invalid order request: {problems}", mission=mission) from exc
    catalog = open_catalog(ctx)
    with catalog.session() as session:
        created = ops.create_order(session, mission, spec)
        console.print(f"created order {mission}/{created.identifier} (INITIAL)", markup=False)
    if do_plan or do_release:
        lifecycle.approve_order(catalog, mission, spec.identifier)
        _plan(catalog, mission, spec.identifier, lifecycle.DEFAULT_MAX_STEPS)
    if do_release:
        lifecycle.release_order(catalog, mission, spec.identifier)
        console.print(f"released {mission}/{spec.identifier}", markup=False)


def _plan(catalog: Catalog, mission: str, identifier: str, max_steps: int) -> None:
    plan = lifecycle.plan_order(catalog, mission, identifier, max_steps=max_steps)
    summary = plan.summary()
    classes = ", ".join(f"{n} {c}" for c, n in summary["by_class"].items()) or "none"
    console.print(
        f"planned {mission}/{identifier}: {summary['job_steps']} job steps ({classes}), "
        f"{summary['edges']} edges, {summary['reused']} requested products exist already, "
        f"{summary['waiting_for_input']} steps waiting for input, "
        f"{summary.get('awaiting_other_orders', 0)} waiting for products other orders make, "
        f"{summary['catalogue_queries']} catalogue queries",
        markup=False,
        soft_wrap=True,
    )


@order.command("plan")
@click.option("--mission", "-m", required=True)
@click.argument("identifier")
@click.option(
    "--max-steps",
    type=int,
    default=lifecycle.DEFAULT_MAX_STEPS,
    show_default=True,
    help="Refuse plans with more job steps than this.",
)
@click.pass_context
def plan_cmd(ctx: click.Context, mission: str, identifier: str, max_steps: int) -> None:
    """Plan an APPROVED (or PLANNING_FAILED) order; approves an INITIAL one first."""
    catalog = open_catalog(ctx)
    with catalog.session() as session:
        state = ops.get_order(session, mission, identifier).state
    if state == "INITIAL":
        lifecycle.approve_order(catalog, mission, identifier)
    _plan(catalog, mission, identifier, max_steps)


def _operation(name: str, run: Callable[..., Any], help_text: str, *, with_force: bool = False) -> None:
    @click.option("--mission", "-m", required=True)
    @click.argument("identifier")
    @click.option("--message", help="Reason, kept in the order's history.")
    @click.pass_context
    def command(ctx: click.Context, mission: str, identifier: str, message: str | None, **kw: Any) -> None:
        catalog = open_catalog(ctx)
        force = bool(kw.get("force"))
        # Before the catalogue changes: a missing extra must not leave a half-done operation.
        client = _steering_client() if name in STEERING else None
        result = run(catalog, mission, identifier, message=message, force=force)
        console.print(f"{mission}/{identifier}: {result.state}", markup=False)
        if name in STEERING:
            _steer(client, name, result.dag_id, force=force)

    command.__doc__ = help_text
    if with_force:
        command = click.option("--force", is_flag=True, help="Stop running job steps at once.")(command)
    order.command(name)(command)


def _steering_client() -> AirflowRuns | None:
    """The Airflow client that steers order runs, or None when PROSEO_AIRFLOW_URL is not set.

    Steering talks HTTP (httpx, in the ``client`` and ``airflow`` extras); the core
    installation lacks it, and says which extra to install only when steering is asked for.
    """
    try:
        from proseo.api.airflow_runs import AirflowRuns
    except ModuleNotFoundError as exc:
        if exc.name != "httpx":
            raise
        if load_settings().airflow_url:
            feature = "steering the order's Airflow run (PROSEO_AIRFLOW_URL is set)"
            raise MissingExtra(feature, "httpx", "client") from exc
        return None
    return AirflowRuns.from_env()


def _steer(client: AirflowRuns | None, operation: str, dag_id: str | None, *, force: bool) -> None:
    """Make the order's Airflow run follow (PROSEO_AIRFLOW_URL and credentials configure it)."""
    if client is None:
        if dag_id:
            err_console.print(
                f"note: the Airflow run of {dag_id} was not touched: set PROSEO_AIRFLOW_URL "
                "(and PROSEO_AIRFLOW_TOKEN or PROSEO_AIRFLOW_USER/PROSEO_AIRFLOW_PASSWORD)",
                markup=False,
            )
        return
    console.print(f"airflow: {client.follow(operation, dag_id, force=force)}", markup=False)


_operation("approve", lifecycle.approve_order, "Approve an INITIAL order for planning.")
_operation("release", lifecycle.release_order, "Release a PLANNED order for execution.")
_operation("suspend", lifecycle.suspend_order, "Suspend a released or running order.", with_force=True)
_operation("resume", lifecycle.resume_order, "Release a suspended order again.")
_operation("cancel", lifecycle.cancel_order, "Cancel an order; unfinished job steps fail.")
_operation("retry", lifecycle.retry_order, "Run the failed job steps of a FAILED order again.")
_operation("reset", lifecycle.reset_order, "Drop the plan and return the order to INITIAL.")
_operation("close", lifecycle.close_order, "Close a COMPLETED or FAILED order.")


@order.command("show")
@click.option("--mission", "-m", required=True)
@click.argument("identifier")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def show(ctx: click.Context, mission: str, identifier: str, fmt: str) -> None:
    """An order: its request, state, plan summary, job-step counts and history."""
    catalog = open_catalog(ctx)
    with catalog.session() as session:
        o = ops.get_order(session, mission, identifier)
        detail = order_detail(session, o, mission)
    data = detail.model_dump(mode="json", by_alias=True)
    if fmt == "json":
        print_json(data)
        return
    console.print(
        f"[bold]{escape(mission)}/{escape(o.identifier)}[/bold]  {data['state']}"
        + (f"  ({escape(str(data['state_message']))})" if data["state_message"] else "")
    )
    console.print(f"request: {json.dumps(data['request'], default=str)}", markup=False, soft_wrap=True)
    console.print(f"allowed: {', '.join(data['allowed_operations']) or '-'}", markup=False)
    if data["plan"]:
        console.print(f"plan: {json.dumps(data['plan'])}", markup=False, soft_wrap=True)
    if detail.progress:
        console.print(
            "job steps: " + ", ".join(f"{k} {v}" for k, v in sorted(detail.progress.items())), markup=False
        )
    if detail.progress.get("FAILED"):
        with catalog.session() as session:
            failed = job_steps(session, ops.get_order(session, mission, identifier), state="FAILED", limit=10)
        table(
            "failed job steps (all: proseo order steps --state FAILED)",
            ["step", "class", "exit", "reason"],
            [
                [s.id, s.product_type, "" if s.exit_code is None else s.exit_code, s.failure_reason]
                for s in failed.items
            ],
        )
    table(
        "history",
        ["at", "operation", "from", "to", "message"],
        [[h["at"], h["operation"], h["from"], h["to"], h["message"]] for h in data["history"]],
    )


@order.command("list")
@click.option("--mission", "-m", help="Only this mission.")
@click.option("--state", help="Only orders in this state.")
@click.option("--limit", default=100, show_default=True)
@click.option("--offset", default=0)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def list_cmd(
    ctx: click.Context, mission: str | None, state: str | None, limit: int, offset: int, fmt: str
) -> None:
    """Orders with their state and job-step progress."""
    catalog = open_catalog(ctx)
    with catalog.session() as session:
        summaries = order_summaries(session, ops.list_orders(session, mission, state, limit, offset))
    rows = [
        {**o.model_dump(mode="json"), "classes": o.classes, "completed": o.completed, "failed": o.failed}
        for o in summaries
    ]
    if fmt == "json":
        print_json([o.model_dump(mode="json") for o in summaries])
        return
    table(
        None,
        ["mission", "order", "state", "classes", "steps", "done", "failed", "created"],
        [
            [
                r["mission"],
                r["identifier"],
                r["state"],
                ",".join(r["classes"]),
                r["job_steps"],
                r["completed"],
                r["failed"],
                r["created_at"],
            ]
            for r in rows
        ],
    )


@order.command("graph")
@click.option("--mission", "-m", required=True)
@click.argument("identifier")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "svg"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
def graph(ctx: click.Context, mission: str, identifier: str, fmt: str, output: Path | None) -> None:
    """The order's job-step graph (with external inputs) as text, Graphviz DOT or SVG."""
    catalog = open_catalog(ctx)
    with catalog.session() as session:
        g = order_graph(session, ops.get_order(session, mission, identifier))
    rendered = {"text": to_text, "dot": to_dot, "svg": to_svg}[fmt](g)
    if output:
        output.write_text(rendered)
        err_console.print(f"wrote {output} ({len(g.nodes)} nodes, {len(g.edges)} edges)", markup=False)
    else:
        click.echo(rendered)
