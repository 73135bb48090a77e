"""proseo: processing control for EO and astronomy pipelines on Airflow 3."""
