"""The ``proseo_order_request`` DAG: a trigger form that creates, plans and releases an order.

An operator fills in the form in the Airflow UI (or posts the same fields as ``conf``
to ``POST /api/v2/dags/proseo_order_request/dagRuns``); five tasks then carry the
order through its life cycle:

``validate``  the conf through :class:`~proseo.planning.spec.OrderSpec` and
              :func:`~proseo.planning.spec.check_against`; a bad request fails here
              (no retries) with every problem named by its form field, nothing written
``create``    the order (INITIAL); an order with the same identifier and the same
              request is recognised, a different request under that identifier refused
``approve``   INITIAL -> APPROVED (skipped when the order is further on)
``plan``      APPROVED/PLANNING_FAILED -> PLANNED, reporting the plan summary
``release``   PLANNED -> RELEASED; the order's DAG (``dag_id`` in XCom) is then built
              by the factory's shard files

Every step looks at the order's state first, so a retry after a crash, or a second run
with the same identifier, moves the order forward or skips, and never creates a second
order. An empty identifier is generated from the DAG run's id, so it is the same on
every retry of that run.

The form's choices (missions, producible classes, modes, file classes) are read from
the catalogue when the file is parsed, in one query; with an empty or unreachable
catalogue the fields fall back to plain strings, so the DAG file always parses.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from proseo.catalog.db import Catalog, default_url, make_engine, normalize_url
from proseo.catalog.mission_sync import get_mission, latest_revision
from proseo.catalog.model_mission import Mission, MissionRevision
from proseo.catalog.model_order import OrderEvent, OrderState, ProcessingOrder
from proseo.catalog.model_product import ProductionType
from proseo.catalog.schema import require_current
from proseo.errors import ConflictError, IllegalTransition, NotFoundError, OrderError, PlanningError
from proseo.missions.filenames import template_fields
from proseo.missions.models import MissionConfig
from proseo.missions.types import ProcessingLevel, SlicingType
from proseo.planning import lifecycle
from proseo.planning import orders as ops
from proseo.planning.spec import (
    OnInputTimeout,
    OrderSpec,
    check_against,
    effective_file_class,
    effective_mode,
)

log = logging.getLogger(__name__)

DAG_ID = "proseo_order_request"
START = datetime(2025, 1, 1, tzinfo=UTC)
#: The sample missions' data day (make demo, the tests): the form's default period.
DEFAULT_START = "2025-03-01T00:00:00+00:00"
DEFAULT_STOP = "2025-03-02T00:00:00+00:00"
#: How long parsing waits for an unreachable PostgreSQL catalogue before falling back.
PARSE_CONNECT_TIMEOUT_S = 5

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"

# Form sections, in the order the form shows them.
S_ORDER = "Order"
S_PERIOD = "Period (start/stop or an orbit range)"
S_PROCESSING = "Processing"
S_SLICING = "Slicing"
S_INPUTS = "Inputs"
S_PARAMETERS = "Parameters"
S_ADVANCED = "Advanced"


class RequestError(OrderError):
    """The trigger conf is not a valid order request; the message names each field."""


# --- what the form offers: read from the catalogue when the DAG file is parsed ---------


@dataclass(frozen=True)
class MissionChoices:
    """What the form can offer for one mission (from its latest revision)."""

    code: str
    name: str
    modes: tuple[str, ...]
    file_classes: tuple[str, ...]
    #: Classes an order may request (they have a processor), with their descriptions.
    producible: dict[str, str] = field(default_factory=dict)
    #: The requested classes the form proposes by default (highest level first).
    default_classes: tuple[str, ...] = ()
    facilities: tuple[str, ...] = ()
    configured_processors: tuple[str, ...] = ()
    #: Mission parameters the product file names need (``output_parameters["*"]``), with types.
    name_parameters: dict[str, str] = field(default_factory=dict)


def _choices(code: str, name: str, config: dict[str, Any]) -> MissionChoices:
    cfg = MissionConfig.model_validate(config)
    producible = {n: pc.description for n, pc in cfg.product_classes.items() if cfg.producer_of(n)}
    levels = list(ProcessingLevel)

    def rank(n: str) -> int:
        level = cfg.product_classes[n].level
        return levels.index(level) if level in levels else -1

    top = max((rank(n) for n in producible), default=-1)
    in_names = {f.name for n in producible for f in template_fields(cfg.class_template(n))}
    return MissionChoices(
        code=code,
        name=name,
        modes=tuple(cfg.mission.processing_modes),
        file_classes=tuple(cfg.mission.file_classes),
        producible=producible,
        default_classes=tuple(n for n in producible if rank(n) == top)[:1],
        facilities=tuple(cfg.facilities),
        configured_processors=tuple(cp.id for cp in cfg.configured_processors() if cp.enabled),
        name_parameters={k: v.value for k, v in cfg.mission.parameters.items() if k in in_names},
    )


def known_missions(url: str | None = None) -> list[MissionChoices]:
    """The missions of the catalogue and what the form offers for them: ONE query.

    Returns ``[]`` (and logs why) when the catalogue is empty, missing, not migrated or
    unreachable; a missing SQLite file is not created. Never raises: the DAG file that
    calls this must always parse.
    """
    try:
        url = normalize_url(url or os.environ.get("PROSEO_CATALOG_URL") or default_url())
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:" and not Path(parsed.database).exists():
                log.info("proseo catalogue %s does not exist yet: the order form offers no choices", url)
                return []
        else:
            kwargs["connect_args"] = {"connect_timeout": PARSE_CONNECT_TIMEOUT_S}
        latest = (
            select(MissionRevision.mission_id, func.max(MissionRevision.number).label("number"))
            .group_by(MissionRevision.mission_id)
            .subquery()
        )
        query = (
            select(Mission.code, Mission.name, MissionRevision.config)
            .join(latest, latest.c.mission_id == Mission.id)
            .join(
                MissionRevision,
                (MissionRevision.mission_id == Mission.id) & (MissionRevision.number == latest.c.number),
            )
            .order_by(Mission.code)
        )
        engine = make_engine(url, **kwargs)
        try:
            with engine.connect() as conn:
                rows = conn.execute(query).all()
        finally:
            engine.dispose()
    except Exception as exc:  # the DAG file must parse whatever the catalogue does
        log.warning(
            "proseo catalogue not readable (%s: %s): the order form offers no choices",
            type(exc).__name__,
            exc,
        )
        return []
    out = []
    for code, name, config in rows:
        try:
            out.append(_choices(code, name, config))
        except Exception as exc:
            log.warning(
                "mission %s: its configuration does not validate here (%s); left out of the form", code, exc
            )
    return out


# --- the form -----------------------------------------------------------------------


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
        # --- Period
        "start": Param(
            DEFAULT_START,
            type=["null", "string"],
            format="date-time",
            title="Start (UTC)",
            description="Start of the period to process (ISO 8601). Leave start and stop empty "
            "to give an orbit range instead.",
            section=S_PERIOD,
        ),
        "stop": Param(
            DEFAULT_STOP,
            type=["null", "string"],
            format="date-time",
            title="Stop (UTC)",
            description="End of the period (exclusive; after start).",
            section=S_PERIOD,
        ),
        "orbit_from": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            title="First orbit",
            description="Instead of start/stop: the first orbit to process (missions with a spacecraft).",
            section=S_PERIOD,
        ),
        "orbit_to": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            title="Last orbit",
            description="Instead of start/stop: the last orbit to process (inclusive).",
            section=S_PERIOD,
        ),
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
        # --- Slicing
        "slicing_type": Param(
            None,
            type=["null", "string"],
            enum=[None, *(s.value for s in SlicingType)],
            values_display={None: "each class's own slicing", **{s.value: s.value for s in SlicingType}},
            title="Slicing override",
            description="Slice the requested classes this way instead of each class's own slicing.",
            section=S_SLICING,
        ),
        "slice_duration": Param(
            None,
            type=["null", "string"],
            title="Slice duration",
            description=f"TIME_SLICE only: the length of a slice. {duration_help}",
            section=S_SLICING,
        ),
        "slice_overlap": Param(
            None,
            type=["null", "string"],
            title="Slice overlap",
            description=f"TIME_SLICE only: overlap added at each end of a slice. {duration_help}",
            section=S_SLICING,
        ),
        # --- Inputs
        "input_timeout": Param(
            None,
            type=["null", "string"],
            title="Input timeout",
            description="How long a job step waits for inputs not yet delivered. Empty: no limit. "
            + duration_help,
            section=S_INPUTS,
        ),
        "on_input_timeout": Param(
            OnInputTimeout.FAIL.value,
            type="string",
            enum=[o.value for o in OnInputTimeout],
            values_display={
                OnInputTimeout.FAIL.value: "FAIL: the job step fails",
                OnInputTimeout.RUN_WITH_AVAILABLE.value: "RUN_WITH_AVAILABLE: it runs with what exists",
            },
            title="On input timeout",
            description="What a job step does when its input timeout expires.",
            section=S_INPUTS,
        ),
        "input_only_classes": Param(
            [],
            type="array",
            items={"type": "string"},
            uniqueItems=True,
            title="Input-only classes",
            description="Classes never to produce in this order, only to wait for.",
            section=S_INPUTS,
        ),
        "input_filters": Param(
            {},
            type="object",
            title="Input filters",
            description="Per input class, parameter values its products must have, "
            'e.g. {"RAW_EXP": {"filter": "g"}}.',
            section=S_INPUTS,
        ),
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
        # --- Advanced
        "execution_time": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Earliest execution time (UTC)",
            description="Empty: as soon as it is released.",
            section=S_ADVANCED,
        ),
        "notification_endpoint": Param(
            None,
            type=["null", "string"],
            pattern=r"^((https?|mailto):.*)?$",
            title="Notification endpoint",
            description="http(s):// or mailto: address told when the order ends.",
            section=S_ADVANCED,
        ),
        "max_steps": Param(
            lifecycle.DEFAULT_MAX_STEPS,
            type="integer",
            minimum=1,
            title="Job-step bound",
            description="Planning refuses plans with more job steps than this "
            "(and says how to split the order).",
            section=S_ADVANCED,
        ),
        "release": Param(
            True,
            type="boolean",
            title="Release after planning",
            description="Off: the order stays PLANNED for review "
            "(release it later with `proseo order release`).",
            section=S_ADVANCED,
        ),
    }


#: Form fields that are not fields of OrderSpec.
_CONTROL = {"mission", "release", "max_steps", "slicing_type", "slice_duration", "slice_overlap"}
_SLICING_FIELDS = {"type": "slicing_type", "duration": "slice_duration", "overlap": "slice_overlap"}


# --- validate -----------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def generated_identifier(spec: OrderSpec, run_id: str) -> str:
    """``<first class>-<start or orbits>-<8 hex of the run id>``: the same on every retry of a run."""
    cls = re.sub(r"[^A-Za-z0-9_.:-]", "_", spec.requested_classes[0]).strip("_") or "order"
    if spec.start is not None:
        period = spec.start.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    else:
        period = f"o{spec.orbit_from}-{spec.orbit_to}"
    code = hashlib.sha256(f"{DAG_ID}/{run_id}".encode()).hexdigest()[:8]
    return f"{cls}-{period}-{code}"


def _field_of(error: dict[str, Any], names: list[str]) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    if loc and loc[0] == "slicing":
        return _SLICING_FIELDS.get(loc[1], "slicing_type") if len(loc) > 1 else "slicing_type"
    if loc:
        return ".".join(loc)
    # A check over several fields (period, orbits): name the fields its message mentions.
    message = str(error.get("msg", ""))
    hits = sorted(
        (m.start(), n) for n in names if (m := re.search(rf"(?<![\w.]){re.escape(n)}(?![\w.])", message))
    )
    return ", ".join(n for _, n in hits) or "(request)"


def spec_from_params(
    params: dict[str, Any], conf: dict[str, Any] | None, run_id: str
) -> tuple[str, OrderSpec]:
    """The mission and OrderSpec the form (``params``, defaults merged) asks for.

    ``conf`` is the raw trigger conf: a key the form does not know is refused (a typo
    must not silently fall back to a default). Raises :class:`RequestError` naming
    every field at fault.
    """
    names = list(request_params([]))
    unknown = sorted(set(conf or {}) - set(names))
    if unknown:
        raise RequestError(
            f"invalid order request: unknown field(s) {', '.join(map(repr, unknown))} "
            f"(the request's fields: {', '.join(names)})"
        )
    mission = params.get("mission")
    if _blank(mission):
        raise RequestError("invalid order request: mission: a mission is required")
    data: dict[str, Any] = {
        k: v for k, v in params.items() if k in OrderSpec.model_fields and k not in _CONTROL and not _blank(v)
    }
    generate = "identifier" not in data
    if generate:
        data["identifier"] = "generated"
    if not _blank(params.get("slicing_type")):
        data["slicing"] = {
            key: params[name] for key, name in _SLICING_FIELDS.items() if not _blank(params.get(name))
        }
    else:
        stray = [n for n in ("slice_duration", "slice_overlap") if not _blank(params.get(n))]
        if stray:
            raise RequestError(
                f"invalid order request: {stray[0]}: applies only with slicing_type TIME_SLICE",
                mission=mission,
            )
    try:
        spec = OrderSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_field_of(e, names)}: {e['msg']}" for e in exc.errors())
        raise RequestError(f"invalid order request: {problems}", mission=mission) from exc
    if generate:
        spec = spec.model_copy(update={"identifier": generated_identifier(spec, run_id)})
    return str(mission), spec


def validate_request(
    catalog: Catalog, params: dict[str, Any], conf: dict[str, Any] | None, run_id: str
) -> dict[str, Any]:
    """Check the request completely (fields, then against the mission); writes nothing."""
    mission, spec = spec_from_params(params, conf, run_id)
    with catalog.session() as session:
        try:
            row = get_mission(session, mission)
        except NotFoundError as exc:
            raise RequestError(f"invalid order request: mission: {exc}") from exc
        revision = latest_revision(session, row.id)
        assert revision is not None
        check_against(spec, MissionConfig.model_validate(revision.config))
    return {
        "mission": mission,
        "identifier": spec.identifier,
        "request": spec.model_dump(mode="json"),
        "release": bool(params.get("release", True)),
        "max_steps": int(params.get("max_steps") or lifecycle.DEFAULT_MAX_STEPS),
    }


# --- create, approve, plan, release: each recognises work already done ----------------


def _ref(order: ProcessingOrder, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "mission": request["mission"],
        "identifier": order.identifier,
        "state": order.state,
    }


def _find(session: Any, mission: str, identifier: str) -> ProcessingOrder | None:
    try:
        return ops.get_order(session, mission, identifier)
    except NotFoundError:
        return None


def _differences(session: Any, order: ProcessingOrder, spec: OrderSpec, cfg: MissionConfig) -> list[str]:
    """Fields in which ``spec`` differs from the stored order (defaults resolved as create does)."""
    stored = ops.spec_of(session, order).model_dump()
    wanted = spec.model_copy(
        update={
            "processing_mode": effective_mode(spec, cfg),
            "output_file_class": effective_file_class(spec, cfg),
            "facility": spec.facility or (cfg.default_facility() if stored["facility"] else None),
        }
    ).model_dump()
    return [name for name in wanted if wanted[name] != stored[name]]


def create_step(catalog: Catalog, request: dict[str, Any]) -> dict[str, Any]:
    mission, identifier = request["mission"], request["identifier"]
    spec = OrderSpec.model_validate(request["request"])
    with catalog.session() as session:
        existing = _find(session, mission, identifier)
        if existing is not None:
            cfg = MissionConfig.model_validate(latest_revision(session, existing.mission_id).config)  # type: ignore[union-attr]
            differs = _differences(session, existing, spec, cfg)
            if differs:
                raise RequestError(
                    f"an order with this identifier exists with a different request "
                    f"(differs in: {', '.join(differs)}); choose another identifier",
                    mission=mission,
                    order=identifier,
                )
            log.info("%s/%s exists already (%s): not created again", mission, identifier, existing.state)
            return {**_ref(existing, request), "created": False}
        order = ops.create_order(session, mission, spec)
        log.info("created order %s/%s (id %s, INITIAL)", mission, identifier, order.id)
        return {**_ref(order, request), "created": True}


def _state(catalog: Catalog, request: dict[str, Any]) -> ProcessingOrder:
    with catalog.session() as session:
        order = ops.get_order(session, request["mission"], request["identifier"])
        session.expunge(order)
        return order


def approve_step(catalog: Catalog, request: dict[str, Any]) -> dict[str, Any]:
    order = _state(catalog, request)
    if order.state == OrderState.INITIAL.value:
        order = lifecycle.approve_order(catalog, request["mission"], request["identifier"])
        return {**_ref(order, request), "approved": True}
    log.info("%s/%s is %s: approval skipped", request["mission"], request["identifier"], order.state)
    return {**_ref(order, request), "approved": False}


def plan_step(catalog: Catalog, request: dict[str, Any]) -> dict[str, Any]:
    mission, identifier = request["mission"], request["identifier"]
    order = _state(catalog, request)
    planned = False
    if order.state in (OrderState.APPROVED.value, OrderState.PLANNING_FAILED.value):
        plan = lifecycle.plan_order(
            catalog, mission, identifier, max_steps=request.get("max_steps") or lifecycle.DEFAULT_MAX_STEPS
        )
        planned = True
        log.info("planned %s/%s: %s", mission, identifier, plan.summary())
    elif order.state in (OrderState.INITIAL.value, OrderState.PLANNING.value):
        raise OrderError(f"cannot plan an order in state {order.state}", mission=mission, order=identifier)
    else:
        log.info("%s/%s is %s: planning skipped", mission, identifier, order.state)
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        return {
            **_ref(order, request),
            "planned": planned,
            "plan": order.plan_summary,
            "job_steps": ops.step_counts(session, order),
        }


def release_step(catalog: Catalog, request: dict[str, Any]) -> dict[str, Any]:
    mission, identifier = request["mission"], request["identifier"]
    released = False
    note = None
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        last = session.scalar(
            select(OrderEvent.operation)
            .where(OrderEvent.order_id == order.id)
            .order_by(OrderEvent.id.desc())
            .limit(1)
        )
    if order.state == OrderState.PLANNED.value:
        if last in ("suspend", "suspended"):
            note = "suspended by an operator: not released again (resume it explicitly)"
        elif not request.get("release", True):
            note = "release=false: left PLANNED for review"
        else:
            lifecycle.release_order(catalog, mission, identifier)
            released = True
    elif order.state in (
        OrderState.INITIAL.value,
        OrderState.APPROVED.value,
        OrderState.PLANNING.value,
        OrderState.PLANNING_FAILED.value,
    ):
        raise OrderError(f"cannot release an order in state {order.state}", mission=mission, order=identifier)
    else:
        note = f"already {order.state}: release skipped"
    if note:
        log.info("%s/%s: %s", mission, identifier, note)
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        blueprint = order.dag_blueprint or {}
        return {
            **_ref(order, request),
            "released": released,
            "note": note,
            "dag_id": order.dag_id,
            "levels": len(blueprint.get("levels", [])),
            "plan": order.plan_summary,
            "job_steps": ops.step_counts(session, order),
        }


# --- the DAG ------------------------------------------------------------------------


def _catalog() -> Catalog:
    catalog = Catalog(os.environ.get("PROSEO_CATALOG_URL"))
    require_current(catalog.engine)
    return catalog


def _run(step: Any, *args: Any) -> dict[str, Any]:
    """Run a step; a refused request fails the task for good (a retry cannot help).

    A transition or identifier lost to a concurrent run of the same request is left to
    Airflow's retry, which then finds the order further on and skips forward.
    """
    try:
        return step(*args)
    except (IllegalTransition, ConflictError):
        raise
    except PlanningError as exc:
        raise AirflowFailException(f"planning failed: {exc}") from exc
    except (OrderError, NotFoundError) as exc:
        raise AirflowFailException(str(exc)) from exc


DOC_MD = """
### proseo: order request

