"""Airflow DAG file: systematic production, per mission a data DAG and one DAG per clock trigger.

The missions and their triggers come from the catalogue in one query; the orders are
made by the core's generator (see proseo.orchestration.production).
"""

from proseo.orchestration.production import build_production

build_production(globals())
