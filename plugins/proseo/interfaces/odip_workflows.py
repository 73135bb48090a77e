"""ODIP ``Workflows``, derived from a mission file, and the check of an order's WorkflowOptions.

A workflow is what a client may order: one per producible product class and the
processor that makes it (a mission file has one processor per class, so the class
names the workflow). Its options are the processor's dynamic processing parameters as
its configurations declare them, with the newest configuration's value as the default
and the value's type as the option's type. Nothing is stored: workflows change when
the mission file does, and are read from the mission's latest revision.

Components (an L1B band made in its enclosing class's run) are workflows too: the
order for a band plans the enclosing run like any other order does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from proseo.interfaces.request_fields import FieldError
from proseo.missions.crossref import rule_sources
from proseo.missions.models import MissionConfig
from proseo.missions.types import version_key

#: Stable Ids: the same mission, class and processor give the same Id everywhere.
_NAMESPACE = uuid.UUID("6f1c2d3e-9a4b-4c5d-8e7f-0a1b2c3d4e5f")


class OdipRequestError(FieldError):
    """A refused ODIP request body: names the field (OData's ``target``)."""


@dataclass(frozen=True)
class WorkflowOption:
    name: str
    type: str  # String, Integer, Double, Boolean
    default: Any
    description: str

    def coerce(self, value: Any, where: str) -> Any:
        """``value`` as this option's type; refuses a value of another type, naming ``where``."""
        ok = {
            "Boolean": isinstance(value, bool),
            "Integer": isinstance(value, int) and not isinstance(value, bool),
            "Double": isinstance(value, int | float) and not isinstance(value, bool),
            "String": isinstance(value, str),
        }[self.type]
        if not ok:
            raise OdipRequestError(where, f"option {self.name} takes a {self.type}, not {value!r}")
        return float(value) if self.type == "Double" else value


@dataclass(frozen=True)
class Workflow:
    id: str
    name: str
    mission: str
    product_class: str
    processor: str
    version: str
    description: str
    documentation: str
    input_types: tuple[str, ...]
    options: tuple[WorkflowOption, ...] = field(default=())

    def entity(self) -> dict[str, Any]:
        """The OData entity (JSON)."""
        return {
            "Id": self.id,
            "Name": self.name,
            "DisplayName": f"{self.product_class} ({self.mission}, {self.processor})",
            "Description": self.description,
            "Documentation": self.documentation,
            "InputProductType": self.input_types[0] if self.input_types else None,
            "InputProductTypes": list(self.input_types),
            "OutputProductType": self.product_class,
            "WorkflowVersion": self.version,
            "WorkflowOptions": [
                {
                    "Name": o.name,
                    "Description": o.description,
                    "Type": o.type,
                    "Default": o.default,
                    "Value": [],
                }
                for o in self.options
            ],
        }

    def options_to_parameters(self, given: list[Any]) -> dict[str, Any]:
        """WorkflowOptions [{Name, Value}] -> the order's dynamic processing parameters."""
        known = {o.name: o for o in self.options}
        out: dict[str, Any] = {}
        for i, item in enumerate(given):
            where = f"WorkflowOptions[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("Name"), str) or "Value" not in item:
                raise OdipRequestError(where, 'an option is {"Name": <text>, "Value": <value>}')
            name = item["Name"]
            option = known.get(name)
            if option is None:
                names = ", ".join(known) or "none"
                raise OdipRequestError(
                    f"{where}.Name", f"workflow {self.name} has no option {name!r} (options: {names})"
                )
            if name in out:
                raise OdipRequestError(f"{where}.Name", f"option {name} given twice")
            out[name] = option.coerce(item["Value"], f"{where}.Value")
        return out


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    return "String"


def workflows(cfg: MissionConfig) -> list[Workflow]:
    """Every workflow of a mission, ordered by name."""
    out = []
    for name, pclass in cfg.product_classes.items():
        processor = cfg.producer_of(name)
        if processor is None or processor not in cfg.processors:
            continue
        proc = cfg.processors[processor]
        versions = sorted((v.version for v in proc.versions), key=version_key)
        configs = sorted(proc.configurations, key=lambda c: version_key(c.version))
        defaults: dict[str, Any] = {}
        for c in configs:  # newest configuration last, so its values win
            defaults.update(c.dynamic_parameters)
        options = tuple(
            WorkflowOption(
                key, _type_of(value), value, f"dynamic processing parameter of processor {processor}"
            )
            for key, value in sorted(defaults.items())
        )
        source = cfg.enclosing_of(name) or name
        inputs: list[str] = []
        for rule in cfg.product_classes[source].selection_rules:
            for cls, _ in rule_sources(rule.rule):
                if cls not in inputs:
                    inputs.append(cls)
        wf_name = f"{cfg.code}.{name}"
        out.append(
            Workflow(
                id=str(uuid.uuid5(_NAMESPACE, f"{cfg.code}/{name}/{processor}")),
                name=wf_name,
                mission=cfg.code,
                product_class=name,
                processor=processor,
                version=versions[-1] if versions else "",
                description=pclass.description or f"{name} made by {processor}",
                documentation=proc.description,
                input_types=tuple(inputs),
                options=options,
            )
        )
    return sorted(out, key=lambda w: w.name)
