"""The trigger form: one typed Param per field of the order request, in sections.

Fields whose choices come from the catalogue (mission, requested classes, modes, file
classes, facilities, processors, the parameters file names need) are built here from
:class:`~proseo.orchestration.order_request.choices.MissionChoices`; the fixed
sections come from :mod:`~proseo.orchestration.order_request.fields`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from proseo.catalog.model_product import ProductionType
from proseo.orchestration.order_request.choices import MissionChoices
from proseo.orchestration.order_request.fields import (
    S_ORDER,
    S_PARAMETERS,
    S_PROCESSING,
    _advanced_params,
    _input_params,
    _period_params,
    _slicing_params,
)

#: The DAG this form triggers; generated order identifiers hash it with the run id.
DAG_ID = "proseo_order_request"

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


def _union(values: Any) -> list[str]:
    out: list[str] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _owners(missions: list[MissionChoices], attribute: str, value: str) -> str:
    return ", ".join(m.code for m in missions if value in getattr(m, attribute))


_PLACEHOLDER = {"integer": 1, "float": 0.0, "boolean": False, "string": ""}


def _name_parameter_defaults(mission: MissionChoices | None) -> dict[str, Any]:
    """``{"*": {...}}`` with the parameters the default mission's file names need."""
    if mission is None or not mission.name_parameters:
        return {}
    return {"*": {k: _PLACEHOLDER.get(v, "") for k, v in mission.name_parameters.items()}}


def request_params(missions: list[MissionChoices]) -> dict[str, Param]:
    """The trigger form: one Param per field of the order request (JSON-schema typed)."""
    default = next((m for m in missions if m.default_classes), missions[0] if missions else None)
    codes = [m.code for m in missions]
    mission_schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if codes:
        mission_schema = {
            "type": "string",
            "enum": codes,
            "values_display": {m.code: f"{m.code}: {m.name}" for m in missions},
        }
    classes = _union(c for m in missions for c in m.producible)
    class_hint: dict[str, Any] = {}
    if classes:
        class_hint = {
            "examples": classes,
            "values_display": {
                c: f"{c} ({_owners(missions, 'producible', c)}): "
                + next(m.producible[c] for m in missions if c in m.producible)
                for c in classes
            },
        }
    modes = _union(x for m in missions for x in m.modes)
    file_classes = _union(x for m in missions for x in m.file_classes)

    def optional_choice(values: list[str], attribute: str, none_label: str) -> dict[str, Any]:
        if not values:
            return {"type": ["null", "string"]}
        display: dict[Any, str] = {None: none_label}
        display.update({v: f"{v} ({_owners(missions, attribute, v)})" for v in values})
        return {"type": ["null", "string"], "enum": [None, *values], "values_display": display}

    facilities = _union(x for m in missions for x in m.facilities)
    processors = _union(x for m in missions for x in m.configured_processors)
    name_help = "; ".join(
        f"{m.code} names its products with {', '.join(f'{k} ({v})' for k, v in m.name_parameters.items())}"
        for m in missions
        if m.name_parameters
    )
    name_help = f'Needed in "*": {name_help}; other missions need none.' if name_help else ""
    duration_help = "A duration such as `6 h`, `90 min`, `PT6H` or `1 d`."

    return {
        # --- Order
        "mission": Param(
            default.code if default else None,
            title="Mission",
            description="The mission the order belongs to (missions loaded in the catalogue).",
            section=S_ORDER,
            **mission_schema,
        ),
        "identifier": Param(
            None,
            type=["null", "string"],
            maxLength=200,
            pattern=r"^([A-Za-z0-9][A-Za-z0-9_.:-]*)?$",
            title="Order identifier",
            description="Unique within the mission; letters, digits and _ . : -. Leave empty to "
            "generate one (first requested class, start and a code of this DAG run). A second "
            "run with the same identifier and request does not create a second order.",
            section=S_ORDER,
        ),
        "requested_classes": Param(
            list(default.default_classes) if default else [],
            type="array",
            items={"type": "string", "minLength": 1},
            uniqueItems=True,
            title="Requested product classes",
            description="The product classes the order must produce; their inputs are planned "
            "backwards through the selection rules. Only classes with a processor can be requested.",
            section=S_ORDER,
            **class_hint,
        ),
        "priority": Param(
            50,
            type="integer",
            minimum=1,
            maximum=100,
            title="Priority",
            description="1 (lowest) to 100 (highest); the priority weight of the order's tasks.",
            section=S_ORDER,
        ),
        **_period_params(),
        # --- Processing
        "processing_mode": Param(
            None,
            title="Processing mode",
            description="Empty: the mission's first mode.",
            section=S_PROCESSING,
            **optional_choice(modes, "modes", "the mission's default mode"),
        ),
        "output_file_class": Param(
            None,
            title="Output file class",
            description="File class of the products written. Empty: the mission's first file class.",
            section=S_PROCESSING,
            **optional_choice(file_classes, "file_classes", "the mission's default file class"),
        ),
        "production_type": Param(
            ProductionType.ON_DEMAND_DEFAULT.value,
            type="string",
            enum=[p.value for p in ProductionType],
            title="Production type",
            description="Recorded on every product the order makes.",
            section=S_PROCESSING,
        ),
        "facility": Param(
            None,
            type=["null", "string"],
            title="Processing facility",
            description="Empty: the mission's default facility.",
            section=S_PROCESSING,
            **({"examples": facilities} if facilities else {}),
        ),
        "configured_processors": Param(
            [],
            type="array",
            items={"type": "string"},
            uniqueItems=True,
            title="Pinned configured processors",
            description="Configured processors to use (at most one per processor); otherwise "
            "the newest enabled one for the mode.",
            section=S_PROCESSING,
            **({"examples": processors} if processors else {}),
        ),
        **_slicing_params(duration_help),
        **_input_params(duration_help),
        # --- Parameters
        "output_parameters": Param(
            _name_parameter_defaults(default),
            type="object",
            title="Output parameters",
            description='Per product class ("*" for every class), parameters of the products '
            "written. " + (name_help or 'E.g. {"*": {"collection": 1}}.'),
            section=S_PARAMETERS,
        ),
        "dynamic_parameters": Param(
            {},
            type="object",
            title="Dynamic processing parameters",
            description="Key/value pairs handed to every processor run in its Job Order.",
            section=S_PARAMETERS,
        ),
        **_advanced_params(),
    }
