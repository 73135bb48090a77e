"""The order form's fields that do not depend on the catalogue, section by section.

They are the bulk of the form's text (period, slicing, inputs, advanced settings);
kept apart from :mod:`~proseo.orchestration.order_request.form`, which builds the
fields whose choices come from the catalogue and puts the form together in order.
"""

from __future__ import annotations

from airflow.sdk import Param

from proseo.missions.types import SlicingType
from proseo.planning import lifecycle
from proseo.planning.spec import OnInputTimeout

#: The sample missions' data day (make demo, the tests): the form's default period.
DEFAULT_START = "2025-03-01T00:00:00+00:00"
DEFAULT_STOP = "2025-03-02T00:00:00+00:00"

# Form sections, in the order the form shows them.
S_ORDER = "Order"
S_PERIOD = "Period (start/stop or an orbit range)"
S_PROCESSING = "Processing"
S_SLICING = "Slicing"
S_INPUTS = "Inputs"
S_PARAMETERS = "Parameters"
S_ADVANCED = "Advanced"


def _period_params() -> dict[str, Param]:
    """Start/stop or an orbit range (the sample missions' data day by default)."""
    return {
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
    }


def _slicing_params(duration_help: str) -> dict[str, Param]:
    """An optional slicing override for the requested classes."""
    return {
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
    }


def _input_params(duration_help: str) -> dict[str, Param]:
    """How long to wait for inputs, what then, which classes only to wait for, filters."""
    return {
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
    }


def _advanced_params() -> dict[str, Param]:
    """Execution time, notification, the job-step bound and whether to release."""
    return {
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
