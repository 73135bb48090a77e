"""Orbits of a spacecraft: from an inline table, a CSV file, or epoch + period.

ORBIT slicing cuts orders at orbit boundaries, so the orbit list must be gap-free:
numbers consecutive, each orbit starting exactly where the previous one stopped.
Every violation is reported with the row it concerns.

A mission has at most :data:`~proseo.missions.models.MAX_ORBITS` orbits per spacecraft
(decades of a low orbit): a generator whose epoch, period and ``until`` would make more
is refused before generating anything (a period of 1 ms would otherwise loop for
hours), as is one that would run past the year 9999.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from proseo.errors import ConfigIssue
from proseo.missions.models import MAX_ORBIT_NUMBER, MAX_ORBITS, OrbitGenerator, OrbitRow, Orbits
from proseo.missions.types import format_duration, format_utc, parse_utc


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
        return _generate(spec.generate, issue_at=issue_at, loc=(*loc, "generate"))
    if spec.table is not None:
        rows = [(r, (*loc, "table", i)) for i, r in enumerate(spec.table)]
        orbits = [Orbit(r.number, r.start, r.stop) for r, _ in rows]
        return orbits, check_gap_free(orbits, lambda i, msg: issue_at(rows[i][1], msg))
    assert spec.file is not None
    return _read_orbit_file(spec.file, base_dir=base_dir, issue_at=issue_at, loc=(*loc, "file"))


def _generate(
    gen: OrbitGenerator, *, issue_at: IssueAt, loc: tuple[str | int, ...]
) -> tuple[list[Orbit], list[ConfigIssue]]:
    """Orbit ``first_orbit + k`` spans ``epoch + k * period`` to ``epoch + (k + 1) * period``."""
    period = format_duration(gen.period)
    if gen.until is not None:
        count = -(-(gen.until - gen.epoch) // gen.period)  # orbits starting before 'until'
        if count > MAX_ORBITS:
            span = f"{format_utc(gen.epoch)} to {format_utc(gen.until)}"
            return [], [
                issue_at(
                    (*loc, "period"),
                    f"a period of {period} from {span} makes {count} orbits; at most {MAX_ORBITS} "
                    "are allowed (check the period's unit, or move 'epoch' or 'until')",
                )
            ]
    else:
        assert gen.count is not None
        count = gen.count
    last = gen.first_orbit + count - 1
    if last > MAX_ORBIT_NUMBER:
        return [], [
            issue_at((*loc, "first_orbit"), f"orbit numbers would reach {last}, beyond {MAX_ORBIT_NUMBER}")
        ]
    try:
        gen.epoch + gen.period * count
    except OverflowError:
        return [], [
            issue_at(
                (*loc, "period"),
                f"{count} orbits of {period} from {format_utc(gen.epoch)} run past the year 9999",
            )
        ]
    orbits = [
        Orbit(gen.first_orbit + k, gen.epoch + gen.period * k, gen.epoch + gen.period * (k + 1))
        for k in range(count)
    ]
    return orbits, []


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
        try:
            if reader.fieldnames is None or not {"number", "start", "stop"} <= set(reader.fieldnames):
                return [], [issue_at(loc, f"{path}: the header must name the columns number,start,stop")]
            for row in reader:
                if len(orbits) + len(issues) >= MAX_ORBITS:
                    issues.append(
                        ConfigIssue(str(path), "", reader.line_num, f"more than {MAX_ORBITS} orbits")
                    )
                    break
                try:
                    parsed = OrbitRow(
                        number=int(row["number"]), start=parse_utc(row["start"]), stop=parse_utc(row["stop"])
                    )
                except (TypeError, ValueError) as exc:
                    issues.append(ConfigIssue(str(path), "", reader.line_num, f"bad orbit row: {exc}"))
                    continue
                orbits.append(Orbit(parsed.number, parsed.start, parsed.stop))
                lines.append(reader.line_num)
        except (csv.Error, UnicodeDecodeError, OSError) as exc:  # binary files, huge fields, devices
            return [], [ConfigIssue(str(path), "", reader.line_num + 1, f"not a CSV orbit file: {exc}")]
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
