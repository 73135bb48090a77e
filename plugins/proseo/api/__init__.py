"""The REST API (FastAPI, mounted at /proseo by the Airflow plugin) and what the CLI shares with it.

``schemas`` (response models), ``airflow_client`` (Airflow's REST API) and
``airflow_runs`` (steering DAG runs over it) import neither FastAPI nor Airflow, so
the CLI uses them too; ``app``, ``auth`` and the ``routes_*`` modules are the web layer.
"""
