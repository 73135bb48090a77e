"""Shared fixtures: a catalogue on SQLite *and* PostgreSQL for every catalogue test.

The ``catalog`` fixture is parametrised over both backends, so each store test runs
twice (the way backend-independent test suites do it). PostgreSQL is the one on
127.0.0.1:5432; where it is unreachable those cases are skipped with a reason,
unless ``PROSEO_REQUIRE_POSTGRES=1`` (set by .ci/run), which turns that into a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

# Nothing in the tests may touch a real Airflow home or a user's catalogue.
_HOME = tempfile.mkdtemp(prefix="proseo_test_home_")
os.environ["AIRFLOW_HOME"] = _HOME
# Airflow signs its JWTs with this; a generated default is shorter than HS512 wants.
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", uuid.uuid4().hex * 2)
os.environ.pop("PROSEO_CATALOG_URL", None)
# pytest-xdist's workers (make test) start with COLUMNS=80 in their environment, which the CLI
# (proseo.cli.output) takes for a terminal's width; the tests read its output piped, as in a
# serial run, where the variable is not set.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)

from sqlalchemy import text  # noqa: E402

from proseo.catalog.db import Base, Catalog, make_engine  # noqa: E402
from proseo.catalog.schema import upgrade  # noqa: E402
from proseo.devtools.s3server import MotoServer  # noqa: E402
from proseo.settings import reset_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MISSION_DIR = REPO / "mission_configs"
SAMPLE_MISSIONS = sorted(MISSION_DIR.glob("*.yaml"))
PG_SERVER = os.environ.get("PROSEO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REQUIRE_PG = os.environ.get("PROSEO_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are read once per process: each test reads them anew, so a variable it
    sets with monkeypatch takes effect (and is forgotten again afterwards)."""
    reset_settings()
    yield
    reset_settings()


def _pg_admin_url() -> str:
    return f"{PG_SERVER}/test"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once, dropped at the end."""
    name = f"proseo_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = make_engine(
            _pg_admin_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        message = f"PostgreSQL not reachable at {PG_SERVER}: {type(exc).__name__}: {exc}"
        if REQUIRE_PG:
            pytest.fail(message + " (PROSEO_REQUIRE_POSTGRES=1 makes PostgreSQL mandatory)")
        pytest.skip(message + " -- skipping the PostgreSQL catalogue cases")
    url = f"{PG_SERVER}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def world_templates() -> dict[str, Any]:
    """Catalogues built once per session and backend, copied into each test that uses one
    (the API and page tests' ``world``: tests_world.WorldTemplate), by backend."""
    return {}


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated catalogue on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "catalog.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    _truncate_all(url)
    return url


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    engine = make_engine(catalog_url)
    yield Catalog(catalog_url, engine=engine)
    engine.dispose()


@pytest.fixture
def data_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Storage and scratch roots the sample missions' facilities expand to."""
    dirs = {"data": tmp_path / "data", "scratch": tmp_path / "scratch"}
    for path in dirs.values():
        path.mkdir()
    monkeypatch.setenv("PROSEO_DATA", str(dirs["data"]))
    monkeypatch.setenv("PROSEO_SCRATCH", str(dirs["scratch"]))
    return dirs


# --- moto's S3 server (storage, wrapper and staging tests) ---------------------------


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(log_file=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture(scope="session")
def s3_client(moto_s3: MotoServer) -> Any:
    """An independent client (boto3, not s3fs) to check what really is in the bucket."""
    opts = moto_s3.options()
    return boto3.client(
        "s3",
        endpoint_url=opts["endpoint_url"],
        aws_access_key_id=opts["key"],
        aws_secret_access_key=opts["secret"],
        region_name=opts["region"],
    )


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name
