"""Alembic environment for the proseo catalogue (run through proseo.catalog.schema)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from proseo.catalog import models  # noqa: F401  (registers every table on Base.metadata)
from proseo.catalog.db import Base, make_engine
from proseo.catalog.schema import compare_filters

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    filters = compare_filters(connection.dialect.name)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=filters["include_name"],
        include_object=filters["include_object"],
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
