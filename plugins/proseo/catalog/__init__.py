"""The product catalogue: missions, products, files, orders, provenance (no Airflow import)."""

from proseo.catalog.db import Catalog, default_url, make_engine

__all__ = ["Catalog", "default_url", "make_engine"]
