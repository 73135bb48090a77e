"""Bad input at the edge of the /proseo app: a 4xx naming the field, never a 500, never slow.

Runs on both catalogue backends (the ``world`` fixture): PostgreSQL refuses NUL
characters, over-long strings and numbers beyond 64 bits where SQLite stores or
compares them, so every case here would be a ``DataError`` (500) on one of them if
the edge let the value through.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.model_access import MissionRole
from proseo.catalog.model_order import OrderEvent, ProcessingOrder

HUGE = str(2**64)
MAX_INT64 = 2**63 - 1
ORDER = {
    "identifier": "edge",
    "requested_classes": ["SRC_CAT"],
    "start": "2025-03-01T00:00:00Z",
    "stop": "2025-03-02T00:00:00Z",
}


def _orders(catalog: Catalog) -> int:
    with catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(ProcessingOrder)) or 0)


def _located(answer: Any, *loc: Any) -> str:
    """The 422's message for the error at ``loc`` (FastAPI's validation answer)."""
    assert answer.status_code == 422, answer.text
    found = [e for e in answer.json()["detail"] if tuple(e["loc"][: len(loc)]) == loc]
    assert found, answer.json()
    return str(found[0]["msg"])


# --- numbers: NaN, infinity, beyond 64 bits ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ('"dynamic_parameters": {"gain": NaN}', ("body", "dynamic_parameters", "gain")),
        (
            '"output_parameters": {"*": {"collection": Infinity}}',
            ("body", "output_parameters", "*", "collection"),
        ),
        (
            '"input_filters": {"RAW_EXP": {"airmass": -Infinity}}',
            ("body", "input_filters", "RAW_EXP", "airmass"),
        ),
        ('"input_timeout": NaN', ("body", "input_timeout")),
        ('"dynamic_parameters": {"seed": ' + HUGE + "}", ("body", "dynamic_parameters", "seed")),
        ('"orbit_from": 1, "orbit_to": ' + HUGE, ("body", "orbit_to")),
    ],
    ids=["nan", "infinity", "minus-infinity", "nan-duration", "int-beyond-64-bits", "orbit-beyond-column"],
)
def test_numbers_json_cannot_carry_back_are_refused_naming_the_field(
    as_user: Any, world: Catalog, text: str, loc: tuple[Any, ...]
) -> None:
    body = json.dumps(ORDER)[:-1] + ", " + text + "}"
    if "orbit_from" in text:
        body = body.replace('"start": "2025-03-01T00:00:00Z", "stop": "2025-03-02T00:00:00Z", ', "")
    answer = as_user("ops").post(
        "/missions/SKY/orders", content=body, headers={"Content-Type": "application/json"}
    )
    _located(answer, *loc)
    assert _orders(world) == 1  # night-1 only


@pytest.mark.parametrize(
    "path",
    [
        f"/orders?offset={HUGE}",
        f"/missions/SKY/products?offset={HUGE}",
        f"/missions/SKY/orders/night-1/job-steps?offset={HUGE}",
        f"/missions/SKY/orders/night-1/job-steps/{HUGE}",
        f"/missions/SKY/orders/night-1/job-steps/{HUGE}/log",
        f"/missions/SKY/products/1/lineage?depth={HUGE}",
    ],
)
def test_offsets_and_ids_beyond_64_bits_are_422_naming_the_parameter(as_user: Any, path: str) -> None:
    answer = as_user("root").get(path)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][-1] in ("offset", "step_id", "depth")


@pytest.mark.parametrize(
    "path",
    [
        f"/missions/SKY/products/{HUGE}",
        f"/missions/SKY/products/{HUGE}/lineage",
        f"/missions/SKY/orders/{HUGE}",
    ],
)
def test_product_and_order_references_beyond_64_bits_are_not_found(as_user: Any, path: str) -> None:
    answer = as_user("root").get(path)
    assert answer.status_code == 404 and HUGE in answer.json()["detail"]


def test_the_largest_offset_is_answered_with_an_empty_page(as_user: Any) -> None:
    page = as_user("root").get(f"/orders?offset={MAX_INT64}").json()
    assert page["items"] == [] and page["total"] == 1


@pytest.mark.parametrize(
    "path",
    [
        f"/proseo/ui/orders?offset={HUGE}",
        f"/proseo/ui/products?mission=SKY&offset={HUGE}",
        f"/proseo/ui/orders/SKY/night-1?offset={HUGE}",
        f"/proseo/ui/products/SKY/{HUGE}/lineage",
        "/proseo/ui/orders?state=%00",
    ],
)
def test_ui_pages_answer_bad_numbers_with_a_page_not_a_500(client: Any, token_for: Any, path: str) -> None:
    client.cookies.set("_token", token_for("root"))
    try:
        answer = client.get(path)
    finally:
        client.cookies.clear()
    assert answer.status_code in (400, 404), answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("bytes=" + "9" * 5000 + "-", 416),
        ("bytes=-" + "9" * 5000, 200),
        ("bytes=0-" + "9" * 5000, 206),
        (f"bytes={HUGE}-", 416),
    ],
    ids=["huge-start", "huge-suffix", "huge-end", "start-beyond-64-bits"],
)
def test_range_headers_with_huge_numbers(as_user: Any, header: str, status: int) -> None:
    user = as_user("ops")
    product = user.get("/missions/SKY/products?product_type=RAW_EXP&limit=1").json()["items"][0]
    f = product["files"][0]
    answer = user.get(
        f"/missions/SKY/products/{product['id']}/files/{f['file_name']}", headers={"Range": header}
    )
    assert answer.status_code in (status, 206), answer.text[:200]
    if status == 416:
        assert answer.status_code == 416 and answer.headers["content-range"] == f"bytes */{f['size']}"
    else:
        assert len(answer.content) == f["size"]


# --- mission files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["a: " + "[" * 3000 + "]" * 3000, "a: &x [*x]\n", "a: &x {b: *x}\n", "a: !!python/name:os.system x\n"],
    ids=["deep", "self-list", "self-map", "python-tag"],
)
def test_hostile_mission_files_are_validated_with_located_issues(as_user: Any, text: str) -> None:
    answer = as_user("nobody").post("/missions/validate", json={"file_name": "x.yaml", "text": text})
    assert answer.status_code == 200, answer.text[:300]
    result = answer.json()
    assert result["valid"] is False and result["issues"][0].startswith("x.yaml:1:")


def test_a_mission_file_sent_to_the_server_cannot_read_server_files(as_user: Any) -> None:
    from tests_paths import MISSION_DIR

    text = (MISSION_DIR / "s5p.yaml").read_text()
    generate = text[text.index("      generate:") : text.index("product_classes:")]
    posted = text.replace(generate, "      file: /dev/zero\n\n")
    result = (
        as_user("nobody").post("/missions/validate", json={"file_name": "s5p.yaml", "text": posted}).json()
    )
    assert result["valid"] is False
    assert any("spacecraft[0].orbits.file: orbit files are not read" in i for i in result["issues"])
    bad_name = as_user("nobody").post(
        "/missions/validate", json={"file_name": "../etc/x.yaml", "text": "a: 1"}
    )
    _located(bad_name, "body", "file_name")


# --- body size and the order of checks ------------------------------------------------------


def test_a_20_mb_order_is_refused_with_413_and_not_stored(as_user: Any, world: Catalog) -> None:
    body = {**ORDER, "dynamic_parameters": {f"p{i}": "x" * 1000 for i in range(20_000)}}
    answer = as_user("ops").post("/missions/SKY/orders", json=body)
    assert answer.status_code == 413
    assert "PROSEO_MAX_REQUEST_BYTES" in answer.json()["detail"]
    assert _orders(world) == 1


def test_the_role_is_checked_before_the_body(as_user: Any) -> None:
    invalid = as_user("nobody").post("/missions/SKY/orders", json={"identifier": 5})
    assert invalid.status_code == 403 and "needs operator" in invalid.json()["detail"]
    viewer = as_user("s5p-viewer").post("/missions/S5P/orders/x/cancel", json={"force": "maybe"})
    assert viewer.status_code == 403
    grant = as_user("ops").put("/missions/SKY/roles/eve", json={"role": 7})
    assert grant.status_code == 403
    load = as_user("ops").post("/missions", json={"file_name": "x.yaml", "text": "a: &x [*x]"})
    assert load.status_code == 403 and "needs admin" in load.json()["detail"]


def test_thirty_two_thousand_classes_from_a_user_without_a_role_cost_nothing(as_user: Any) -> None:
    body = {**ORDER, "requested_classes": [f"C{i}" for i in range(32_000)]}
    started = time.monotonic()
    answer = as_user("nobody").post("/missions/SKY/orders", json=body)
    assert answer.status_code == 403
    assert time.monotonic() - started < 2.0
    too_many = as_user("ops").post("/missions/SKY/orders", json=body)
    assert "at most 1000 items" in _located(too_many, "body", "requested_classes")


@pytest.fixture
def small_limit_server(world: Catalog, auth_manager: Any) -> Iterator[tuple[str, int]]:
    """The app served by uvicorn with PROSEO_MAX_REQUEST_BYTES=65536: (host, port)."""
    import os

    import uvicorn
    from fastapi import FastAPI

    from proseo.api.app import create_app
    from proseo.settings import reset_settings

    before = os.environ.get("PROSEO_MAX_REQUEST_BYTES")
    os.environ["PROSEO_MAX_REQUEST_BYTES"] = "65536"
    reset_settings()
    try:
        outer = FastAPI()
        outer.mount("/proseo", create_app(catalog_url=world.url, airflow_url=""))
    finally:
        os.environ.pop("PROSEO_MAX_REQUEST_BYTES")
        if before is not None:
            os.environ["PROSEO_MAX_REQUEST_BYTES"] = before
        reset_settings()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(outer, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield "127.0.0.1", sock.getsockname()[1]
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _status(conn: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_a_declared_length_beyond_the_limit_is_refused_before_any_body_is_sent(
    small_limit_server: tuple[str, int],
) -> None:
    with socket.create_connection(small_limit_server, timeout=10) as conn:
        conn.sendall(
            b"POST /proseo/api/v1/missions/SKY/orders HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
        )
        assert _status(conn) == 413


def test_a_chunked_body_is_cut_off_at_the_limit(small_limit_server: tuple[str, int]) -> None:
    """50 MiB offered in chunks without Content-Length: the 413 comes long before the end."""
    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection(small_limit_server, timeout=10) as conn:
        conn.sendall(
            b"POST /proseo/api/v1/missions/SKY/orders HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        conn.settimeout(0.5)
        try:
            while sent < 50 * 2**20:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server answered and stopped reading
        conn.settimeout(10)
        assert _status(conn) == 413
    assert sent < 50 * 2**20


# --- NUL characters and over-long text, on both backends -----------------------------------


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"requested_classes": ["SRC\x00CAT"]}, ("body", "requested_classes", 0)),
        ({"processing_mode": "x" * 33}, ("body", "processing_mode")),
        ({"facility": "f\x00"}, ("body", "facility")),
        ({"notification_endpoint": "https://" + "x" * 1000}, ("body", "notification_endpoint")),
        ({"dynamic_parameters": {"note": "a\x00b"}}, ("body", "dynamic_parameters", "note")),
        ({"dynamic_parameters": {"k\x00": 1}}, ("body", "dynamic_parameters", "k\x00", "[key]")),
        ({"output_parameters": {"*": {"x" * 65: 1}}}, ("body", "output_parameters", "*")),
        ({"configured_processors": ["P\x00"]}, ("body", "configured_processors", 0)),
    ],
    ids=[
        "class-nul",
        "mode-long",
        "facility-nul",
        "url-long",
        "value-nul",
        "key-nul",
        "key-long",
        "processor-nul",
    ],
)
def test_orders_with_unstorable_text_are_422_naming_the_field(
    as_user: Any, world: Catalog, change: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    answer = as_user("ops").post("/missions/SKY/orders", json={**ORDER, **change})
    _located(answer, *loc[:3])
    assert _orders(world) == 1


def test_an_operation_message_with_nul_is_422_and_changes_nothing(as_user: Any, world: Catalog) -> None:
    with world.session() as session:
        events = session.scalar(select(func.count()).select_from(OrderEvent))
    answer = as_user("ops").post("/missions/SKY/orders/night-1/release", json={"message": "go\x00"})
    assert "NUL character at position 2" in _located(answer, "body", "message")
    with world.session() as session:
        assert session.scalar(select(func.count()).select_from(OrderEvent)) == events


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        ("/missions/SKY/roles/eve%00", ("path", "user")),
        ("/missions/SKY/roles/" + "e" * 257, ("path", "user")),
    ],
    ids=["nul", "long"],
)
def test_role_grants_with_unstorable_user_names_are_422(
    as_user: Any, world: Catalog, path: str, loc: tuple[str, str]
) -> None:
    answer = as_user("sky-admin").put(path, json={"role": "viewer"})
    _located(answer, *loc)
    with world.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(MissionRole).where(MissionRole.username.like("e%"))
            )
            == 0
        )


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        ("/missions/SK%00Y/products", ("path", "mission")),
        ("/missions/SKY/products?product_type=RAW%00", ("query", "product_type")),
        ("/missions/SKY/orders/night%001", ("path", "identifier")),
        ("/orders?state=RUN%00", ("query", "state")),
        ("/missions/SKY/products?param=seeing:%00", ("query", "param")),
        ("/missions/SKY/products/x%00.fits", ("path", "ref")),
    ],
)
def test_nul_in_paths_and_queries_is_422_naming_the_parameter(
    as_user: Any, path: str, loc: tuple[str, str]
) -> None:
    answer = as_user("root").get(path)
    assert "NUL character" in _located(answer, *loc)


def test_typed_parameters_beyond_what_columns_hold_are_400(as_user: Any) -> None:
    from proseo.catalog.mission_sync import loaded_from_catalog  # noqa: F401  (the parameters come from sky.yaml)

    user = as_user("root")
    huge = user.get(f"/missions/SKY/products?product_type=RAW_EXP&param=exposure_id:{HUGE}")
    assert huge.status_code == 400 and "beyond 64 bits" in huge.json()["detail"]
    nan = user.get("/missions/SKY/products?product_type=RAW_EXP&param=exposure_time_s:nan")
    assert nan.status_code == 400 and "not a finite number" in nan.json()["detail"]


def test_the_cli_refuses_an_over_long_user_name_before_the_database(catalog_url: str, world: Catalog) -> None:
    from click.testing import CliRunner

    from proseo.cli.main import cli

    result = CliRunner().invoke(
        cli, ["--catalog", catalog_url, "access", "grant", "u" * 300, "viewer", "-m", "SKY"]
    )
    assert result.exit_code == 1 and "user: at most 256 characters, got 300" in result.stderr
    assert "Traceback" not in result.output
