"""Load a mission file: YAML -> pydantic models -> cross-reference checks -> orbits.

:func:`load_mission` either returns a fully checked :class:`LoadedMission` or raises
one :class:`ConfigError` listing every problem with file, YAML path and line.
Nothing is written anywhere; the catalogue sync takes a LoadedMission.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from proseo.errors import ConfigError, ConfigIssue
from proseo.missions import crossref
from proseo.missions.filenames import (
    NameMetadata,
    compile_template,
    read_name,
    template_time_formats,
)
from proseo.missions.models import MissionConfig, dump_config
from proseo.missions.orbits import Orbit, build_orbits
from proseo.missions.yamlsource import YamlDocument, load_yaml

_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


@dataclass(frozen=True)
class LoadedMission:
    """A validated mission configuration with everything derived from it."""

    config: MissionConfig
    file: str
    text: str
    orbits: dict[str, list[Orbit]] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.config.mission.code

    @cached_property
    def digest(self) -> str:
        """Content hash of the *meaning* of the file: comments and layout do not count."""
        payload = {
            "config": dump_config(self.config),
            "orbits": {
                sc: [[o.number, o.start.isoformat(), o.stop.isoformat()] for o in orbits]
                for sc, orbits in sorted(self.orbits.items())
            },
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    @cached_property
    def _name_readers(self) -> dict[str, tuple[re.Pattern[str], dict[str, str]]]:
        readers = {}
        m = self.config.mission
        for ptype, pc in self.config.product_classes.items():
            if pc.file_name_pattern is not None:
                fmt = pc.time_format
                readers[ptype] = (
                    re.compile(pc.file_name_pattern),
                    {"start": fmt, "stop": fmt, "generation": fmt},
                )
            else:
                template = self.config.class_template(ptype)
                readers[ptype] = (
                    compile_template(
                        template,
                        product_type=ptype,
                        mission=m.code,
                        file_classes=m.file_classes,
                        modes=m.processing_modes,
                    ),
                    template_time_formats(template),
                )
        return readers

    def read_file_name(self, product_type: str, name: str) -> NameMetadata | None:
        """Metadata a file name carries for ``product_type``; None if it does not match."""
        pattern, formats = self._name_readers[product_type]
        return read_name(pattern, name, time_formats=formats)

    def classes_matching(self, name: str) -> list[str]:
        """Product types whose file-name pattern matches ``name`` (for ingestion without --class)."""
        return [t for t, (pattern, _) in self._name_readers.items() if pattern.match(name)]


def load_mission(path: str | Path, *, text: str | None = None, orbit_files: bool = True) -> LoadedMission:
    """Load and check one mission file; raises ConfigError naming every problem.

    ``orbit_files=False`` refuses ``orbits: {file: ...}``: a file posted over the REST
    API must not make the server read its own files (or a device that never ends).
    """
    doc = load_yaml(path, text=text)
    if not isinstance(doc.data, dict):
        raise ConfigError([ConfigIssue(doc.file, "", 1, "the file must be a mapping with a 'mission' key")])
    try:
        config = MissionConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(list(_pydantic_issues(doc, exc))) from exc

    issues = crossref.check(config, doc.issue)
    orbits: dict[str, list[Orbit]] = {}
    base_dir = Path(path).resolve().parent
    for i, sc in enumerate(config.spacecraft):
        if sc.orbits is None:
            continue
        if sc.orbits.file is not None and not orbit_files:
            issues.append(
                doc.issue(
                    ("spacecraft", i, "orbits", "file"),
                    "orbit files are not read for a mission sent to the server; "
                    "give the orbits as a 'table' or 'generate' them, or load the file with the CLI",
                )
            )
            continue
        found, orbit_issues = build_orbits(
            sc.orbits, base_dir=base_dir, issue_at=doc.issue, loc=("spacecraft", i, "orbits")
        )
        orbits[sc.code] = found
        issues += orbit_issues
    if issues:
        raise ConfigError(_sorted(issues))
    return LoadedMission(config=config, file=doc.file, text=_text_of(path, text), orbits=orbits)


def load_missions(paths: Iterable[str | Path]) -> list[LoadedMission]:
    """Load several files; all their problems are reported together."""
    loaded: list[LoadedMission] = []
    issues: list[ConfigIssue] = []
    codes: dict[str, str] = {}
    for path in paths:
        try:
            mission = load_mission(path)
        except ConfigError as exc:
            issues += exc.issues
            continue
        if mission.code in codes:
            issues.append(
                ConfigIssue(
                    mission.file,
                    "mission.code",
                    None,
                    f"mission {mission.code} is also defined in {codes[mission.code]}",
                )
            )
        codes[mission.code] = mission.file
        loaded.append(mission)
    if issues:
        raise ConfigError(issues)
    return loaded


def _text_of(path: str | Path, text: str | None) -> str:
    return text if text is not None else Path(path).read_text(encoding="utf-8")


def _pydantic_issues(doc: YamlDocument, exc: ValidationError) -> Iterable[ConfigIssue]:
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        message = err["msg"]
        for prefix in _PYDANTIC_PREFIXES:
            message = message.removeprefix(prefix)
        if err["type"] == "extra_forbidden":
            message = f"unknown key {err['loc'][-1]!r}"
        elif err["type"] == "missing":
            message = f"required key {err['loc'][-1]!r} is missing"
        issue = doc.issue(err["loc"], message)
        if (issue.path, issue.message) not in seen:
            seen.add((issue.path, issue.message))
            yield issue


def _sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(issues, key=lambda i: (i.file, i.line or 0, i.path))


def describe(mission: LoadedMission) -> dict[str, Any]:
    """Short summary used by ``proseo mission validate`` and ``show``."""
    cfg = mission.config
    return {
        "code": cfg.mission.code,
        "name": cfg.mission.name,
        "product_classes": len(cfg.product_classes),
        "processors": len(cfg.processors),
        "configured_processors": len(cfg.configured_processors()),
        "facilities": sorted(cfg.facilities),
        "orbits": {sc: len(o) for sc, o in mission.orbits.items()},
        "digest": mission.digest[:12],
    }
