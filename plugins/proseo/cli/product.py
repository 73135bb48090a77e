"""``proseo product``: ingest delivered files, query the catalogue, show lineage."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.markup import escape
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.describe import SIDECAR_SUFFIX
from proseo.catalog.ingest import Ingestor
from proseo.catalog.lineage import find_product, lineage
from proseo.catalog.mission_sync import loaded_from_catalog
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_product import Product
from proseo.catalog.products import ProductQuery, product_dict, query_products
from proseo.cli.context import open_catalog
from proseo.cli.output import console, err_console, print_json, progress_bar, table
from proseo.errors import ProseoError
from proseo.missions.types import parse_utc
from proseo.planning.graph import to_dot, to_svg
from proseo.settings import load_settings


@click.group()
def product() -> None:
    """Products in the catalogue."""


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given, directories walked in name order; sidecar JSON files are not products."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                out += [Path(root) / f for f in sorted(files) if not f.endswith(SIDECAR_SUFFIX)]
        else:
            out.append(path)
    return out


@product.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--mission", "-m", required=True, help="Mission code.")
@click.option("--class", "product_type", help="Product type (default: from the file-name pattern).")
@click.option("--facility", help="Facility whose storage receives the files (default: the mission's).")
@click.option("--file-class", help="File class (default: from the name or sidecar, else the first).")
@click.option("--mode", help="Processing mode, if the products have one.")
@click.option("--workers", default=8, show_default=True, help="Parallel copies.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print every file's outcome as JSON.")
@click.pass_context
def ingest(
    ctx: click.Context,
    files: tuple[Path, ...],
    mission: str,
    product_type: str | None,
    facility: str | None,
    file_class: str | None,
    mode: str | None,
    workers: int,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Copy files into storage and register them (metadata from names or <file>.json sidecars,
    footprints from <file>.footprint.json).

    Re-ingesting a file is a no-op; a different file under the same identity is a
    conflict (exit 4). Files that fail are reported and the rest still ingest (exit 1).
    """
    paths = _expand(files)
    catalog = open_catalog(ctx)
    with catalog.session() as s:
        loaded = loaded_from_catalog(s, mission)
    ingestor = Ingestor(catalog, loaded, facility=facility, workers=workers)
    show = sys.stderr.isatty() if progress is None else progress
    with progress_bar(f"ingest {mission}", len(paths), enabled=show) as advance:
        report = ingestor.run(
            paths, product_type=product_type, file_class=file_class, mode=mode, progress=advance
        )
    if as_json:
        print_json([o.__dict__ for o in report.outcomes])
    else:
        for o in report.outcomes:
            if o.status in ("conflict", "error"):
                err_console.print(f"[red]{o.status}[/red] {escape(o.message or o.file)}", soft_wrap=True)
        console.print(
            f"{mission}: {report.count('new')} new, {report.count('unchanged')} unchanged, "
            f"{report.count('conflict')} conflicts, {report.count('error')} errors "
            f"(facility {ingestor.facility})"
        )
    new = [o.product_id for o in report.outcomes if o.status == "new" and o.product_id is not None]
    _announce(catalog, mission, new)
    if report.count("error"):
        sys.exit(1)
    if report.count("conflict"):
        sys.exit(4)


def _announce(catalog: Catalog, mission: str, product_ids: list[int]) -> None:
    """With PROSEO_AIRFLOW_URL set: one Asset event per class (``proseo://<mission>/<class>``,
    the product ids in its extra), so the mission's data triggers run now rather than at
    their next scan. Ingestion has committed already: a failure here is a note, never an
    error (the scan finds the products anyway)."""
    if not product_ids or not load_settings().airflow_url:
        return
    try:
        from proseo.api.airflow_runs import AirflowRuns
    except ModuleNotFoundError as exc:
        if exc.name != "httpx":
            raise
        err_console.print(
            "note: Airflow not told (httpx missing: the 'client' extra); the scan will find them"
        )
        return
    with catalog.session() as s:
        rows = s.execute(
            select(ProductClass.product_type, Product.id)
            .join(Product, Product.product_class_id == ProductClass.id)
            .where(Product.id.in_(product_ids))
        ).all()
    by_class: dict[str, list[int]] = {}
    for ptype, pid in rows:
        by_class.setdefault(ptype, []).append(pid)
    client = AirflowRuns.from_env()
    assert client is not None
    told = []
    for ptype, ids in sorted(by_class.items()):
        try:
            if client.asset_event(f"proseo://{mission}/{ptype}", {"product_ids": sorted(ids), "from": "cli"}):
                told.append(ptype)
        except ProseoError as exc:
            err_console.print(f"note: Airflow not told of {ptype}: {exc}", markup=False)
    if told:
        console.print(f"airflow: Asset events for {', '.join(told)}", markup=False)


