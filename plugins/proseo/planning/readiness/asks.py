"""What a stored input query asks the catalogue for, read back from its rule text.

The poll and the refresh both turn a query's stored rule into the (product type,
window) pairs it looks at; parsing and widening are cached here because the same
rule texts and step windows come back on every poll.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from proseo.planning.selection import FALLS_BACK, NEAREST
from proseo.rules.ast import WINDOWLESS, Alternative, SimpleRule
from proseo.rules.evaluate import widen
from proseo.rules.parser import parse_simple


@lru_cache(maxsize=4096)
def _rule(text: str) -> SimpleRule:
    """Stored rule texts repeat across thousands of steps: parse each once per process."""
    return parse_simple(text)


@dataclass
class _Open:
    """One open query as the poll sees it: per alternative, the class and the window asked."""

    mandatory: bool
    # (product type, (lo, hi) or None when any product of the class may matter)
    asks: list[tuple[str, tuple[datetime, datetime] | None]] = field(default_factory=list)


def _span(alt: Alternative, start: datetime, stop: datetime) -> tuple[datetime, datetime] | None:
    """The union of the windows an alternative's policies look at; ``None``: the whole class."""
    if any(p.name in WINDOWLESS or p.name in NEAREST or p.name in FALLS_BACK for p in alt.chain):
        return None
    windows = [widen(start, stop, p) for p in alt.chain]
    return min(w.start for w in windows), max(w.stop for w in windows)


def _asks(
    rule: SimpleRule, start: datetime, stop: datetime
) -> list[tuple[str, tuple[datetime, datetime] | None]]:
    return [(alt.source.product_type, _span(alt, start, stop)) for alt in rule.alternatives]


_Ask = tuple[str, tuple[datetime, datetime] | None]


@lru_cache(maxsize=1 << 17)
def _asks_of(
    text: str, start: datetime, stop: datetime
) -> tuple[tuple[str, tuple[datetime, datetime] | None], ...]:
    """A stored rule's asks for a step window; steady polls ask the same again and again."""
    return tuple(_asks(_rule(text), start, stop))
