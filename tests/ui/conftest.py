"""Browser tests of the pages: the /proseo app served for real, driven by Debian's Chromium.

The app is mounted under /proseo as in ``tests/api/conftest.py``, whose fixtures
(Airflow's auth manager and JWTs, the ``world`` catalogue with both sample missions,
their inputs, roles and the planned SKY order ``night-1``) are reused here, not
copied. On top of that world, ``ui_world`` plans two more orders and runs part of
``night-1`` through the local backend (real wrapper, real sample processors,
registration), marks one step FAILED and so gives the pages every colour and a real
lineage. uvicorn serves it on 127.0.0.1 at a free port; Chromium gets the user's JWT
as Airflow's ``_token`` cookie, as the browser does inside Airflow's UI.

Chromium is Debian's (``apt-get install -y chromium``, see ``install_chromium.sh``);
Playwright's pip wheel only brings the driver, and nothing here downloads a browser.
A missing Chromium fails the tests, with the install line, rather than skipping them.
Screenshots go to ``$PROSEO_TEST_ARTEFACTS/screenshots`` (default:
``test-artifacts/screenshots`` in the repository, which git ignores).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import Job, JobStep, ProcessingOrder
from proseo.execution import steptask
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import REPO
from tests_registration import run_step


def _api_conftest() -> Any:
    """tests/api/conftest.py as a module of its own (pytest imports every conftest as "conftest")."""
    path = Path(__file__).resolve().parents[1] / "api" / "conftest.py"
    spec = importlib.util.spec_from_file_location("proseo_tests_api_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_api = _api_conftest()
# The API tests' fixtures, visible to the tests below this directory.
auth_manager = _api.auth_manager
token_for = _api.token_for
world = _api.world
DAY = _api.DAY

INSTALL_HINT = "apt-get install -y chromium  (or: bash tests/ui/install_chromium.sh)"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--font-render-hinting=none",
]
LOG = logging.getLogger("tests.ui")


# --- the catalogue behind the pages --------------------------------------------------------


def _steps(catalog: Catalog, mission_order: str) -> dict[str, int]:
    """Job step id by product class of one order."""
    with catalog.session() as s:
        rows = s.execute(
            select(JobStep.id, ProductClass.product_type)
            .join(ProductClass, ProductClass.id == JobStep.product_class_id)
            .join(Job, Job.id == JobStep.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .where(ProcessingOrder.identifier == mission_order)
            .order_by(JobStep.id)
        ).all()
    return {ptype: sid for sid, ptype in rows}


def _run(catalog: Catalog, step_id: int) -> None:
    run_step(catalog, step_id, dag_id="ui-test")


@pytest.fixture
def ui_world(world: Catalog) -> dict[str, Any]:
    """``world`` plus: S5P order ``no2-morning`` (PLANNED), SKY ``night-2`` (PLANNED) and
    ``night-1`` RUNNING with CALEXP_G, CALEXP_R, STACK_G completed, STACK_R failed and
    SRC_CAT still planned."""
    s5p = OrderSpec(
        identifier="no2-morning",
        requested_classes=["L2__NO2___"],
        start=DAY,
        stop=DAY + timedelta(hours=3),
        processing_mode="OFFL",
        output_parameters={"*": {"collection": 1}},
    )
    night2 = OrderSpec(
        identifier="night-2", requested_classes=["SRC_CAT"], start=DAY, stop=DAY + timedelta(days=1)
    )
    for code, spec in (("S5P", s5p), ("SKY", night2)):
        with world.session() as s:
            orders.create_order(s, code, spec)
        lifecycle.approve_order(world, code, spec.identifier)
        lifecycle.plan_order(world, code, spec.identifier)
    lifecycle.release_order(world, "SKY", "night-1")
    steps = _steps(world, "night-1")
    for ptype in ("CALEXP_G", "CALEXP_R", "STACK_G"):
        _run(world, steps[ptype])
    with world.session() as s:
        steptask.start_step(s, steps["STACK_R"], task_id="process", try_number=1)
    with world.session() as s:
        steptask.fail_step(
            s, steps["STACK_R"], "processing: exit code 130 <coadd aborted & retried>", exit_code=130
        )
    with world.session() as s:
        assert orders.get_order(s, "SKY", "night-1").state == "RUNNING"
    return {"catalog": world, "steps": steps}


# --- the server ----------------------------------------------------------------------------


@pytest.fixture
def server(ui_world: dict[str, Any], auth_manager: Any) -> Iterator[str]:
    """Base URL of the app mounted at /proseo, served by uvicorn in a thread."""
    import uvicorn
    from fastapi import FastAPI

    from proseo.api.app import create_app

    outer = FastAPI()
    outer.mount("/proseo", create_app(catalog_url=ui_world["catalog"].url, airflow_url=""))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(outer, log_level="warning", lifespan="off", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, name="ui-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


# --- the browser ---------------------------------------------------------------------------


def chromium_path() -> str:
    """Debian's Chromium ($PROSEO_CHROMIUM overrides); a missing one fails with the install line."""
    wanted = os.environ.get("PROSEO_CHROMIUM")
    found = wanted if wanted and Path(wanted).is_file() else None
    found = (
        found
        or shutil.which("chromium")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    )
    if not found:
        pytest.fail(
            "Chromium is not installed: the UI tests drive Debian's chromium package. "
            f"Install it with: {INSTALL_HINT}",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API keeps an event loop running on the
    main thread while it is started, and a later module's ``asyncio.run`` (on the same
    pytest-xdist worker) would refuse to start beside it."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: make install (it is in the dev extra)", pytrace=False)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page_as(browser: Any, server: str, token_for: Callable[..., str]) -> Iterator[Callable[..., Any]]:
    """``page_as("ops")``: a fresh browser page carrying that user's JWT as Airflow's _token cookie
    (``page_as(None)``: no cookie at all). ``page.base`` is the server's URL."""
    contexts: list[Any] = []

    def make(user: str | None) -> Any:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
        if user is not None:
            context.add_cookies([{"name": "_token", "value": token_for(user), "url": server}])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.base = server
        return page

    yield make
    for context in contexts:
        context.close()


def artefact_dir() -> Path:
    root = os.environ.get("PROSEO_TEST_ARTEFACTS")
    path = (Path(root) if root else REPO / "test-artifacts") / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    """``screenshot(page, "orders")``: a full-page PNG in the artefact directory (of a page; of
    just that element for a locator); returns its path."""

    def shoot(target: Any, name: str) -> Path:
        path = artefact_dir() / f"{name}.png"
        if hasattr(target, "goto"):  # a page
            target.screenshot(path=str(path), full_page=True)
        else:
            target.screenshot(path=str(path))
        assert path.stat().st_size > 10_000, f"{path}: suspiciously small screenshot"
        return path

    return shoot
