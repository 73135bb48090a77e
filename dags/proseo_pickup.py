"""Airflow DAG file: ``proseo_pickup__<MISSION>``, one per mission of the catalogue.

Each watches ``$PROSEO_PICKUP_ROOT/<MISSION>/`` from the triggerer (no worker slot) and
ingests files as they complete (see proseo.orchestration.pickup); none when
``PROSEO_PICKUP_ROOT`` is unset.
"""

from proseo.orchestration.pickup import build_pickup_dags

build_pickup_dags(globals())
