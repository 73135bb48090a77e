"""The selection-rule syntax tree, and its canonical text.

A rule is a list of simple rules; a simple rule is one or more alternatives (``FOR A
SELECT ... ELSE FOR B SELECT ...``) and a qualifier; an alternative is a source (a
product type with optional ``/key:value`` filters) and a chain of policies kept in
written order. Printing is canonical (policy names and keywords as in the reference,
units upper case, the qualifier always written) so ``parse(str(rule)) == rule``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from functools import cached_property


class Unit(StrEnum):
    D = "d"
    H = "h"
    M = "m"
    S = "s"
    MS = "ms"


_MILLISECONDS = {Unit.D: 86_400_000, Unit.H: 3_600_000, Unit.M: 60_000, Unit.S: 1000, Unit.MS: 1}


@dataclass(frozen=True)
class Delta:
    """A non-negative widening of the window: ``12 h``; a bare number means days.

    Equality is structural (``1 D`` and ``24 H`` are different texts); compare
    durations through :attr:`milliseconds`, which is exact at any size.
    """

    value: int
    unit: Unit = Unit.D

    @property
    def milliseconds(self) -> int:
        return self.value * _MILLISECONDS[self.unit]

    @cached_property
    def timedelta(self) -> timedelta:
        """The duration; OverflowError beyond ``timedelta.max`` (callers clamp)."""
        return timedelta(milliseconds=self.milliseconds)

    def __str__(self) -> str:
        return f"{self.value} {self.unit.value.upper()}"


class PolicyName(StrEnum):
    VAL_COVER = "ValCover"
    LATEST_VAL_COVER = "LatestValCover"
    VAL_INTERSECT = "ValIntersect"
    VAL_INTERSECT_WITHOUT_DUPLICATES = "ValIntersectWithoutDuplicates"
    LATEST_VAL_INTERSECT = "LatestValIntersect"
    LATEST_VALIDITY = "LatestValidity"
    LATEST_STOP_VALIDITY = "LatestStopValidity"
    LATEST_VALIDITY_CLOSEST = "LatestValidityClosest"
    CLOSEST_START_VALIDITY = "ClosestStartValidity"
    CLOSEST_STOP_VALIDITY = "ClosestStopValidity"
    BEST_CENTERED_COVER = "BestCenteredCover"
    LATEST_VAL_COVER_CLOSEST = "LatestValCoverClosest"
    LATEST_VAL_COVER_NEWEST_VALIDITY = "LatestValCoverNewestValidity"
    LARGEST_OVERLAP = "LargestOverlap"
    LARGEST_OVERLAP_85 = "LargestOverlap85"
    LAST_CREATED = "LastCreated"


#: Every spelling the language accepts (case-insensitive), mapped to its policy.
POLICY_SPELLINGS: dict[str, PolicyName] = {p.value.lower(): p for p in PolicyName}
POLICY_SPELLINGS["lateststartvalidity"] = PolicyName.LATEST_VALIDITY

#: Policies that ignore the window and therefore take no deltas.
WINDOWLESS = frozenset({PolicyName.LATEST_VALIDITY, PolicyName.LATEST_STOP_VALIDITY, PolicyName.LAST_CREATED})


@dataclass(frozen=True)
class Policy:
    name: PolicyName
    deltas: tuple[Delta, Delta] | None = None

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """The canonical text, computed once (a year's plan prints each policy ~10^5 times)."""
        if self.deltas is None:
            return self.name.value
        return f"{self.name.value}({self.deltas[0]}, {self.deltas[1]})"


@dataclass(frozen=True)
class Source:
    """A product type, optionally narrowed by ``/key:value`` filters (kept in written order)."""

    product_type: str
    filters: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        if not self.filters:
            return self.product_type
        return self.product_type + "/" + ",".join(f"{k}:{v}" for k, v in self.filters)


@dataclass(frozen=True)
class Alternative:
    source: Source
    chain: tuple[Policy, ...]

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        return f"FOR {self.source} SELECT " + " OR ".join(str(p) for p in self.chain)


class QualifierKind(StrEnum):
    MANDATORY = "MANDATORY"
    OPTIONAL = "OPTIONAL"
    MINCOVER = "MINCOVER"


@dataclass(frozen=True)
class Qualifier:
    kind: QualifierKind = QualifierKind.MANDATORY
    percent: int | None = None

    @property
    def mandatory(self) -> bool:
        return self.kind is not QualifierKind.OPTIONAL

    def __str__(self) -> str:
        return f"MINCOVER({self.percent})" if self.kind is QualifierKind.MINCOVER else self.kind.value


@dataclass(frozen=True)
class SimpleRule:
    """One input of a job step: alternatives tried in order, under one qualifier."""

    alternatives: tuple[Alternative, ...]
    qualifier: Qualifier = field(default_factory=Qualifier)

    @property
    def source(self) -> Source:
        """The first (preferred) source."""
        return self.alternatives[0].source

    @property
    def product_types(self) -> tuple[str, ...]:
        return tuple(a.source.product_type for a in self.alternatives)

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """The canonical text, computed once: every planned input stores it."""
        return " ELSE ".join(str(a) for a in self.alternatives) + f" {self.qualifier}"


@dataclass(frozen=True)
class Rule:
    """Everything one rule text says: simple rules separated by ``;``."""

    rules: tuple[SimpleRule, ...]

    def __str__(self) -> str:
        return "; ".join(str(r) for r in self.rules)

    def __iter__(self) -> Iterator[SimpleRule]:
        return iter(self.rules)