def _params(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        if "=" not in item:
            raise ProseoError(f"--param {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _time(value: str | None, option: str) -> object:
    if value is None:
        return None
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise ProseoError(f"{option}: {exc}") from exc


@product.command("query")
@click.option("--mission", "-m", required=True)
@click.option("--class", "product_type", help="Product type.")
@click.option("--start", help="Window start (ISO 8601 UTC): products whose validity overlaps the window.")
@click.option("--stop", help="Window stop (ISO 8601 UTC).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Free parameter filter.")
@click.option("--file-class")
@click.option("--mode")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, type=click.IntRange(0))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def query(
    ctx: click.Context,
    mission: str,
    product_type: str | None,
    start: str | None,
    stop: str | None,
    params: tuple[str, ...],
    file_class: str | None,
    mode: str | None,
    limit: int,
    offset: int,
    fmt: str,
) -> None:
    """Products by class, time window and parameters, oldest validity first."""
    q = ProductQuery(
        mission=mission,
        product_type=product_type,
        start=_time(start, "--start"),
        stop=_time(stop, "--stop"),
        parameters=_params(params),
        file_class=file_class,
        mode=mode,
        limit=limit,
        offset=offset,
    )
    catalog = open_catalog(ctx)
    with catalog.session() as s:
        products, total = query_products(s, q)
        items = [product_dict(p) for p in products]
    if fmt == "json":
        print_json({"total": total, "offset": offset, "products": items})
        return
    table(
        f"{mission} products {offset + 1 if items else 0}-{offset + len(items)} of {total}",
        ["id", "type", "start", "stop", "generated", "class", "mode", "parameters", "size"],
        [
            [
                p["id"],
                p["product_type"],
                p["start"],
                p["stop"],
                p["generation_time"],
                p["file_class"],
                p["mode"] or "",
                ", ".join(f"{k}={v}" for k, v in p["parameters"].items()),
                sum(f["size"] for f in p["files"]),
            ]
            for p in items
        ],
    )


@product.command("lineage")
@click.argument("ref", metavar="PRODUCT")
@click.option("--mission", "-m", help="Mission code (checks an id or UUID; disambiguates a file name).")
@click.option("--depth", type=click.IntRange(0), help="Levels to follow (default: all).")
@click.option("--forward", is_flag=True, help="Products made from it, instead of what it was made from.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "dot", "svg"]), default="text", show_default=True
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
def lineage_command(
    ctx: click.Context,
    ref: str,
    mission: str | None,
    depth: int | None,
    forward: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """What PRODUCT was made from (inputs of inputs ...), or with --forward what was made from it.

    PRODUCT is a product id, a UUID or a file name. Text is a tree (a product reached
    twice is listed once with its subtree); json has every node and edge; dot and svg
    draw the graph (ingested products dashed, grouped by processing level).
    """
    catalog = open_catalog(ctx)
    with catalog.session() as s:
        root = find_product(s, ref, mission=mission)
        result = lineage(s, root.id, depth=depth, forward=forward)
    if fmt == "json":
        rendered = json.dumps(result.to_dict(), indent=2) + "\n"
    elif fmt == "text":
        rendered = result.to_text()
    else:
        rendered = {"dot": to_dot, "svg": to_svg}[fmt](result.to_graph())
    if output:
        output.write_text(rendered, encoding="utf-8")
        err_console.print(
            f"wrote {output} ({len(result.nodes)} products, {len(result.edges)} edges)", markup=False
        )
    else:
        click.echo(rendered, nl=False)
