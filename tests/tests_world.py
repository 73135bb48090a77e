"""A catalogue built once per session and handed to each test as a fresh copy.

Building the API tests' world (two missions synced, inputs ingested, an order planned)
takes seconds per backend; copying it takes milliseconds. A ``WorldTemplate`` builds it
once in a migrated catalogue, then restores that exact state for every test: on SQLite
by copying the database file, on PostgreSQL by truncating the session's database and
copying every table's rows back in (binary COPY) with the sequences where they were.
The product files live under a storage root the catalogue names by absolute path, so
that root is put back from a pristine copy too, at the same path.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text

import proseo.catalog.models  # noqa: F401  (every table in Base.metadata)
from proseo.catalog.db import Base, Catalog, make_engine
from proseo.settings import reset_settings


@dataclass
class WorldTemplate:
    """The built world of one backend: how to put it back, and where its files live."""

    backend: str
    url: str  # where it was built (SQLite: the template file)
    data: Path  # the storage root the catalogue's facilities name (PROSEO_DATA)
    scratch: Path  # PROSEO_SCRATCH
    pristine: Path  # the storage root as the build left it
    rows: dict[str, bytes] = field(default_factory=dict)  # PostgreSQL: table -> binary COPY
    sequences: dict[str, int] = field(default_factory=dict)  # PostgreSQL: sequence -> last value

    @classmethod
    def build(
        cls, backend: str, source: str | Path, root: Path, build: Callable[[Catalog, Path], None]
    ) -> WorldTemplate:
        """Run ``build`` on an empty migrated catalogue (``source``: the SQLite template file or
        the PostgreSQL session database URL), with PROSEO_DATA/PROSEO_SCRATCH already set to
        ``root/data`` and ``root/scratch`` by the caller; remember the result."""
        data, scratch = root / "data", root / "scratch"
        data.mkdir()
        scratch.mkdir()
        if backend == "sqlite":
            path = root / "world.db"
            shutil.copyfile(source, path)
            url = f"sqlite:///{path}"
        else:
            url = str(source)
            _truncate(url)
        reset_settings()
        engine = make_engine(url)
        try:
            build(Catalog(url, engine=engine), root / "inputs")
            template = cls(backend, url, data, scratch, root / "pristine")
            if backend == "sqlite":
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                template._snapshot(engine)
        finally:
            engine.dispose()
            reset_settings()
        shutil.copytree(data, template.pristine)
        return template

    def restore(self, url: str) -> None:
        """Put the world back as built, into the empty migrated catalogue at ``url``."""
        shutil.rmtree(self.data)
        shutil.copytree(self.pristine, self.data)
        shutil.rmtree(self.scratch)
        self.scratch.mkdir()
        if self.backend == "sqlite":
            shutil.copyfile(self.url.removeprefix("sqlite:///"), url.removeprefix("sqlite:///"))
        else:
            self._load(url)

    def _snapshot(self, engine: Engine) -> None:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                for table in Base.metadata.sorted_tables:
                    with cur.copy(f'COPY "{table.name}" TO STDOUT (FORMAT binary)') as copy:
                        data = b"".join(bytes(block) for block in copy)
                    self.rows[table.name] = data
                cur.execute(
                    "SELECT sequencename, last_value FROM pg_sequences "
                    "WHERE schemaname = current_schema() AND last_value IS NOT NULL"
                )
                self.sequences = {name: int(value) for name, value in cur.fetchall()}
            raw.commit()

    def _load(self, url: str) -> None:
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {_table_list()} RESTART IDENTITY CASCADE"))
                raw = conn.connection.driver_connection
                with raw.cursor() as cur:
                    for table in Base.metadata.sorted_tables:
                        with cur.copy(f'COPY "{table.name}" FROM STDIN (FORMAT binary)') as copy:
                            copy.write(self.rows[table.name])
                    for name, value in self.sequences.items():
                        cur.execute("SELECT setval(%s, %s, true)", (name, value))
        finally:
            engine.dispose()


def _table_list() -> str:
    return ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)


def _truncate(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {_table_list()} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
