"""Orbits of a spacecraft: from an inline table, a CSV file, or epoch + period.

ORBIT slicing cuts orders at orbit boundaries, so the orbit list must be gap-free:
numbers consecutive, each orbit starting exactly where the previous one stopped.
Every violation is reported with the row it concerns.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from proseo.errors import ConfigIssue
from proseo.missions.models import OrbitRow, Orbits
from proseo.missions.types import format_utc, parse_utc


@dataclass(frozen=True, order=True)
class Orbit:
    number: int
    start: datetime
    stop: datetime


IssueAt = Callable[[tuple[str | int, ...], str], ConfigIssue]


def build_orbits(
    spec: Orbits, *, base_dir: Path, issue_at: IssueAt, loc: tuple[str | int, ...]
) -> tuple[list[Orbit], list[ConfigIssue]]:
    """Resolve an orbit specification and check it; returns orbits and issues."""
    if spec.generate is not None:
        gen = spec.generate
        orbits: list[Orbit] = []
        number, start = gen.first_orbit, gen.epoch
        while True:
            if gen.count is not None and len(orbits) >= gen.count:
                break
            if gen.until is not None and start >= gen.until:
                break
            stop = gen.epoch + gen.period * (number - gen.first_orbit + 1)
            orbits.append(Orbit(number, start, stop))
            number, start = number + 1, stop
        return orbits, []
    if spec.table is not None:
        rows = [(r, (*loc, "table", i)) for i, r in enumerate(spec.table)]
        orbits = [Orbit(r.number, r.start, r.stop) for r, _ in rows]
        return orbits, check_gap_free(orbits, lambda i, msg: issue_at(rows[i][1], msg))
    assert spec.file is not None
    return _read_orbit_file(spec.file, base_dir=base_dir, issue_at=issue_at, loc=(*loc, "file"))


def _read_orbit_file(
    name: str, *, base_dir: Path, issue_at: IssueAt, loc: tuple[str | int, ...]
) -> tuple[list[Orbit], list[ConfigIssue]]:
    path = (base_dir / name).resolve()
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        return [], [issue_at(loc, f"cannot read orbit file {path}: {exc.strerror}")]
    orbits: list[Orbit] = []
    lines: list[int] = []
    issues: list[ConfigIssue] = []
    with handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"number", "start", "stop"} <= set(reader.fieldnames):
            return [], [issue_at(loc, f"{path}: the header must name the columns number,start,stop")]
        for row in reader:
            try:
                parsed = OrbitRow(
                    number=int(row["number"]), start=parse_utc(row["start"]), stop=parse_utc(row["stop"])
                )
            except (TypeError, ValueError) as exc:
                issues.append(ConfigIssue(str(path), "", reader.line_num, f"bad orbit row: {exc}"))
                continue
            orbits.append(Orbit(parsed.number, parsed.start, parsed.stop))
            lines.append(reader.line_num)
    if not orbits and not issues:
        issues.append(issue_at(loc, f"{path}: the orbit file has no rows"))
    issues += check_gap_free(orbits, lambda i, msg: ConfigIssue(str(path), "", lines[i], msg))
    return orbits, issues


def check_gap_free(orbits: Iterable[Orbit], issue: Callable[[int, str], ConfigIssue]) -> list[ConfigIssue]:
    """Orbits must be numbered consecutively and follow each other without gap or overlap."""
    issues: list[ConfigIssue] = []
    previous: Orbit | None = None
    for i, orbit in enumerate(orbits):
        if orbit.stop <= orbit.start:
            issues.append(issue(i, f"orbit {orbit.number} stops before it starts"))
        if previous is not None:
            if orbit.number != previous.number + 1:
                issues.append(
                    issue(
                        i,
                        f"orbit {orbit.number} follows orbit {previous.number}: numbers must be consecutive",
                    )
                )
            elif orbit.start != previous.stop:
                kind = "gap" if orbit.start > previous.stop else "overlap"
                issues.append(
                    issue(
                        i,
                        f"{kind} between orbit {previous.number} (stop {format_utc(previous.stop)}) "
                        f"and orbit {orbit.number} (start {format_utc(orbit.start)})",
                    )
                )
        previous = orbit
    return issues
