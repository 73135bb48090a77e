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
"""
