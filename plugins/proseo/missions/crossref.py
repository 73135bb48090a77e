"""Checks that need the whole mission file: references, uniqueness, cycles.

Each check appends :class:`ConfigIssue` objects located through the YAML document,
so a mission engineer sees every problem of a file at once, each with its line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from proseo.errors import ConfigIssue, RuleSyntaxError
from proseo.missions.filenames import KNOWN_FIELDS, TemplateError, template_fields
from proseo.missions.models import DEFAULT_CONFIGURATION, MissionConfig
from proseo.missions.production_check import check_production
from proseo.missions.sources import check_sources
from proseo.missions.types import Backend, SlicingType
from proseo.rules.parser import source_offsets

IssueAt = Callable[[Sequence[Any], str], ConfigIssue]


def rule_sources(text: str) -> list[tuple[str, int]]:
    """Source classes named by a rule, with their character offsets; none if it does not parse.

    A rule that does not parse is reported by the rule check; everything else (the
    cycle check, ``mission show``) just sees no sources for it.
    """
    try:
        return [(source.product_type, offset) for source, offset in source_offsets(text)]
    except RuleSyntaxError:
        return []


def check(config: MissionConfig, issue_at: IssueAt) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for fn in (
        _check_mission,
        _check_classes,
        _check_processors,
        _check_rules,
        _check_facilities,
        _check_cycles,
        check_production,
        check_sources,
    ):
        fn(config, issue_at, issues)
    return issues


def _dupes(items: Sequence[str]) -> set[str]:
    seen: set[str] = set()
    return {x for x in items if x in seen or seen.add(x)}  # type: ignore[func-returns-value]


def _check_mission(cfg: MissionConfig, at: IssueAt, out: list[ConfigIssue]) -> None:
    m = cfg.mission
    for key in ("file_classes", "processing_modes"):
        for dup in sorted(_dupes(getattr(m, key))):
            out.append(at(("mission", key), f"{dup!r} is listed twice"))
    _check_template(m.product_file_template, ("mission", "product_file_template"), cfg, None, at, out)
    for dup in sorted(_dupes([s.code for s in cfg.spacecraft])):
        out.append(at(("spacecraft",), f"spacecraft {dup!r} is defined twice"))


def _check_template(
    template: str,
    loc: tuple[Any, ...],
    cfg: MissionConfig,
    product_type: str | None,
    at: IssueAt,
    out: list[ConfigIssue],
) -> None:
    try:
        fields = template_fields(template)
    except TemplateError as exc:
        out.append(at(loc, str(exc)))
        return
    names = {f.name for f in fields}
    allowed = set(KNOWN_FIELDS)
    allowed |= set(cfg.mission.parameters)
    if product_type is not None:
        allowed |= set(cfg.product_classes[product_type].parameters)
    else:  # the mission template is shared: any declared parameter of any class may appear
        for pc in cfg.product_classes.values():
            allowed |= set(pc.parameters)
    if "orbit" in names and not any(sc.orbits is not None for sc in cfg.spacecraft):
        out.append(
            at(loc, "template field {orbit} needs orbits, and the mission has no spacecraft with orbits")
        )
    for name in sorted(names - allowed):
        out.append(
            at(
                loc,
                f"template field {{{name}}} is neither a product attribute "
                f"({', '.join(sorted(KNOWN_FIELDS))}) nor a declared parameter",
            )
        )
    sliced = product_type is not None and (
        cfg.product_classes[product_type].slicing.type is not SlicingType.NONE
    )
    if sliced and "start" not in names and "orbit" not in names:
        out.append(
            at(
                loc,
                "the template of a sliced class must contain {start:...} or {orbit} "
                "so that products of different slices get different names",
            )
        )


def _check_classes(cfg: MissionConfig, at: IssueAt, out: list[ConfigIssue]) -> None:
    has_orbits = any(s.orbits is not None for s in cfg.spacecraft)
    for ptype, pc in cfg.product_classes.items():
        loc = ("product_classes", ptype)
        if pc.processor is not None and pc.processor not in cfg.processors:
            out.append(
                at((*loc, "processor"), f"unknown processor class {pc.processor!r}" + _known(cfg.processors))
            )
        for i, comp in enumerate(pc.components):
            other = next((t for t, c in cfg.product_classes.items() if comp in c.components), ptype)
            if other != ptype:
                out.append(
                    at(
                        (*loc, "components", i),
                        f"{comp!r} is already a component of {other!r}: a class can be a "
                        "component of only one enclosing class",
                    )
                )
            if comp not in cfg.product_classes:
                out.append(at((*loc, "components", i), f"unknown component class {comp!r}"))
            elif comp == ptype:
                out.append(at((*loc, "components", i), "a class cannot be its own component"))
        if pc.slicing.type is SlicingType.ORBIT and not has_orbits:
            out.append(at((*loc, "slicing", "type"), "ORBIT slicing needs a spacecraft with orbits"))
        if pc.file_name_template is not None:
            _check_template(pc.file_name_template, (*loc, "file_name_template"), cfg, ptype, at, out)
        if pc.file_name_pattern is not None:
            groups = set(re.compile(pc.file_name_pattern).groupindex)
            unknown = groups - KNOWN_FIELDS - set(cfg.parameter_types(ptype))
            for name in sorted(unknown):
                out.append(
                    at(
                        (*loc, "file_name_pattern"),
                        f"group (?P<{name}>...) is neither a product attribute nor a "
                        f"declared parameter of {ptype}",
                    )
                )
    _check_component_cycles(cfg, at, out)


def _component_graph(cfg: MissionConfig) -> dict[str, list[str]]:
    return {
        t: [c for c in pc.components if c in cfg.product_classes and c != t]
        for t, pc in cfg.product_classes.items()
    }


def _check_component_cycles(cfg: MissionConfig, at: IssueAt, out: list[ConfigIssue]) -> None:
    for cycle in _find_cycles(_component_graph(cfg)):
        out.append(
            at(
                ("product_classes", cycle[0], "components"),
                "component classes form a cycle: " + " -> ".join([*cycle, cycle[0]]),
            )
        )


def _check_processors(cfg: MissionConfig, at: IssueAt, out: list[ConfigIssue]) -> None:
    claimed: dict[str, str] = {}
    for ptype, pc in cfg.product_classes.items():
        if pc.processor is not None:
            claimed[ptype] = pc.processor
    all_ids: dict[str, str] = {}
    for name, proc in cfg.processors.items():
        loc = ("processors", name)
        for i, ptype in enumerate(proc.produces):
            if ptype not in cfg.product_classes:
                out.append(at((*loc, "produces", i), f"unknown product class {ptype!r}"))
            elif claimed.setdefault(ptype, name) != name:
                out.append(
                    at(
                        (*loc, "produces", i),
                        f"product class {ptype!r} is already made by processor "
                        f"{claimed[ptype]!r}: a class has exactly one processor",
                    )
                )
        if not proc.versions:
            out.append(at((*loc, "versions"), f"processor {name!r} has no version"))
        _check_images(cfg, loc, proc.versions, at, out)
        versions = [v.version for v in proc.versions]
        for dup in sorted(_dupes(versions)):
            out.append(at((*loc, "versions"), f"version {dup!r} is defined twice"))
        configs = [c.version for c in proc.configurations]
        for dup in sorted(_dupes(configs)):
            out.append(at((*loc, "configurations"), f"configuration {dup!r} is defined twice"))
        for i, conf in enumerate(proc.configurations):
            for j, mode in enumerate(conf.modes):
                if mode not in cfg.mission.processing_modes:
                    out.append(
                        at(
                            (*loc, "configurations", i, "modes", j),
                            f"unknown processing mode {mode!r}" + _known(cfg.mission.processing_modes),
                        )
                    )
        for i, spec in enumerate(proc.configured_processors or []):
            if spec.version not in versions:
                out.append(
                    at(
                        (*loc, "configured_processors", i, "version"),
                        f"processor {name!r} has no version {spec.version!r}",
                    )
                )
            if spec.configuration not in (configs or [DEFAULT_CONFIGURATION]):
                out.append(
                    at(
                        (*loc, "configured_processors", i, "configuration"),
                        f"processor {name!r} has no configuration {spec.configuration!r}",
                    )
                )
        for cp in (c for c in cfg.configured_processors() if c.processor == name):
            if cp.id in all_ids:
                out.append(
                    at(
                        (*loc, "configured_processors"),
                        f"configured processor id {cp.id!r} is also used by {all_ids[cp.id]!r}",
                    )
                )
            all_ids[cp.id] = name
        if not proc.produces and not any(p == name for p in claimed.values()):
            out.append(
                at(
                    loc,
                    f"processor {name!r} makes no product class (name it in a class's "
                    "'processor' or in 'produces')",
                )
            )


def _check_rules(cfg: MissionConfig, at: IssueAt, out: list[ConfigIssue]) -> None:
    cp_ids = {c.id: c.processor for c in cfg.configured_processors()}
    for ptype, pc in cfg.product_classes.items():
        loc = ("product_classes", ptype, "selection_rules")
        enclosing = cfg.enclosing_of(ptype)
        if pc.selection_rules and enclosing is not None and not pc.processor:
            out.append(
                at(
                    loc,
                    f"{ptype} is a component of {enclosing}: it is made with its enclosing "
                    f"class, whose selection rules apply",
                )
            )
        elif pc.selection_rules and cfg.producer_of(ptype) is None:
            out.append(
                at(
                    loc,
                    f"{ptype} has no processor, so it cannot have selection rules "
                    "(input-only classes are ingested, not made)",
                )
            )
        for i, spec in enumerate(pc.selection_rules):
            try:
                sources = [(src.product_type, offset) for src, offset in source_offsets(spec.rule)]
            except RuleSyntaxError as exc:
                out.append(at((*loc, i, "rule"), str(exc)))  # "character N: ...; expected ..."
                sources = []
            for source, offset in sources:
                if source not in cfg.product_classes:
                    out.append(
                        at(
                            (*loc, i, "rule"),
                            f"character {offset}: unknown product class {source!r}" + _close(source, cfg),
                        )
                    )
                elif source == ptype:
                    out.append(at((*loc, i, "rule"), f"character {offset}: {ptype} cannot be its own input"))
            if spec.mode is not None and spec.mode not in cfg.mission.processing_modes:
                out.append(
                    at(
                        (*loc, i, "mode"),
                        f"unknown processing mode {spec.mode!r}" + _known(cfg.mission.processing_modes),
                    )
                )
            for j, cp in enumerate(spec.configured_processors):
                if cp not in cp_ids:
                    out.append(
                        at((*loc, i, "configured_processors", j), f"unknown configured processor {cp!r}")
                    )
                elif cp_ids[cp] != cfg.producer_of(ptype):
                    out.append(
                        at(
                            (*loc, i, "configured_processors", j),
                            f"configured processor {cp!r} belongs to {cp_ids[cp]!r}, "
                            f"which does not make {ptype}",
                        )
                    )


def _check_images(
    cfg: MissionConfig, loc: tuple[str, str], versions: Sequence[Any], at: IssueAt, out: list[ConfigIssue]
) -> None:
    """Every version needs an image when a job step may run in a pod.

    An order may choose any facility of the mission, so a processor can run on each of
    them: one Kubernetes facility makes the image of every processor version required.
    """
    pods = sorted(n for n, f in cfg.facilities.items() if f.backend is Backend.KUBERNETES)
    if not pods:
        return
    for i, version in enumerate(versions):
        if version.image is None:
            out.append(
                at(
                    (*loc, "versions", i),
                    f"version {version.version!r} needs an 'image': facility {pods[0]!r} "
                    "runs job steps as Kubernetes pods",
                )
            )


def _check_facilities(cfg: MissionConfig, at: IssueAt, out: list[ConfigIssue]) -> None:
    defaults = [n for n, f in cfg.facilities.items() if f.default]
    if len(defaults) > 1:
        out.append(
            at(
                ("facilities", defaults[1], "default"),
                f"only one facility can be the default ({defaults[0]!r} already is)",
            )
        )
    if not defaults and len(cfg.facilities) > 1:
        out.append(at(("facilities",), "with several facilities, mark one 'default: true'"))


def _check_cycles(cfg: MissionConfig, at: IssueAt, out: list[ConfigIssue]) -> None:
    graph: dict[str, list[str]] = {}
    for ptype, pc in cfg.product_classes.items():
        made = cfg.producer_of(ptype) is not None
        # Rules of input-only classes are refused elsewhere; they add no dependency.
        deps = [s for spec in pc.selection_rules for s, _ in rule_sources(spec.rule)] if made else []
        enclosing = cfg.enclosing_of(ptype)
        if enclosing is not None and not pc.processor:
            deps.append(enclosing)  # a component is made when its enclosing class is
        graph[ptype] = [d for d in deps if d in cfg.product_classes and d != ptype]
    component_cycles = [set(c) for c in _find_cycles(_component_graph(cfg))]
    for cycle in _find_cycles(graph):
        if set(cycle) in component_cycles:
            continue  # reported once, as a component cycle
        out.append(
            at(
                ("product_classes", cycle[0], "selection_rules"),
                "the product graph has a cycle: " + " -> ".join([*cycle, cycle[0]]),
            )
        )


def _find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected component (iterative DFS)."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []
    for root in graph:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, idx = stack.pop()
            if idx == 0:
                state[node] = 1
                path.append(node)
            children = graph.get(node, [])
            if idx < len(children):
                stack.append((node, idx + 1))
                child = children[idx]
                if state.get(child) == 1:
                    cycle = path[path.index(child) :]
                    if not any(set(cycle) == set(c) for c in cycles):
                        cycles.append(cycle)
                elif child not in state:
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return cycles


def _known(names: Any) -> str:
    names = sorted(names)
    return f" (known: {', '.join(names)})" if names else " (none are defined)"


def _close(name: str, cfg: MissionConfig) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(cfg.product_classes), n=1)
    return f"; did you mean {match[0]!r}?" if match else ""
