"""Airflow DAG file: ``proseo_odip``, the ODIP's notification outbox (see proseo.orchestration.odip).

Runs only when the triggerer's watcher finds an owed notification or an order left queued.
"""

from proseo.orchestration.odip import build_odip_dag

build_odip_dag(globals())
