"""Orchestration on Airflow: DAG factory, input sensors and their trigger, listeners.

This package may import Airflow (the core packages may not). Nothing is imported
here, so the triggerer importing :mod:`proseo.orchestration.triggers` does not pay
for the DAG factory, and a worker running one operator does not import the others.

* :mod:`proseo.orchestration.triggers`: ``JobStepInputsTrigger``; every trigger of one
  triggerer process shares one catalogue poller per (catalogue, poll interval)
* :mod:`proseo.orchestration.sensors`: ``JobStepInputSensor``, deferrable from the
  start (``start_from_trigger``), so waiting for inputs never holds a worker slot
* :mod:`proseo.orchestration.factory`: the per-order DAGs; their processor tasks are
  the backend operators of :mod:`proseo.execution` (chosen by
  :data:`proseo.execution.backends.OPERATORS`)
* :mod:`proseo.orchestration.listeners`: facility pools, and the order's end when its
  DAG run ends
* :mod:`proseo.orchestration.deadlines`: the deadline alert of orders with a deadline
  and its callback (records the miss, notifies)
* :mod:`proseo.orchestration.urgency`: ``SlackPriorityStrategy``, weights that rise as
  an order's deadline comes closer
* :mod:`proseo.orchestration.pickup`: ``PickupTrigger`` and the per-mission pickup DAGs
  that ingest delivered files and emit Asset events per product class
"""
