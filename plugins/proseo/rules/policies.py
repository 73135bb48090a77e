"""The selection policies: given candidate products and a window, which to take.

Each function receives the candidates of one source class (already filtered) and the
widened window ``W = [t0 - T0, t1 + T1]``, and returns the products it selects, in a
deterministic order. "Latest" means the newest generation time. Among equally new
products the one whose validity centre lies nearest the window's centre wins (so a
planned run of the same orbit is preferred to one of the next orbit, which the
planner would otherwise make a dependency); remaining ties go to the higher product
id, so results never depend on query order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from proseo.rules.ast import PolicyName


@dataclass(frozen=True)
class Candidate:
    """What a policy needs to know about a product."""

    id: Any
    start: datetime
    stop: datetime
    generation: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    start: datetime
    stop: datetime

    @property
    def centre(self) -> datetime:
        return self.start + (self.stop - self.start) / 2

    @property
    def length(self) -> timedelta:
        return self.stop - self.start


def _latest_key(c: Candidate) -> tuple[datetime, Any]:
    return (c.generation, _id_key(c.id))


def _id_key(value: Any) -> Any:
    return (0, value) if isinstance(value, int) else (1, str(value))


def _best(cands: Sequence[Candidate], key: Callable[[Candidate], Any], w: Window) -> list[Candidate]:
    """The single candidate maximising ``key``, then the latest, then the nearest; empty if none."""
    if not cands:
        return []
    centre = w.centre

    def rank(c: Candidate) -> tuple[Any, ...]:
        nearness = -abs(c.start + (c.stop - c.start) / 2 - centre)
        return (key(c), c.generation, nearness, _id_key(c.id))

    return [max(cands, key=rank)]


def covers(c: Candidate, w: Window) -> bool:
    return c.start <= w.start and c.stop >= w.stop


def intersects(c: Candidate, w: Window) -> bool:
    """Strict: touching a boundary does not count, except for a zero-length window."""
    if w.start == w.stop:
        return c.start <= w.start <= c.stop
    return c.start < w.stop and c.stop > w.start


def overlap(c: Candidate, w: Window) -> timedelta:
    return max(timedelta(0), min(c.stop, w.stop) - max(c.start, w.start))


def _by_validity(cands: Sequence[Candidate]) -> list[Candidate]:
    return sorted(cands, key=lambda c: (c.start, c.stop, _id_key(c.id)))


def val_cover(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _by_validity([c for c in cands if covers(c, w)])


def latest_val_cover(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best([c for c in cands if covers(c, w)], lambda c: 0, w)


def val_intersect(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _by_validity([c for c in cands if intersects(c, w)])


def val_intersect_without_duplicates(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    newest: dict[tuple[datetime, datetime], Candidate] = {}
    for c in val_intersect(cands, w):
        kept = newest.get((c.start, c.stop))
        if kept is None or _latest_key(c) > _latest_key(kept):
            newest[(c.start, c.stop)] = c
    return _by_validity(list(newest.values()))


def latest_val_intersect(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best([c for c in cands if intersects(c, w)], lambda c: 0, w)


def latest_validity(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best(cands, lambda c: c.start, w)


def latest_stop_validity(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best(cands, lambda c: c.stop, w)


def latest_validity_closest(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    centre = w.centre
    return _best(cands, lambda c: -abs(c.start - centre), w)


def closest_start_validity(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best(cands, lambda c: -abs(c.start - w.start), w)


def closest_stop_validity(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best(cands, lambda c: -abs(c.stop - w.stop), w)


def best_centered_cover(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best([c for c in cands if covers(c, w)], lambda c: min(w.start - c.start, c.stop - w.stop), w)


def latest_val_cover_closest(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best([c for c in cands if covers(c, w)], lambda c: -abs(c.start - w.start), w)


def latest_val_cover_newest_validity(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return latest_val_cover(cands, w) or latest_validity(cands, w)


def largest_overlap(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best(
        [c for c in cands if intersects(c, w)], lambda c: (overlap(c, w), -abs(c.start - w.start)), w
    )


def largest_overlap_85(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    """A zero-length window is covered entirely by any product containing its instant."""
    best = largest_overlap(cands, w)
    if best and overlap(best[0], w) * 100 >= w.length * 85:
        return best
    return []


def last_created(cands: Sequence[Candidate], w: Window) -> list[Candidate]:
    return _best(cands, lambda c: 0, w)


POLICIES: dict[PolicyName, Callable[[Sequence[Candidate], Window], list[Candidate]]] = {
    PolicyName.VAL_COVER: val_cover,
    PolicyName.LATEST_VAL_COVER: latest_val_cover,
    PolicyName.VAL_INTERSECT: val_intersect,
    PolicyName.VAL_INTERSECT_WITHOUT_DUPLICATES: val_intersect_without_duplicates,
    PolicyName.LATEST_VAL_INTERSECT: latest_val_intersect,
    PolicyName.LATEST_VALIDITY: latest_validity,
    PolicyName.LATEST_STOP_VALIDITY: latest_stop_validity,
    PolicyName.LATEST_VALIDITY_CLOSEST: latest_validity_closest,
    PolicyName.CLOSEST_START_VALIDITY: closest_start_validity,
    PolicyName.CLOSEST_STOP_VALIDITY: closest_stop_validity,
    PolicyName.BEST_CENTERED_COVER: best_centered_cover,
    PolicyName.LATEST_VAL_COVER_CLOSEST: latest_val_cover_closest,
    PolicyName.LATEST_VAL_COVER_NEWEST_VALIDITY: latest_val_cover_newest_validity,
    PolicyName.LARGEST_OVERLAP: largest_overlap,
    PolicyName.LARGEST_OVERLAP_85: largest_overlap_85,
    PolicyName.LAST_CREATED: last_created,
}
