"""``proseo rule``: try a selection rule before a mission depends on it.

``proseo rule eval`` applies a rule to a window and prints, as JSON on stdout,
``{"satisfied": ..., "selected": [ids]}``; with ``--explain`` the same object has an
``"explanation"`` key: one entry per simple rule (its canonical text, where it came
from, whether it was satisfied, what it chose and a sentence saying why). The exit
code is 0 whether or not the rule is satisfied; 2 for a rule that does not parse or
an invalid products file, 3 for an unknown mission or class.

Candidates come either from a JSON file (``--products``) or from the catalogue
(``--mission``/``--class``): all AVAILABLE products of the rule's source classes,
whatever their validity, since window-less policies look at the whole class.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import click
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.mission_sync import get_mission, revision_config
from proseo.catalog.model_product import Product, ProductStatus
from proseo.catalog.products import class_ids
from proseo.cli.context import open_catalog
from proseo.cli.output import err_console, print_json
from proseo.errors import NotFoundError, ProseoError, RuleSyntaxError
from proseo.missions.models import MissionConfig
from proseo.missions.types import parse_utc
from proseo.rules import ScopedRule, applicable_rules, scoped_rules
from proseo.rules.evaluate import evaluate
from proseo.rules.policies import Candidate


class ProductsFileError(ProseoError):
    """The products file is not a list of valid product objects."""

    exit_code = 2


UTCTime = Annotated[datetime, BeforeValidator(parse_utc)]


class ProductIn(BaseModel):
    """One candidate product as written in a ``--products`` file."""

    model_config = ConfigDict(extra="forbid")

    id: int | str
    product_type: str = Field(min_length=1)
    start: UTCTime
    stop: UTCTime
    generation_time: UTCTime
    parameters: dict[str, Any] = Field(default_factory=dict)
    file_class: str | None = None
    mode: str | None = None
    production_type: str | None = None

    def candidate(self) -> Candidate:
        attributes = dict(self.parameters)
        for key in ("file_class", "mode", "production_type"):
            if getattr(self, key) is not None:
                attributes[key] = getattr(self, key)
        return Candidate(self.id, self.start, self.stop, self.generation_time, attributes)


_PRODUCTS = TypeAdapter(list[ProductIn])


def _where(loc: Sequence[int | str]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc) or "(top level)"


def read_products(path: Path) -> list[ProductIn]:
    """The products of a JSON file; every problem names the file, the list index and the field."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ProductsFileError(f"{path}: not JSON: {exc}") from exc
    except OSError as exc:
        raise ProductsFileError(f"{path}: {exc.strerror or exc}") from exc
    try:
        products = _PRODUCTS.validate_python(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        ]
        raise ProductsFileError("\n".join(lines)) from exc
    problems = []
    seen: set[int | str] = set()
    for i, p in enumerate(products):
        if p.stop < p.start:
            problems.append(f"{path}: [{i}].stop: validity stops before it starts")
        if p.id in seen:
            problems.append(f"{path}: [{i}].id: {p.id!r} is used twice")
        seen.add(p.id)
    if problems:
        raise ProductsFileError("\n".join(problems))
    return products


def _time(value: str, option: str) -> datetime:
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


def _catalog_candidates(session: Session, mission: str, types: Sequence[str]) -> dict[str, list[Candidate]]:
    mission_id = get_mission(session, mission).id
    out: dict[str, list[Candidate]] = {}
    for product_type, class_id in class_ids(session, mission_id, sorted(set(types))).items():
        rows = session.scalars(
            select(Product)
            .where(Product.product_class_id == class_id, Product.status == ProductStatus.AVAILABLE.value)
            .order_by(Product.id)
        )
        out[product_type] = [
            Candidate(
                p.id,
                p.sensing_start,
                p.sensing_stop,
                p.generation_time,
                {
                    **(p.parameters or {}),
                    "file_class": p.file_class,
                    "mode": p.mode,
                    "production_type": p.production_type,
                },
            )
            for p in rows
        ]
    return out


def _class_rules(
    cfg: MissionConfig, target: str, mode: str | None, processor: str | None
) -> list[ScopedRule]:
    """The target class's own rules, scoped to the mode and configured processor and merged."""
    specs = [
        (s.rule, s.mode, s.configured_processors, f"{target}.selection_rules[{i}]")
        for i, s in enumerate(cfg.product_classes[target].selection_rules)
    ]
    return applicable_rules(scoped_rules(specs), mode, processor)


