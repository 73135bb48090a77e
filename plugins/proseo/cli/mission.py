"""``proseo mission``: validate, load (onboard), list and show missions."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import func, select

from proseo.catalog.mission_sync import get_mission, latest_revision, revision_config, sync_mission
from proseo.catalog.model_mission import MissionRevision, ProductClass
from proseo.catalog.model_product import Product
from proseo.catalog.models import Mission
from proseo.cli.context import open_catalog
from proseo.cli.output import console, print_json, table
from proseo.missions import describe, load_missions
from proseo.missions.crossref import rule_sources
from proseo.missions.models import MissionConfig
from proseo.missions.types import format_duration, format_utc

FILES = click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))


@click.group()
def mission() -> None:
    """Mission configurations (mission_configs/*.yaml)."""


@mission.command("validate")
@FILES
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check mission files without touching the catalogue; exit 2 on any problem."""
    loaded = load_missions(files)
    if as_json:
        print_json([describe(m) for m in loaded])
        return
    for m in loaded:
        d = describe(m)
        orbits = ", ".join(f"{n} orbits of {sc}" for sc, n in d["orbits"].items()) or "no orbits"
        console.print(
            f"[green]ok[/green] {m.file}: mission {d['code']} ({d['name']}): "
            f"{d['product_classes']} product classes, {d['processors']} processors "
            f"({d['configured_processors']} configured), facilities "
            f"{', '.join(d['facilities'])}, {orbits}"
        )


@mission.command("load")
@FILES
@click.pass_context
def load(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Onboard or update missions. Idempotent; a changed file becomes a new revision.

    All files load in one transaction: if any is invalid, nothing is written.
    """
    loaded = load_missions(files)
    catalog = open_catalog(ctx)
    with catalog.session() as session:
        results = [sync_mission(session, m) for m in loaded]
    for r in results:
        if r.status == "unchanged":
            console.print(f"{r.mission}: unchanged (revision {r.revision})")
        else:
            detail = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in r.changes.items() if v)
            console.print(
                f"{r.mission}: {r.status} revision {r.revision}" + (f" ({detail})" if detail else "")
            )


@mission.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Missions in the catalogue with their current revision and product counts."""
    catalog = open_catalog(ctx)
    rows = []
    with catalog.session() as s:
        counts = dict(s.execute(select(Product.mission_id, func.count()).group_by(Product.mission_id)).all())
        for m in s.scalars(select(Mission).order_by(Mission.code)):
            rev = latest_revision(s, m.id)
            rows.append(
                {
                    "code": m.code,
                    "name": m.name,
                    "revision": rev.number if rev else None,
                    "loaded_at": rev.loaded_at.isoformat() if rev else None,
                    "products": counts.get(m.id, 0),
                }
            )
    if as_json:
        print_json(rows)
    else:
        table(
            "Missions",
            ["code", "name", "revision", "loaded at", "products"],
            [[r["code"], r["name"], r["revision"], r["loaded_at"], r["products"]] for r in rows],
        )


@mission.command("show")
@click.argument("code")
@click.option("--revision", type=int, help="Show an older revision.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "yaml"]), default="text")
@click.pass_context
def show(ctx: click.Context, code: str, revision: int | None, fmt: str) -> None:
    """A mission as stored in the catalogue: classes, processors, facilities, revisions."""
    catalog = open_catalog(ctx)
    with catalog.session() as s:
        number, cfg = revision_config(s, code, revision)
        m = get_mission(s, code)
        revisions = s.execute(
            select(
                MissionRevision.number,
                MissionRevision.loaded_at,
                MissionRevision.source_file,
                MissionRevision.digest,
            )
            .where(MissionRevision.mission_id == m.id)
            .order_by(MissionRevision.number)
        ).all()
        counts = dict(
            s.execute(
                select(ProductClass.product_type, func.count(Product.id))
                .outerjoin(Product, Product.product_class_id == ProductClass.id)
                .where(ProductClass.mission_id == m.id)
                .group_by(ProductClass.product_type)
            ).all()
        )
    if fmt == "json":
        print_json({"revision": number, "config": cfg.model_dump(mode="json", by_alias=True)})
        return
    if fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True), sort_keys=False))
        return
    _show_text(cfg, number, revisions, counts)


def _show_text(cfg: MissionConfig, number: int, revisions: list, counts: dict[str, int]) -> None:
    mission = cfg.mission
    console.print(f"[bold]{mission.code}[/bold] {mission.name} — revision {number} of {len(revisions)}")
    console.print(
        f"file classes {', '.join(mission.file_classes)}; modes {', '.join(mission.processing_modes)}"
    )
    rows = []
    for ptype, pc in cfg.product_classes.items():
        sl = pc.slicing.type.value + (
            f" {format_duration(pc.slicing.duration)}" if pc.slicing.duration else ""
        )
        if pc.slicing.anchor is not None:
            sl += f" from {format_utc(pc.slicing.anchor)}"
        sources = sorted({src for r in pc.selection_rules for src, _ in rule_sources(r.rule)})
        rows.append(
            [
                ptype,
                pc.level.value if pc.level else "",
                pc.visibility.value,
                sl,
                cfg.producer_of(ptype) or "(input)",
                ", ".join(sources),
                counts.get(ptype, 0),
            ]
        )
    table(
        "Product classes", ["type", "level", "visibility", "slicing", "made by", "inputs", "products"], rows
    )
    table(
        "Configured processors",
        ["id", "processor", "version", "configuration", "enabled"],
        [[c.id, c.processor, c.version, c.configuration, c.enabled] for c in cfg.configured_processors()],
    )
    table(
        "Facilities",
        ["name", "backend", "storage", "max steps", "default"],
        [
            [n, f.backend.value, f.storage_url, f.max_concurrent_job_steps, n == cfg.default_facility()]
            for n, f in cfg.facilities.items()
        ],
    )
    table(
        "Revisions",
        ["#", "loaded at", "file", "digest"],
        [[r[0], r[1].isoformat(), r[2], r[3][:12]] for r in revisions],
    )
