"""Candidates of one class kept sorted by validity start, for window lookups.

A month of orbits holds thousands of candidates per class; scanning all of them for
each job step's rule would make planning quadratic. Products of a class have
bounded validity, so everything intersecting ``[lo, hi]`` starts within
``[lo - longest validity, hi]``: two bisections find them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from datetime import datetime, timedelta

from proseo.rules.policies import Candidate


class CandidateIndex:
    def __init__(self, candidates: Iterable[Candidate] = ()) -> None:
        self._rows: list[tuple[datetime, int, Candidate]] = []
        self._starts: list[datetime] = []
        self._longest = timedelta(0)
        self._seq = 0
        self._all: list[Candidate] | None = None  # all(), kept until the next add
        for c in candidates:
            self.add(c)

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, candidate: Candidate) -> None:
        self._all = None
        self._seq += 1
        row = (candidate.start, self._seq, candidate)
        if not self._rows or row >= self._rows[-1]:
            self._rows.append(row)
            self._starts.append(candidate.start)
        else:
            insort(self._rows, row)
            self._starts.insert(bisect_right(self._starts, candidate.start), candidate.start)
        self._longest = max(self._longest, candidate.stop - candidate.start)

    def all(self) -> list[Candidate]:
        """Every candidate by start (the same list until the next add: callers must not change it)."""
        if self._all is None:
            self._all = [row[2] for row in self._rows]
        return self._all

    def touching(self, lo: datetime, hi: datetime) -> list[Candidate]:
        """Candidates whose validity meets ``[lo, hi]`` (boundaries included; policies are stricter)."""
        if not self._rows:
            return []
        first = bisect_left(self._starts, lo - self._longest)
        last = bisect_right(self._starts, hi)
        return [row[2] for row in self._rows[first:last] if row[2].stop >= lo]
