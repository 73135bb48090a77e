"""Airflow DAG file: ``proseo_order_request``, the trigger form that creates, plans and releases an order.

The form's choices (missions, product classes, modes) come from the catalogue in one
query at parse time; with an empty or unreachable catalogue they fall back to plain
fields, so this file always parses (see proseo.orchestration.order_request).
"""

from proseo.orchestration.order_request import build_dag

dag = build_dag()
