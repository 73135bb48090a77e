"""ESA interface cores (PRIP query language, entity forms), free of Airflow and of the web layer."""
