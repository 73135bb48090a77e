"""Airflow DAG file: proseo order DAGs of shard 3 (of PROSEO_DAG_SHARDS, default 4).

The factory reads the blueprints of this shard's active orders in one catalogue query
and builds one DAG per order (see proseo.orchestration.factory).
"""

from proseo.orchestration.factory import build_shard

build_shard(globals(), 3)
