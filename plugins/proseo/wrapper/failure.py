"""Why a job failed, and at which stage: what a FAILED manifest reports.

Every stage raises :class:`WrapperError` with a reason meant for the operator; the
reason names the file or product concerned and holds no host paths, so the manifest
of a failed run is as deterministic as that of a successful one.
"""

from __future__ import annotations

from typing import Literal

from proseo.errors import ProseoError

Stage = Literal["spec", "stage-in", "job-order", "run", "collect", "upload", "done"]


class WrapperError(ProseoError):
    """A job step failed at ``stage`` for ``reason``."""

    def __init__(self, stage: Stage, reason: str) -> None:
        self.stage: Stage = stage
        self.reason = reason
        super().__init__(f"{stage}: {reason}")
