"""Backward expansion: from requested classes and a period to every processor run needed.

Level by level: the requested classes are sliced (order slicing, else the class's
own) into job steps; each job step's input rules are evaluated against existing
products *and* outputs already planned in this order. An input whose class has a
processor gets the missing slices of that class (in the class's own slicing)
planned as further job steps, merged with identical ones, linked by explicit edges.
Input-only classes never get job steps: an unsatisfied mandatory input leaves the
job step waiting for input. Catalogue reads are batched per level and class
(:mod:`proseo.planning.candidates`). Nothing is written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from proseo.errors import PlanningError, PlanTooLarge
from proseo.missions.filenames import TemplateError, render
from proseo.missions.models import ConfiguredProcessor, MissionConfig
from proseo.missions.orbits import Orbit
from proseo.missions.types import SlicingType
from proseo.planning.candidates import CandidateCache, ClassNeeds
from proseo.planning.choose import choose_processor
from proseo.planning.claims import ClaimedOutputs
from proseo.planning.index import CandidateIndex
from proseo.planning.model import Plan, PlannedOutput, Reused, StepPlan, planned_id
from proseo.planning.selection import Selector
from proseo.planning.slicing import Slice, SlicingError, make_slices, orbit_range, orbits_in
from proseo.planning.spec import OrderSpec, effective_file_class, effective_mode
from proseo.rules.merge import ScopedRule, applicable_rules, scoped_rules
from proseo.rules.policies import Candidate

DEFAULT_MAX_STEPS = 1_000


class Planner:
    """Plans one order against one mission revision and the catalogue (through ``cache``)."""

    def __init__(
        self,
        cfg: MissionConfig,
        orbits: Sequence[Orbit],
        spec: OrderSpec,
        cache: CandidateCache,
        *,
        now: datetime,
        max_steps: int = DEFAULT_MAX_STEPS,
        claimed: ClaimedOutputs | None = None,
    ) -> None:
        self.cfg = cfg
        self.orbits = list(orbits)
        self.spec = spec
        self.cache = cache
        self.claimed = claimed
        self.max_steps = max_steps
        self.mode = effective_mode(spec, cfg)
        self.file_class = effective_file_class(spec, cfg)
        self.plan = Plan(self.mode, self.file_class, now.replace(microsecond=0), [], [])
        self._by_key: dict[tuple[str, datetime, datetime], StepPlan] = {}
        self._planned: dict[str, CandidateIndex] = {}
        self._existing: dict[str, tuple[int, CandidateIndex]] = {}
        self._claimed: dict[str, tuple[int, CandidateIndex]] = {}
        self._rules: dict[str, list[ScopedRule]] = {}
        self._applicable: dict[tuple[str, str], list[ScopedRule]] = {}
        self._run_class: dict[str, str] = {}
        self._producible: dict[str, bool] = {}
        self._slices: dict[tuple[str, datetime, datetime], list[Slice]] = {}
        self.processor_choice: dict[str, ConfiguredProcessor] = {}  # run class -> chosen (choose.py)
        self.selector = Selector(self)

    # -- helpers used by the selector ---------------------------------------------

    def fail(self, message: str) -> PlanningError:
        return PlanningError(message, mission=self.cfg.code, order=self.spec.identifier)

    def producible(self, product_type: str) -> bool:
        found = self._producible.get(product_type)
        if found is None:
            found = self._producible[product_type] = self._is_producible(product_type)
        return found

    def _is_producible(self, product_type: str) -> bool:
        if product_type not in self.cfg.product_classes or self.cfg.producer_of(product_type) is None:
            return False
        # Listing the enclosing class as input-only covers its components too.
        return not {product_type, self.run_class(product_type)} & set(self.spec.input_only_classes)

    def run_class(self, product_type: str) -> str:
        """The class a job step is run for: components are made by their enclosing class's run."""
        found = self._run_class.get(product_type)
        if found is not None:
            return found
        current = product_type
        while not self.cfg.product_classes[current].processor and self.cfg.enclosing_of(current):
            current = self.cfg.enclosing_of(current) or current
        self._run_class[product_type] = current
        return current

    def slices_of(self, product_type: str, start: datetime, stop: datetime) -> list[Slice]:
        """The slices of the class's own slicing meeting ``[start, stop]`` (the same windows
        come back for every class of an orbit, so they are cut once)."""
        key = (self.run_class(product_type), start, stop)
        found = self._slices.get(key)
        if found is None:
            found = self._slices[key] = self._cut(key[0], start, stop)
        return found

    def _cut(self, run_class: str, start: datetime, stop: datetime) -> list[Slice]:
        slicing = self.cfg.product_classes[run_class].slicing
        try:
            return make_slices(
                slicing.type,
                start,
                stop,
                duration=slicing.duration,
                overlap=slicing.overlap,
                orbits=self.orbits,
                anchor=slicing.anchor,
            )
        except SlicingError as exc:
            raise self.fail(f"slicing {run_class}: {exc}") from exc

    def _existing_index(self, product_type: str) -> CandidateIndex:
        version = self.cache.version(product_type)
        held = self._existing.get(product_type)
        if held is None or held[0] != version:
            held = (version, CandidateIndex(self.cache.candidates(product_type)))
            self._existing[product_type] = held
        return held[1]

    def existing_candidates(
        self, product_type: str, lo: datetime | None = None, hi: datetime | None = None
    ) -> list[Candidate]:
        """Catalogue products of a class; with ``lo``/``hi`` only those meeting that window."""
        index = self._existing_index(product_type)
        return index.all() if lo is None or hi is None else index.touching(lo, hi)

    def claimed_candidates(
        self, product_type: str, lo: datetime | None = None, hi: datetime | None = None
    ) -> list[Candidate]:
        """Outputs other active orders plan (see :mod:`proseo.planning.claims`), likewise."""
        if self.claimed is None:
            return []
        version = self.claimed.version(product_type)
        held = self._claimed.get(product_type)
        if held is None or held[0] != version:
            held = (version, CandidateIndex(self.claimed.candidates(product_type)))
            self._claimed[product_type] = held
        return held[1].all() if lo is None or hi is None else held[1].touching(lo, hi)

    def class_version(self, product_type: str) -> tuple[int, int, int]:
        """Changes whenever a candidate of the class is added (catalogue, claimed, planned)."""
        planned = self._planned.get(product_type)
        return (
            self.cache.version(product_type),
            self.claimed.version(product_type) if self.claimed is not None else 0,
            len(planned) if planned is not None else 0,
        )

    def count_candidates(self, product_type: str) -> int:
        """How many candidates of a class there are in all (catalogue, claimed, planned)."""
        planned = self._planned.get(product_type)
        return (
            len(self._existing_index(product_type))
            + len(self.claimed_candidates(product_type))
            + (len(planned) if planned is not None else 0)
        )

    def planned_candidates(
        self, product_type: str, lo: datetime | None = None, hi: datetime | None = None
    ) -> list[Candidate]:
        """Outputs planned so far in this order, likewise."""
        index = self._planned.get(product_type)
        if index is None:
            return []
        return index.all() if lo is None or hi is None else index.touching(lo, hi)

    # -- the plan -----------------------------------------------------------------

    def run(self) -> Plan:
        frontier = self._requested_steps()
        while frontier:
            self._prefetch(frontier)
            created: list[StepPlan] = []
            # In time order, the classes of one slice come one after the other: they share
            # most input rules, and their evaluations are remembered (planning/sources.py).
            for step in sorted(frontier, key=lambda s: (s.slice.start, s.slice.stop, s.index)):
                for rule in self.rules_for(step):
                    step.inputs.append(self.selector.select(step, rule, created))
            frontier = created
        self.plan.queries = self.cache.queries + (self.claimed.queries if self.claimed else 0)
        return self.plan

    def _requested_steps(self) -> list[StepPlan]:
        spec = self.spec
        needs: dict[str, ClassNeeds] = {}
        per_class: list[tuple[str, list[Slice]]] = []
        for product_type in spec.requested_classes:
            slices = self._order_slices(product_type)
            per_class.append((product_type, slices))
            need = needs.setdefault(product_type, ClassNeeds())
            need.add_window(slices[0].start, slices[-1].stop)
        self._fetch(needs)
        steps: list[StepPlan] = []
        for product_type, slices in per_class:
            for piece in slices:
                existing = self._identical(product_type, piece)
                if existing is not None:
                    self.plan.reused.append(Reused(product_type, piece, existing))
                    continue
                step, new = self.step_for(product_type, piece, depth=0, requested=True)
                if new:
                    steps.append(step)
        return steps

    def _order_slices(self, product_type: str) -> list[Slice]:
        spec = self.spec
        own = self.cfg.product_classes[self.run_class(product_type)].slicing
        kind = spec.slicing.type if spec.slicing else own.type
        duration = spec.slicing.duration if spec.slicing else own.duration
        overlap = spec.slicing.overlap if spec.slicing else own.overlap
        # An order's own TIME_SLICE keeps the class's grid anchor (orders have none of their
        # own: the anchor belongs to the data, and every order must cut the same slices).
        anchor = own.anchor if own.type is SlicingType.TIME_SLICE else None
        try:
            if spec.orbit_from is not None and spec.orbit_to is not None:
                chosen = orbit_range(self.orbits, spec.orbit_from, spec.orbit_to)
                if kind is SlicingType.ORBIT:
                    return [Slice(o.start, o.stop, o.number) for o in chosen]
                start, stop = chosen[0].start, chosen[-1].stop
            else:
                assert spec.start is not None and spec.stop is not None
                start, stop = spec.start, spec.stop
            return make_slices(
                kind, start, stop, duration=duration, overlap=overlap, orbits=self.orbits, anchor=anchor
            )
        except SlicingError as exc:
            raise self.fail(f"slicing {product_type}: {exc}") from exc

    def _identical(self, product_type: str, piece: Slice) -> int | None:
        """An existing product this order would make again (same class, processor, mode, ...)."""
        processor = choose_processor(self, self.run_class(product_type))
        wanted = self.output_parameters(product_type)
        for cand in self.existing_candidates(product_type, piece.start, piece.stop):
            a = cand.attributes
            if (
                cand.start == piece.start
                and cand.stop == piece.stop
                and a.get("file_class") == self.file_class
                and a.get("mode") == self.mode
                and a.get("configured_processor") == processor.id
                and all(a.get(k) == v for k, v in wanted.items())
            ):
                return int(cand.id)
        return None

    def output_parameters(self, product_type: str) -> dict[str, Any]:
        """The order's output parameters of a class: its own, and those of ``*`` that the
        class (or the mission) declares (``*`` means every class that has the parameter)."""
        table = self.spec.output_parameters
        declared = self.cfg.parameter_types(product_type)
        common = {k: v for k, v in table.get("*", {}).items() if k in declared}
        return {**common, **table.get(product_type, {})}

    def step_for(
        self, product_type: str, piece: Slice, *, depth: int, requested: bool
    ) -> tuple[StepPlan, bool]:
        """The job step making ``product_type`` for ``piece``: found (merged) or created."""
        run_class = self.run_class(product_type)
        key = (run_class, piece.start, piece.stop)
        found = self._by_key.get(key)
        if found is not None:
            found.requested = found.requested or requested
            return found, False
        if len(self.plan.steps) >= self.max_steps:
            raise self._too_large()
        index = len(self.plan.steps)
        processor = choose_processor(self, run_class)
        outputs = [
            self._output(t, piece) for t in (run_class, *self.cfg.product_classes[run_class].components)
        ]
        step = StepPlan(index, run_class, piece, processor, outputs, requested, depth)
        self.plan.steps.append(step)
        self._by_key[key] = step
        for n, out in enumerate(outputs):
            attributes = {
                **out.parameters,
                "file_class": self.file_class,
                "mode": self.mode,
                "production_type": self.spec.production_type.value,
                "configured_processor": processor.id,
            }
            self._planned.setdefault(out.product_type, CandidateIndex()).add(
                Candidate(
                    planned_id(index, n), piece.start, piece.stop, self.plan.generation_time, attributes
                )
            )
        return step, True

    def _output(self, product_type: str, piece: Slice) -> PlannedOutput:
        params = self.output_parameters(product_type)
        values = {
            **params,
            "product_type": product_type,
            "file_class": self.file_class,
            "mode": self.mode,
            "start": piece.start,
            "stop": piece.stop,
            "generation": self.plan.generation_time,
            "mission": self.cfg.code,
        }
        orbit = piece.orbit if piece.orbit is not None else self._orbit_at(piece.start)
        if orbit is not None:
            values["orbit"] = orbit
        try:
            name = render(self.cfg.class_template(product_type), values)
        except TemplateError as exc:
            raise self.fail(
                f"cannot name {product_type} outputs: {exc} (give it in the order's output_parameters)"
            ) from exc
        return PlannedOutput(product_type, name, piece.start, piece.stop, piece.orbit, params)

    def _orbit_at(self, instant: datetime) -> int | None:
        """The orbit holding ``instant`` (names of non-orbit slices carry their start orbit)."""
        found = orbits_in(self.orbits, instant, instant) if self.orbits else []
        return found[0].number if found else None

    def _too_large(self) -> PlanTooLarge:
        spec = self.spec
        top = sum(1 for s in self.plan.steps if s.requested) or 1
        requested = sum(len(self._order_slices(t)) for t in spec.requested_classes)
        estimate = max(self.max_steps + 1, math.ceil(len(self.plan.steps) / top * requested))
        parts = math.ceil(estimate / self.max_steps)
        return PlanTooLarge(
            f"the plan needs more than {self.max_steps:,} job steps (about {estimate:,} for "
            f"{spec.window_text()}); split the period into at least {parts} orders, "
            f"or raise the bound (planning setting max_job_steps)",
            mission=self.cfg.code,
            order=spec.identifier,
        )

    # -- rules --------------------------------------------------------------------

    def rules_for(self, step: StepPlan) -> list[ScopedRule]:
        """The step's input rules, parsed and merged once per run class and processor."""
        key = (step.product_type, step.processor.id)
        found = self._applicable.get(key)
        if found is None:
            found = self._applicable[key] = self._rules_for(step)
        return found

    def _rules_for(self, step: StepPlan) -> list[ScopedRule]:
        if step.product_type not in self._rules:
            pc = self.cfg.product_classes[step.product_type]
            specs = [
                (r.rule, r.mode, r.configured_processors, f"{step.product_type}.selection_rules[{i}]")
                for i, r in enumerate(pc.selection_rules)
            ]
            self._rules[step.product_type] = scoped_rules(specs)
        return applicable_rules(self._rules[step.product_type], self.mode, step.processor.id)

    def _prefetch(self, steps: Sequence[StepPlan]) -> None:
        """One batch of reads for a level: per rule, the span of its steps' slices is enough
        (a class's needs are the union of windows, so each rule is widened once, not per step)."""
        spans: dict[int, tuple[ScopedRule, datetime, datetime]] = {}
        for step in steps:
            for rule in self.rules_for(step):
                held = spans.get(id(rule))
                a, b = step.slice.start, step.slice.stop
                spans[id(rule)] = (rule, a, b) if held is None else (rule, min(held[1], a), max(held[2], b))
        needs: dict[str, ClassNeeds] = {}
        for rule, lo, hi in spans.values():
            self.selector.add_needs(needs, rule, lo, hi)
        self._fetch(needs)

    def _fetch(self, needs: dict[str, ClassNeeds]) -> None:
        self.cache.fetch(needs)
        if self.claimed is not None:
            self.claimed.fetch(needs)
