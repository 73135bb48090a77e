"""``proseo campaign``: reprocessing campaigns from the command line.

``create`` checks and stores a campaign (from a YAML/JSON file or options); ``dryrun``
sizes one before it starts (job steps per class, missing inputs per class and slice,
run time) without planning any order; ``start|pause|resume|cancel`` steer it; ``pass``
runs one pass by hand (what the proseo_campaigns DAG does); ``show`` prints progress
bars, overall and per unit, with throughput and ETA (``--watch`` redraws them);
``gaps`` lists expected versus produced and each gap's reason, ``--retry`` orders the
failed units again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from proseo.api.schemas_campaigns import (
    campaign_detail,
    campaign_summary,
    dry_run_out,
    gap_report_out,
    pass_out,
)
from proseo.cli.context import open_catalog
from proseo.cli.output import console, print_json, table
from proseo.errors import CampaignError
from proseo.missions.types import format_utc
from proseo.planning import campaign as camp
from proseo.planning.campaign_dryrun import DryRun, dry_run
from proseo.planning.campaign_gaps import GapReport, gap_report
from proseo.planning.campaign_progress import Progress, progress
from proseo.planning.campaign_spec import CampaignSpec, parse_campaign

FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
MISSION = click.option("--mission", "-m", required=True, help="Mission code.")


@click.group("campaign")
def campaign_group() -> None:
    """Reprocessing campaigns: a period cut into daily or monthly orders, released a window at a time."""


def _load_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CampaignError(f"{path}: cannot read the campaign request: {exc}") from exc
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: a campaign request must be a mapping of fields")
    return data


def _spec_from(mission: str, spec_file: Path | None, options: dict[str, Any]) -> CampaignSpec:
    data = _load_file(spec_file) if spec_file else {}
    params = options.pop("output_param")
    window = {
        k: v
        for k, v in (
            ("max_active_orders", options.pop("window")),
            ("max_active_steps_per_facility", options.pop("max_steps_per_facility")),
        )
        if v is not None
    }
    for key, value in options.items():
        if value not in (None, ()):
            data[key] = list(value) if isinstance(value, tuple) else value
    if window:
        data["window"] = {**data.get("window", {}), **window}
    if params:
        table_: dict[str, Any] = data.setdefault("output_parameters", {}).setdefault("*", {})
        for item in params:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{item!r} is not key=value", param_hint="--output-param")
            table_[key] = yaml.safe_load(value) if value else ""
    return parse_campaign(data, mission=mission)


def spec_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--file",
                "spec_file",
                type=click.Path(exists=True, path_type=Path),
                help="Request (YAML/JSON).",
            ),
            click.option("--name", help="Campaign name (part of every order identifier)."),
            click.option("--class", "requested_classes", multiple=True, help="Requested class (repeatable)."),
            click.option("--start", help="Start of the period (UTC)."),
            click.option("--stop", help="End of the period (UTC, exclusive)."),
            click.option("--unit", type=click.Choice(["day", "month"]), help="One order per day or month."),
            click.option("--mode", "processing_mode", help="Processing mode (default RPRO)."),
            click.option(
                "--processor", "configured_processors", multiple=True, help="Pinned configured processor."
            ),
            click.option("--facility", "facilities", multiple=True, help="Facility (repeatable)."),
            click.option("--window", type=int, help="Most orders active at once (default 3)."),
            click.option(
                "--max-steps-per-facility", type=int, help="Most unfinished job steps per facility."
            ),
            click.option("--priority", type=int, help="Order priority (below systematic production)."),
            click.option("--output-param", multiple=True, help="Output parameter key=value for every class."),
            click.option("--input-timeout", help="How long a step waits for an input (default 6 h)."),
        ]
    ):
        f = option(f)
    return f


@campaign_group.command("create")
@MISSION
@spec_options
@click.pass_context
def create(ctx: click.Context, mission: str, spec_file: Path | None, **options: Any) -> None:
    """Check and store a campaign (CREATED: nothing is ordered until it starts)."""
    spec = _spec_from(mission, spec_file, options)
    with open_catalog(ctx).session() as s:
        c = camp.create_campaign(s, mission, spec)
        units = len(camp.layout_of(s, mission, spec)[1].parts)
    console.print(f"campaign {mission}/{c.name} created: {units} order(s) to come", markup=False)


def print_dry_run(d: DryRun) -> None:
    table(
        f"{d.mission}/{d.campaign}: {d.units} unit(s), {d.orders} order(s), {d.steps:,} job steps",
        ["class", "requested", "slices", "made already", "job steps", "s/step", "from"],
        [
            [
                c.product_type,
                "yes" if c.requested else "",
                c.slices,
                c.existing,
                c.steps,
                f"{c.seconds_per_step:.0f}",
                c.duration_source,
            ]
            for c in d.classes
        ],
    )
    if d.missing:
        table(
            "inputs missing",
            ["class", "input", "slices", "first"],
            [[m.product_type, m.input_type, m.slices, ", ".join(m.first)] for m in d.missing],
        )
    else:
        console.print("no input missing")
    console.print(
        f"run time: {d.serial_seconds / 3600:,.1f} h of job steps, about {d.wall_seconds / 3600:,.1f} h "
        f"with {d.parallel_slots} at once",
        markup=False,
    )
    for line in d.assumptions:
        console.print(f"  assumed: {line}", markup=False)
    console.print(f"(sized in {d.took_s:.1f} s, no order planned)", markup=False)


@campaign_group.command("dryrun")
@MISSION
@click.argument("stored", metavar="[NAME]", required=False)
@spec_options
@FORMAT
@click.pass_context
def dryrun(
    ctx: click.Context, mission: str, stored: str | None, spec_file: Path | None, fmt: str, **options: Any
) -> None:
    """Size a stored campaign (NAME) or a request (--file/options) without planning any order."""
    catalog = open_catalog(ctx)
    with catalog.session() as s:
        if stored:
            spec = camp.spec_of(camp.get_campaign(s, mission, stored))
        else:
            spec = _spec_from(mission, spec_file, options)
        result = dry_run(s, mission, spec)
    if fmt == "json":
        print_json(dry_run_out(result).model_dump(mode="json"))
    else:
        print_dry_run(result)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def render(p: Progress, *, units: int = 20) -> Group:
    """Overall and per-unit bars, throughput and ETA (the active and failed units first)."""
    head = Text(
        f"{p.mission}/{p.campaign} {p.state}: {p.fraction:.1%} of {p.parts} order(s) "
        f"({p.completed} completed, {p.failed} failed, {p.active} active), "
        f"{p.steps_done:,}/{p.steps_total:,} job steps; "
        f"{(p.steps_per_hour or 0):,.1f} steps/h, {(p.units_per_hour or 0):.2f} orders/h, "
        f"ETA {_duration(p.eta_s)}"
    )
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        Text("overall", style="bold"),
        ProgressBar(total=1.0, completed=p.fraction, width=40),
        Text(f"{p.fraction:6.1%}"),
    )
    shown = sorted(p.units, key=lambda u: (u.state not in ("RUNNING", "RELEASED", "FAILED"), u.part))[:units]
    for u in sorted(shown, key=lambda u: u.part):
        grid.add_row(
            Text(u.part),
            ProgressBar(total=1.0, completed=u.fraction, width=40),
            Text(
                f"{u.fraction:6.1%} {u.state} {u.steps_done}/{u.steps_total}"
                + (f" r{u.attempt}" if u.attempt else "")
            ),
        )
    return Group(head, grid)


@campaign_group.command("show")
@MISSION
@click.argument("name")
@FORMAT
@click.option(
    "--watch", is_flag=True, help="Redraw the progress bars until the campaign ends (Ctrl-C stops)."
)
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between redraws.")
@click.pass_context
def show(ctx: click.Context, mission: str, name: str, fmt: str, watch: bool, interval: float) -> None:
    """The campaign, its progress overall and per unit, throughput and ETA."""
    catalog = open_catalog(ctx)

    def read() -> tuple[Any, Progress]:
        with catalog.session() as s:
            c = camp.get_campaign(s, mission, name)
            p = progress(s, mission, name)
            return campaign_detail(c, mission, p), p

    detail, p = read()
    if fmt == "json":
        print_json(detail.model_dump(mode="json"))
        return
    console.print(
        f"{mission}/{name}: {', '.join(detail.requested_classes)} {format_utc(detail.start)} .. "
        f"{format_utc(detail.stop)} by {detail.unit}, mode {detail.processing_mode}, priority "
        f"{detail.priority}, window {detail.max_active_orders}"
        + (f"; {detail.state_message}" if detail.state_message else ""),
        markup=False,
    )
    if not watch:
        console.print(render(p))
        return
    with Live(render(p), console=console, refresh_per_second=1) as live:
        while p.state in ("RUNNING", "PAUSED", "CREATED"):
            time.sleep(max(interval, 0.2))
            _, p = read()
            live.update(render(p))


@campaign_group.command("list")
@click.option("--mission", "-m", help="Mission code (default: all).")
@FORMAT
@click.pass_context
def list_(ctx: click.Context, mission: str | None, fmt: str) -> None:
    """Campaigns with their state and period."""
    with open_catalog(ctx).session() as s:
        rows = [campaign_summary(c, code) for c, code in camp.list_campaigns(s, mission)]
    if fmt == "json":
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table(
        None,
        ["mission", "campaign", "state", "classes", "period", "unit", "mode", "window"],
        [
            [
                r.mission,
                r.name,
                r.state,
                ", ".join(r.requested_classes),
                f"{format_utc(r.start)} .. {format_utc(r.stop)}",
                r.unit,
                r.processing_mode,
                r.max_active_orders,
            ]
            for r in rows
        ],
    )


def _report_pass(
    ctx: click.Context,
    mission: str,
    name: str,
    result: camp.PassResult | None,
    cancelled: list[str] | None = None,
) -> None:
    with open_catalog(ctx).session() as s:
        summary = campaign_summary(camp.get_campaign(s, mission, name), mission)
    doc = pass_out(summary, result, cancelled)
    console.print(f"{mission}/{name}: {summary.state}", markup=False)
    for label, items in (("created", doc.created), ("released", doc.released), ("cancelled", doc.cancelled)):
        if items:
            console.print(f"  {label}: {', '.join(items)}", markup=False)
    for line in doc.failed:
        console.print(f"  not released: {line}", markup=False, style="red")


def _operation(command: str, run: Any, doc: str) -> None:
    @campaign_group.command(command, help=doc)
    @MISSION
    @click.argument("name")
    @click.pass_context
    def op(ctx: click.Context, mission: str, name: str) -> None:
        catalog = open_catalog(ctx)
        result = run(catalog, mission, name)
        if isinstance(result, list):
            _report_pass(ctx, mission, name, None, result)
        else:
            _report_pass(ctx, mission, name, result)


_operation("start", camp.start_campaign, "Start the campaign and release its first window of units.")
_operation("pause", camp.pause_campaign, "Release nothing new (active orders go on).")
_operation("resume", camp.resume_campaign, "Release again, up to the window.")
_operation("cancel", camp.cancel_campaign, "Cancel the campaign and its active orders.")
_operation("pass", camp.campaign_pass, "Run one pass now (what the proseo_campaigns DAG does).")


def print_gaps(r: GapReport, limit: int) -> None:
    console.print(
        f"{r.mission}/{r.campaign} {r.state}: {r.produced:,} of {r.expected:,} products made, "
        f"{len(r.gaps):,} gap(s)"
        + (": " + ", ".join(f"{n} {k}" for k, n in r.reasons().items()) if r.gaps else ""),
        markup=False,
    )
    table(
        None,
        ["class", "unit", "expected", "produced", "missing", "why"],
        [
            [
                c.product_type,
                c.unit,
                c.expected,
                c.produced,
                c.missing,
                ", ".join(f"{n} {k}" for k, n in c.reasons.items()),
            ]
            for c in r.cells
            if c.missing
        ],
    )
    if r.gaps:
        table(
            f"gaps (first {min(limit, len(r.gaps))})",
            ["class", "slice", "reason", "detail", "order"],
            [[g.product_type, g.label, g.reason, g.detail, g.order] for g in r.gaps[:limit]],
        )


@campaign_group.command("gaps")
@MISSION
@click.argument("name")
@click.option("--retry", is_flag=True, help="Order the failed units again (a new attempt each), then report.")
@click.option("--limit", type=int, default=50, show_default=True, help="Gaps listed one by one.")
@FORMAT
@click.pass_context
def gaps(ctx: click.Context, mission: str, name: str, retry: bool, limit: int, fmt: str) -> None:
    """Expected versus produced per class and unit, and each gap with its reason."""
    catalog = open_catalog(ctx)
    if retry:
        _report_pass(ctx, mission, name, camp.retry_gaps(catalog, mission, name))
    with catalog.session() as s:
        report = gap_report(s, mission, name)
    if fmt == "json":
        print_json(gap_report_out(report, limit=limit).model_dump(mode="json"))
    else:
        print_gaps(report, limit)
