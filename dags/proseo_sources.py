"""Airflow DAG file: ``proseo_source__<MISSION>__<name>``, one per source of a mission file.

Each pulls its delivery point (PRIP, AUXIP, CADIP) every ``interval``, waiting for new
products in the triggerer, and announces what arrived to systematic production (see
proseo.orchestration.sources).
"""

from proseo.orchestration.sources import build_source_dags

build_source_dags(globals())