Creates, plans and releases one processing order from the form (or from
`POST /api/v2/dags/proseo_order_request/dagRuns` with the same fields as `conf`).
A bad request fails the **validate** task with every problem named by its field, and
nothing is written. Running it again with the same identifier and request creates no
second order: the steps see what is done already and skip forward. The **release**
task's XCom names the order's own DAG (`dag_id`), which appears once the DAG
processor has re-parsed the `proseo_orders_*` shard files.
"""


def build_dag(missions: list[MissionChoices] | None = None) -> DAG:
    """The ``proseo_order_request`` DAG (``missions``: the form's choices; read when None)."""
    if missions is None:
        missions = known_missions()
    with DAG(
        DAG_ID,
        dag_display_name="proseo: order request",
        description="Create, plan and release a processing order from a form",
        doc_md=DOC_MD,
        schedule=None,
        start_date=START,
        catchup=False,
        is_paused_upon_creation=False,
        tags=["proseo"],
        params=request_params(missions),
        default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    ) as dag:

        @task(task_display_name="Validate the request", retries=0)
        def validate() -> dict[str, Any]:
            context = get_current_context()
            dag_run = context["dag_run"]
            return _run(
                validate_request,
                _catalog(),
                dict(context["params"]),
                dict(dag_run.conf or {}),
                dag_run.run_id,
            )

        @task(task_display_name="Create the order")
        def create(request: dict[str, Any]) -> dict[str, Any]:
            return _run(create_step, _catalog(), request)

        @task(task_display_name="Approve")
        def approve(request: dict[str, Any]) -> dict[str, Any]:
            return _run(approve_step, _catalog(), request)

        @task(task_display_name="Plan")
        def plan(request: dict[str, Any]) -> dict[str, Any]:
            return _run(plan_step, _catalog(), request)

        @task(task_display_name="Release")
        def release(request: dict[str, Any]) -> dict[str, Any]:
            return _run(release_step, _catalog(), request)

        request = validate()
        created, approved, planned, released = (
            create(request),
            approve(request),
            plan(request),
            release(request),
        )
        created >> approved >> planned >> released
    return dag
