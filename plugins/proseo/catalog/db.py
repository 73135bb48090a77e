"""Catalogue database: URL resolution, engines, sessions, portable column types.

SQLite (a file under the Airflow home) is the embedded default; PostgreSQL is the
production backend. ``PROSEO_CATALOG_URL`` (read through :mod:`proseo.settings`) picks
one. Both store instants as naive UTC so that ordering and range queries behave
identically on the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Engine, Integer, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from proseo.settings import get_settings


def default_url() -> str:
    """``PROSEO_CATALOG_URL``, else a SQLite file next to Airflow's own database."""
    return get_settings().resolved_catalog_url()


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs (psycopg2 is not installed)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact(url: str) -> str:
    """URL safe to print (password hidden)."""
    return make_url(url).render_as_string(hide_password=True)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (portable ordering)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
    # Imported here: footprint_column needs shapely, which db's importers need not load.
    from proseo.catalog.footprint_column import register_sqlite_functions

    register_sqlite_functions(dbapi_conn)


def _postgresql_session(dbapi_conn: Any, _record: Any) -> None:
    """No JIT: catalogue queries are short, and when a poor row estimate (PostGIS's for tall
    footprints, two range conditions on two columns) pushes a plan's cost past
    ``jit_above_cost``, compiling it takes 100-250 ms, more than the query itself runs.
    A SET rather than a startup option, which connection poolers (PgBouncer) refuse.
    """
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    cur = dbapi_conn.cursor()
    cur.execute("SET jit = off")
    cur.close()
    dbapi_conn.autocommit = autocommit


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs."""
    url = normalize_url(url or default_url())
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "connect", _postgresql_session)
    return engine


@lru_cache(maxsize=8)
def cached_engine(url: str) -> Engine:
    return make_engine(url)


class Catalog:
    """Entry point to one catalogue database: engine plus session factory."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        # Every table registered before the first flush: a process that imported only some
        # model modules (a step task: orders, products) could not resolve the foreign keys
        # to the others (processing_order.campaign_id -> campaign) and every flush failed.
        import proseo.catalog.models  # noqa: F401

        self.url = normalize_url(url or default_url())
        self.engine = engine or cached_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def __repr__(self) -> str:
        return f"Catalog({redact(self.url)})"