def _report(
    rules: Sequence[ScopedRule],
    candidates: Mapping[str, Sequence[Candidate]],
    start: datetime,
    stop: datetime,
    explain: bool,
) -> dict[str, Any]:
    satisfied, selected, details = True, [], []
    for scoped in rules:
        result = evaluate(scoped.rule, candidates, start, stop)
        satisfied = satisfied and result.satisfied
        selected += [i for i in result.ids if i not in selected]
        details.append(
            {
                "rule": str(scoped.rule),
                "origin": scoped.origin,
                "satisfied": result.satisfied,
                "selected": result.ids,
                "coverage": round(result.coverage, 3),
                "why": result.explanation,
            }
        )
    out: dict[str, Any] = {"satisfied": satisfied, "selected": selected}
    if explain:
        out["explanation"] = details
    return out


def _parse_option(text: str) -> list[ScopedRule]:
    try:
        return scoped_rules([(text, None, (), "--rule")])
    except RuleSyntaxError as exc:
        err_console.print(f"error: --rule does not parse: {exc}", markup=False, soft_wrap=True)
        for line in exc.caret().splitlines():
            err_console.print(f"  {line}", markup=False, soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)


@click.group()
def rule() -> None:
    """Selection rules."""


@rule.command("eval")
@click.option("--rule", "rule_text", metavar="TEXT", help="The rule (default with --class: the class's own).")
@click.option("--products", type=click.Path(path_type=Path, dir_okay=False), help="Candidates as JSON.")
@click.option("--mission", "-m", help="Take candidates from the catalogue for this mission.")
@click.option("--class", "target", help="Target class (with --mission): checks the rule's sources, scoping.")
@click.option("--mode", help="Processing mode of the job step (scopes the class's rules).")
@click.option("--processor", help="Configured processor of the job step (scopes the class's rules).")
@click.option("--start", required=True, help="Window start, ISO 8601 UTC.")
@click.option("--stop", required=True, help="Window stop, ISO 8601 UTC.")
@click.option("--explain", is_flag=True, help="Add an 'explanation' key: per simple rule, what and why.")
@click.pass_context
def rule_eval(
    ctx: click.Context,
    rule_text: str | None,
    products: Path | None,
    mission: str | None,
    target: str | None,
    mode: str | None,
    processor: str | None,
    start: str,
    stop: str,
    explain: bool,
) -> None:
    """Evaluate a selection rule for the window [START, STOP] and print what it selects.

    Either --products FILE.json (a list of {"id", "product_type", "start", "stop",
    "generation_time", "parameters"}) or --mission M --class C. With --class and no
    --rule, C's own selection rules are evaluated, scoped to --mode/--processor.
    """
    t0, t1 = _time(start, "--start"), _time(stop, "--stop")
    if t1 < t0:
        raise click.BadParameter("the window stops before it starts", param_hint="--stop")
    if (products is None) == (mission is None):
        raise click.UsageError("give either --products FILE or --mission M --class C")
    if mission is not None and target is None:
        raise click.UsageError("--mission needs --class (the target class whose rules are scoped)")
    if rule_text is None and target is None:
        raise click.UsageError("give --rule, or --mission and --class to use the class's own rules")
    rules = _parse_option(rule_text) if rule_text is not None else []
    if products is not None:
        found: dict[str, list[Candidate]] = {}
        for p in read_products(products):
            found.setdefault(p.product_type, []).append(p.candidate())
        print_json(_report(rules, found, t0, t1, explain))
        return
    assert mission is not None and target is not None
    with open_catalog(ctx).session() as session:
        _, cfg = revision_config(session, mission)
        if target not in cfg.product_classes:
            raise NotFoundError(f"mission {mission} has no product class {target!r}")
        rules = rules or _class_rules(cfg, target, mode, processor)
        types = [t for r in rules for t in r.rule.product_types]
        for t in types:
            if t not in cfg.product_classes:
                raise NotFoundError(f"mission {mission} has no product class {t!r} (named by the rule)")
        candidates = _catalog_candidates(session, mission, types)
    print_json(_report(rules, candidates, t0, t1, explain))
