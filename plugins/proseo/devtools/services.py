"""This machine's PostgreSQL and Redis as throwaway resources of one deployment.

A deployment's Airflow metadata database is created fresh and dropped afterwards; its
Celery broker is a Redis database it claims with ``SET NX`` on a claim key, so two
deployments (or test runs) never share one, and a release flushes the database only when
the claim is still the releaser's. A claim left by a killed run expires after a day.
"""

from __future__ import annotations

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"
CLAIM_KEY = "proseo:celery-deployment"
CLAIM_TTL_S = 24 * 3600


class ServiceError(RuntimeError):
    """A service could not give what was asked (no free Redis database)."""


def _admin(server: str, statement: str) -> None:
    import psycopg

    url = server.rstrip("/").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
        conn.execute(statement.encode())


def create_database(server: str, name: str) -> str:
    """A new, empty database ``name`` on ``server``; its SQLAlchemy URL."""
    _admin(server, f'CREATE DATABASE "{name}"')
    return f"{server.rstrip('/')}/{name}"


def drop_database(server: str, name: str) -> None:
    """Drop ``name`` if it exists, ending whatever is still connected to it."""
    _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def claim_redis_db(server: str, token: str) -> int:
    """The first Redis database (1..15) whose claim key ``token`` could set; ServiceError if none."""
    import redis

    for n in range(1, 16):
        client = redis.Redis.from_url(f"{server.rstrip('/')}/{n}")
        try:
            if client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_TTL_S):
                return n
        finally:
            client.close()
    raise ServiceError(f"no free Redis database on {server} (1..15 all claimed by other runs)")


def release_redis_db(server: str, db: int, token: str) -> bool:
    """Flush database ``db`` (broker queues, unacked messages, the claim) if ``token`` holds it."""
    import redis

    client = redis.Redis.from_url(f"{server.rstrip('/')}/{db}")
    try:
        if client.get(CLAIM_KEY) != token.encode():
            return False
        client.flushdb()
        return True
    finally:
        client.close()
