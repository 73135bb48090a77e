"""``proseo trigger list|fire``: a mission's triggers, what they did, and a pass by hand.

``list`` shows each trigger of the mission's latest revision with its state from the
catalogue (cursor, last firing, firings, orders made, orders not finished). ``fire``
runs one generator pass as the trigger DAGs do (data triggers: the scan since their
cursors; clock triggers: every firing time up to now, or up to ``--now``), for an
operator without Airflow, or to catch up at once; it is idempotent like every pass.
"""

from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy import func, select

from proseo.catalog.mission_sync import get_mission, revision_config
from proseo.catalog.model_order import OrderState, ProcessingOrder, TriggerState
from proseo.cli.context import open_catalog
from proseo.cli.output import console, print_json, table
from proseo.errors import ProseoError
from proseo.missions.production import Trigger, TriggerKind
from proseo.missions.types import format_utc, parse_utc
from proseo.planning import generate

FINISHED = (OrderState.COMPLETED.value, OrderState.FAILED.value, OrderState.CLOSED.value)


@click.group("trigger")
def trigger_group() -> None:
    """Systematic production: the mission's triggers."""


def _when(t: datetime | None) -> str:
    return format_utc(t) if t is not None else ""


@trigger_group.command("list")
@click.option("--mission", "-m", required=True, help="Mission code.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def trigger_list(ctx: click.Context, mission: str, fmt: str) -> None:
    """Each trigger: kind, classes, mode, timeliness, and what it did so far."""
    catalog = open_catalog(ctx)
    with catalog.session() as s:
        _, cfg = revision_config(s, mission)
        mission_id = get_mission(s, mission).id
        states = {
            t.trigger: t for t in s.scalars(select(TriggerState).where(TriggerState.mission_id == mission_id))
        }
        active = dict(
            s.execute(
                select(ProcessingOrder.trigger, func.count(ProcessingOrder.id))
                .where(
                    ProcessingOrder.mission_id == mission_id,
                    ProcessingOrder.trigger.is_not(None),
                    ProcessingOrder.state.not_in(FINISHED),
                )
                .group_by(ProcessingOrder.trigger)
            ).all()
        )
    rows = []
    for name, t in cfg.triggers.items():
        st = states.get(name)
        rows.append(
            {
                "trigger": name,
                "kind": t.kind.value,
                "enabled": t.enabled,
                "classes": list(t.classes),
                "on": list(t.on),
                "mode": t.mode,
                "timeliness": t.timeliness,
                "cursor": _when(st.cursor) if st else None,
                "last_fired_at": _when(st.last_fired_at) if st else None,
                "fired": st.fired if st else 0,
                "orders_created": st.orders_created if st else 0,
                "orders_active": int(active.get(name, 0)),
            }
        )
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        console.print(f"{mission} has no triggers (the mission file's 'triggers' section)")
        return
    table(
        f"{mission} triggers",
        [
            "trigger",
            "kind",
            "classes",
            "on / schedule",
            "mode",
            "timeliness",
            "last fired",
            "orders",
            "active",
        ],
        [
            [
                r["trigger"] + ("" if r["enabled"] else " (disabled)"),
                r["kind"],
                ", ".join(r["classes"]),
                _fires(cfg.triggers[r["trigger"]]),
                r["mode"] or "",
                r["timeliness"] or "",
                r["last_fired_at"] or "never",
                r["orders_created"],
                r["orders_active"],
            ]
            for r in rows
        ],
    )


def _fires(t: Trigger) -> str:
    if t.kind is TriggerKind.DATA:
        extra = f" when {t.when.value}" + (f", settle {t.settle}" if t.settle.total_seconds() else "")
        return ", ".join(t.on) + extra
    if t.kind is TriggerKind.CALENDAR:
        return f"cron {t.cron}, window {t.window}, lag {t.lag}"
    if t.kind is TriggerKind.INTERVAL:
        return f"every {t.every}, window {t.window}"
    return f"orbit end + {t.delay}"


@trigger_group.command("fire")
@click.option("--mission", "-m", required=True, help="Mission code.")
@click.option("--now", help="Fire clock triggers up to this instant (ISO 8601 UTC; default: now).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def trigger_fire(ctx: click.Context, mission: str, now: str | None, fmt: str) -> None:
    """One generator pass: data triggers since their cursors, clock triggers up to now."""
    catalog = open_catalog(ctx)
    try:
        at = parse_utc(now) if now else None
    except ValueError as exc:
        raise ProseoError(f"--now: {exc}") from exc
    with catalog.session() as s:
        get_mission(s, mission)  # NotFoundError names it
    data = generate.fire_missed(catalog, mission, now=at)
    clock = generate.fire_due(catalog, mission, now=at)
    fired = data.fired + clock.fired
    result = {
        "created": data.created + clock.created,
        "released": data.released + clock.released,
        "failed": data.failed + clock.failed,
        "triggers": [
            {"trigger": f.trigger, "created": f.created, "existing": f.existing, "waiting": f.waiting[:20]}
            for f in fired
        ],
    }
    if fmt == "json":
        print_json(result)
    else:
        for f in fired:
            console.print(
                f"{f.trigger}: {len(f.created)} order(s) created, {f.existing} existing, "
                f"{len(f.waiting)} slice(s) waiting"
            )
            for identifier in f.created:
                console.print(f"  + {identifier}")
        for line in result["failed"]:
            console.print(f"[red]not released:[/red] {line}")
    if result["failed"]:
        raise SystemExit(1)
