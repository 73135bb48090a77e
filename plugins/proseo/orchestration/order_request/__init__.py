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

This package is the facade (``dags/proseo_order_request.py`` imports ``build_dag``):

* :mod:`~proseo.orchestration.order_request.choices`: MissionChoices, known_missions (one query)
* :mod:`~proseo.orchestration.order_request.form`: request_params, the catalogue-dependent fields
* :mod:`~proseo.orchestration.order_request.fields`: the fixed fields (period, slicing, inputs, advanced)
* :mod:`~proseo.orchestration.order_request.validate`: conf -> OrderSpec, RequestError
* :mod:`~proseo.orchestration.order_request.steps`: create/approve/plan/release, idempotent
* :mod:`~proseo.orchestration.order_request.dag`: build_dag, the tasks
"""

from __future__ import annotations

from proseo.errors import OrderError
from proseo.orchestration.order_request.choices import PARSE_CONNECT_TIMEOUT_S, MissionChoices, known_missions
from proseo.orchestration.order_request.dag import DOC_MD, START, build_dag
from proseo.orchestration.order_request.fields import (
    DEFAULT_START,
    DEFAULT_STOP,
    S_ADVANCED,
    S_INPUTS,
    S_ORDER,
    S_PARAMETERS,
    S_PERIOD,
    S_PROCESSING,
    S_SLICING,
)
from proseo.orchestration.order_request.form import DAG_ID, IDENTIFIER_PATTERN, request_params
from proseo.orchestration.order_request.steps import approve_step, create_step, plan_step, release_step
from proseo.orchestration.order_request.validate import (
    RequestError,
    generated_identifier,
    spec_from_params,
    validate_request,
)

__all__ = [
    "DAG_ID",
    "DEFAULT_START",
    "DEFAULT_STOP",
    "DOC_MD",
    "IDENTIFIER_PATTERN",
    "PARSE_CONNECT_TIMEOUT_S",
    "START",
    "S_ADVANCED",
    "S_INPUTS",
    "S_ORDER",
    "S_PARAMETERS",
    "S_PERIOD",
    "S_PROCESSING",
    "S_SLICING",
    "MissionChoices",
    "OrderError",
    "RequestError",
    "approve_step",
    "build_dag",
    "create_step",
    "generated_identifier",
    "known_missions",
    "plan_step",
    "release_step",
    "request_params",
    "spec_from_params",
    "validate_request",
]
