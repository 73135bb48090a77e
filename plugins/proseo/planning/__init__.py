"""Backward order planning: slicing, job steps, input selection, reuse (no Airflow import)."""
