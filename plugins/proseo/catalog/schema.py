"""Schema migrations: bring a catalogue database to the revision this code expects.

Migrations ship inside the package (``proseo/catalog/migrations``) so that
``proseo db upgrade`` works from any installed copy, not only from a checkout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from proseo.catalog.footprint_column import FOREIGN_TABLES, POSTGRESQL_ONLY_INDEXES
from proseo.errors import SchemaError

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def compare_filters(dialect: str) -> dict[str, Callable[..., bool]]:
    """Alembic's comparison options: what of the database and the models is not compared.

    PostGIS's and SQLite's R*Tree tables are not part of the models; the GiST index on
    footprints exists on PostgreSQL only.
    """

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        return not (type_ == "table" and name in FOREIGN_TABLES)

    def include_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
        return not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES and dialect != "postgresql")

    return {"include_name": include_name, "include_object": include_object}


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Migrate to ``target``; returns (revision before, revision after)."""
    return _migrate(engine, command.upgrade, target)


def downgrade(engine: Engine, target: str) -> tuple[str | None, str]:
    """Migrate back to ``target`` (tests of migrations; data of dropped columns is rebuilt)."""
    return _migrate(engine, command.downgrade, target)


def _migrate(engine: Engine, step: Callable[[Config, str], None], target: str) -> tuple[str | None, str]:
    """Run a migration in one transaction.

    On SQLite, Alembic alters a table by copying it into a new one and dropping the old;
    with foreign keys enforced, that drop deletes (ON DELETE CASCADE) every row that
    references the table, in other tables. So, as SQLite's own procedure for altering
    tables says, enforcement is off during the migration (set before the transaction
    begins: SQLite ignores the pragma inside one) and ``PRAGMA foreign_key_check`` must
    find no violation before the transaction commits.
    """
    before = current_revision(engine)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()  # ends SQLAlchemy's autobegun (empty) transaction
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                step(cfg, target)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise SchemaError(
                            f"migrating to {target} would break {len(broken)} reference(s), e.g. "
                            f"table {broken[0][0]} row {broken[0][1]} -> {broken[0][2]}; nothing was changed"
                        )
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
    return before, current_revision(engine) or ""


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that is not migrated to the current head."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise SchemaError(
            f"the catalogue database is {state}, this proseo needs {head}: run 'proseo db upgrade'"
        )
