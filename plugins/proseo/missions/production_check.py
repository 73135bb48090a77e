"""Whole-file checks of the systematic-production sections (timeliness, triggers).

Each problem is reported at its YAML path (``triggers.<name>.<field>``), like every
other check of :mod:`proseo.missions.crossref`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from proseo.errors import ConfigIssue
from proseo.missions.models import MissionConfig
from proseo.missions.production import TriggerKind
from proseo.missions.types import SlicingType

IssueAt = Callable[[Sequence[Any], str], ConfigIssue]


def check_production(cfg: MissionConfig, issue: IssueAt, out: list[ConfigIssue]) -> None:
    """Triggers name classes, modes, categories and facilities the file defines."""
    modes = cfg.mission.processing_modes
    categories = cfg.timeliness.categories if cfg.timeliness else {}
    has_orbits = any(sc.orbits is not None for sc in cfg.spacecraft)
    for name, t in cfg.triggers.items():

        def here(*path: Any, _name: str = name) -> tuple[Any, ...]:
            return ("triggers", _name, *path)

        for n, ptype in enumerate(t.classes):
            if ptype not in cfg.product_classes:
                out.append(issue(here("classes", n), f"unknown product class {ptype!r}"))
            elif cfg.producer_of(ptype) is None:
                out.append(
                    issue(
                        here("classes", n), f"{ptype} has no processor: a trigger can only order what is made"
                    )
                )
        for n, ptype in enumerate(t.on):
            if ptype not in cfg.product_classes:
                out.append(issue(here("on", n), f"unknown product class {ptype!r}"))
        if t.mode is not None and t.mode not in modes:
            out.append(issue(here("mode"), f"unknown processing mode {t.mode!r} (known: {', '.join(modes)})"))
        if t.timeliness is not None and t.timeliness not in categories:
            known = ", ".join(categories) or "none: the file has no 'timeliness' section"
            out.append(
                issue(here("timeliness"), f"unknown timeliness category {t.timeliness!r} (known: {known})")
            )
        if t.facility is not None and t.facility not in cfg.facilities:
            out.append(issue(here("facility"), f"unknown facility {t.facility!r}"))
        for n, name in enumerate(t.facilities):
            if name not in cfg.facilities:
                out.append(issue(here("facilities", n), f"unknown facility {name!r}"))
        if t.kind is TriggerKind.ORBIT and not has_orbits:
            out.append(issue(here("kind"), "an orbit trigger needs a spacecraft with orbits"))
        if t.slicing is not None:
            if (t.slicing.type == SlicingType.TIME_SLICE.value) != (t.slicing.duration is not None):
                out.append(
                    issue(
                        here("slicing"), "a TIME_SLICE slicing needs 'duration', no other slicing takes one"
                    )
                )
            if t.slicing.type == SlicingType.ORBIT.value and not has_orbits:
                out.append(issue(here("slicing"), "ORBIT slicing needs a spacecraft with orbits"))
        if t.slicing is None:
            cuts = {
                (c.slicing.type, c.slicing.duration)
                for ptype in t.classes
                if (c := cfg.product_classes.get(ptype)) is not None
            }
            if len(cuts) > 1:
                kinds = ", ".join(sorted(str(k.value) for k, _ in cuts))
                out.append(
                    issue(
                        here("classes"),
                        f"the requested classes are sliced differently ({kinds}): give the trigger "
                        "a 'slicing', or one trigger per slicing",
                    )
                )
        if t.cron is not None:
            try:
                croniter(t.cron, datetime(2025, 1, 1, tzinfo=UTC)).get_next(datetime)
            except (ValueError, KeyError) as exc:
                out.append(issue(here("cron"), f"not a cron expression ({exc})"))
        declared = {**cfg.mission.parameters}
        for ptype in t.classes:
            if ptype in cfg.product_classes:
                declared.update(cfg.product_classes[ptype].parameters)
        for key in t.output_parameters:
            if key not in declared:
                out.append(
                    issue(here("output_parameters", key), f"no requested class declares parameter {key!r}")
                )
