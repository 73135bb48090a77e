"""The ``validate`` task: the trigger conf -> mission and OrderSpec, or every problem named.

A bad request must fail before anything is written, with each problem named by its
form field (not by OrderSpec's internal path), and an unknown key must be refused
rather than silently replaced by a default.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC
from typing import Any

from pydantic import ValidationError

from proseo.catalog.configs import revision_config_of
from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import get_mission, latest_revision
from proseo.errors import NotFoundError, OrderError
from proseo.orchestration.order_request.form import DAG_ID, request_params
from proseo.planning import lifecycle
from proseo.planning.spec import OrderSpec, check_against


class RequestError(OrderError):
    """The trigger conf is not a valid order request; the message names each field."""


#: Form fields that are not fields of OrderSpec.
_CONTROL = {"mission", "release", "max_steps", "slicing_type", "slice_duration", "slice_overlap"}
_SLICING_FIELDS = {"type": "slicing_type", "duration": "slice_duration", "overlap": "slice_overlap"}


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
        check_against(spec, revision_config_of(revision))
    return {
        "mission": mission,
        "identifier": spec.identifier,
        "request": spec.model_dump(mode="json"),
        "release": bool(params.get("release", True)),
        "max_steps": int(params.get("max_steps") or lifecycle.DEFAULT_MAX_STEPS),
    }
