"""Airflow DAG file: PRIP subscriptions, matched and pushed every minute.

The subscriptions and their notification outbox are in the catalogue; see
proseo.orchestration.subscriptions.
"""

from proseo.orchestration.subscriptions import build_subscriptions

build_subscriptions(globals())
