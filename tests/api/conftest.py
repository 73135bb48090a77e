"""The /proseo app under test: mounted like Airflow's API server mounts it, real JWTs.

Airflow's own SimpleAuthManager signs and checks the tokens (its metadata database,
which it needs for revoked tokens, is migrated once into this session's Airflow
home). The catalogue is the ``catalog`` fixture (SQLite and PostgreSQL) with both
sample missions, one night and one day of generated inputs, roles for a few users
and one planned order per mission.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from proseo.catalog import access
from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR
from tests_world import WorldTemplate

DAY = datetime(2025, 3, 1, tzinfo=UTC)
ROLES = {
    "ops": {"S5P": "operator", "SKY": "operator"},
    "s5p-viewer": {"S5P": "viewer"},
    "sky-admin": {"SKY": "admin"},
    "root": {"*": "admin"},
    "nobody": {},
}


@pytest.fixture(scope="session")
def auth_manager() -> Any:
    """Airflow's configured auth manager, initialised as the API server does it."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.utils.db import initdb

    initdb()
    manager = create_auth_manager()
    manager.init()
    return manager


@pytest.fixture(scope="session")
def token_for(auth_manager: Any) -> Any:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    def make(user: str, *, expires_in: int = 3600, role: str = "viewer") -> str:
        """A JWT for ``user``; ``role`` is the Airflow role in it (proseo's roles are its own)."""
        account = SimpleAuthManagerUser(username=user, role=role)
        return str(auth_manager.generate_jwt(account, expiration_time_in_seconds=expires_in))

    return make


def _ingest(catalog: Catalog, code: str, start: datetime, stop: datetime, tmp: Path) -> None:
    from proseo.devtools.generate import write_inputs

    with catalog.session() as s:
        mission = loaded_from_catalog(s, code)
    files = write_inputs(mission, start, stop, tmp / f"in-{uuid.uuid4().hex[:6]}", size=300)
    assert Ingestor(catalog, mission).run(files).ok


def _build_world(catalog: Catalog, tmp: Path) -> None:
    """Both sample missions, roles, one night and one day of inputs, SKY ``night-1`` planned."""
    with catalog.session() as s:
        for name in ("s5p.yaml", "sky.yaml"):
            sync_mission(s, load_mission(MISSION_DIR / name))
        for user, grants in ROLES.items():
            for mission, role in grants.items():
                access.grant(s, user, mission, role, by="test")
    _ingest(catalog, "S5P", DAY - timedelta(hours=3), DAY + timedelta(hours=6), tmp)
    _ingest(catalog, "SKY", DAY, DAY + timedelta(days=1), tmp)
    with catalog.session() as s:
        orders.create_order(
            s,
            "SKY",
            OrderSpec(
                identifier="night-1", requested_classes=["SRC_CAT"], start=DAY, stop=DAY + timedelta(days=1)
            ),
        )
    lifecycle.approve_order(catalog, "SKY", "night-1")
    lifecycle.plan_order(catalog, "SKY", "night-1")


@pytest.fixture
def world(
    catalog_url: str,
    world_templates: dict[str, WorldTemplate],
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Catalog]:
    """The world of this module's docstring in ``catalog_url`` (each backend), fresh for every
    test: built once per backend and session, then copied in (SQLite file, PostgreSQL rows,
    and the product files under the storage root that its facilities name)."""
    backend = "sqlite" if catalog_url.startswith("sqlite") else "postgresql"
    template = world_templates.get(backend)
    if template is None:
        root = tmp_path_factory.mktemp(f"world-{backend}")
        monkeypatch.setenv("PROSEO_DATA", str(root / "data"))
        monkeypatch.setenv("PROSEO_SCRATCH", str(root / "scratch"))
        source = request.getfixturevalue("sqlite_template" if backend == "sqlite" else "pg_database")
        template = world_templates[backend] = WorldTemplate.build(backend, source, root, _build_world)
    monkeypatch.setenv("PROSEO_DATA", str(template.data))
    monkeypatch.setenv("PROSEO_SCRATCH", str(template.scratch))
    template.restore(catalog_url)
    engine = make_engine(catalog_url)
    yield Catalog(catalog_url, engine=engine)
    engine.dispose()


@pytest.fixture
def client(world: Catalog) -> Iterator[Any]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from proseo.api.app import create_app

    outer = FastAPI()
    outer.mount("/proseo", create_app(catalog_url=world.url, airflow_url=""))
    with TestClient(outer) as http:
        yield http


@pytest.fixture
def as_user(client: Any, token_for: Any) -> Any:
    """``as_user("ops").get(path)``: requests with that user's bearer token."""

    class Session:
        def __init__(self, user: str) -> None:
            self.headers = {"Authorization": f"Bearer {token_for(user)}"}

        def __getattr__(self, method: str) -> Any:
            def call(path: str, **kw: Any) -> Any:
                headers = {**self.headers, **kw.pop("headers", {})}
                return getattr(client, method)(f"/proseo/api/v1{path}", headers=headers, **kw)

            return call

    return Session


def _airflow_user() -> tuple[str, str]:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    passwords = json.loads(Path(SimpleAuthManager.get_generated_password_file()).read_text())
    return next(iter(passwords.items()))


@pytest.fixture
def airflow_credentials(auth_manager: Any) -> tuple[str, str]:
    """A user name and password Airflow's SimpleAuthManager accepts (it generated them)."""
    return _airflow_user()


@contextmanager
def serve(catalog: Catalog) -> Iterator[str]:
    """The /proseo app of ``catalog`` over HTTP (uvicorn in a thread): its base URL."""
    import uvicorn
    from fastapi import FastAPI

    from proseo.api.app import create_app

    outer = FastAPI()
    outer.mount("/proseo", create_app(catalog_url=catalog.url, airflow_url=""))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(outer, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/proseo"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def prip_url(world: Catalog, auth_manager: Any) -> Iterator[str]:
    """The PRIP root of a /proseo app served over HTTP (uvicorn in a thread)."""
    user, _ = _airflow_user()
    with world.session() as s:
        access.grant(s, user, "S5P", "viewer", by="test")
    with serve(world) as base:
        yield f"{base}/prip/odata/v1"


@pytest.fixture
def odip_url(world: Catalog, auth_manager: Any) -> Iterator[str]:
    """The ODIP root of a /proseo app served over HTTP; Airflow's user operates SKY only."""
    user, _ = _airflow_user()
    with world.session() as s:
        access.grant(s, user, "SKY", "operator", by="test")
    with serve(world) as base:
        yield f"{base}/odip/odata/v1"
