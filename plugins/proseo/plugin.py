"""The Airflow plugin object, registered through the ``airflow.plugins`` entry point.

Airflow discovers it from the installed package (not from the plugins folder, which
``plugins/.airflowignore`` hides from the file-based loader so no module loads twice).
It carries the REST API, UI pages and listeners as those parts of the system land.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from proseo.orchestration import listeners


class ProseoPlugin(AirflowPlugin):
    name = "proseo"
    # DAG-run listeners run in the scheduler (and inline under dag.test()).
    listeners: ClassVar[list[Any]] = [listeners]
