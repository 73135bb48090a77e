"""The OAuth2 password grant of delivery points: one parsing for the pull and the probe.

A real HTTP server (the standard library's, in a thread) answers the token route with a
token, with JSON lacking ``access_token``, with text, or with a refusal, per root. The
synchronous (pulls) and asynchronous (the triggerer's probe) fetches must agree: a token,
or a PullError naming the source and saying what was wrong, never a bare KeyError.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from proseo.interfaces.odata_http import PullError, apassword_token, password_token
from proseo.orchestration.source_probe import SourceProbeTrigger

ANSWERS: dict[str, tuple[int, str]] = {
    "/ok": (200, json.dumps({"access_token": "tok", "token_type": "Bearer"})),
    "/none": (200, json.dumps({"token_type": "Bearer"})),
    "/text": (200, "<html>a login page</html>"),
    "/refuse": (401, json.dumps({"error": "invalid_grant"})),
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = ANSWERS.get(self.path.removesuffix("/oauth2/token"), (404, "{}"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


def _both(root: str) -> list[str | PullError]:
    """The sync and the async answer for one root: the token, or the PullError raised."""
    out: list[str | PullError] = []
    try:
        with httpx.Client() as client:
            out.append(password_token(client, root, "u", "p", source="partner"))
    except PullError as exc:
        out.append(exc)

    async def fetch() -> str:
        async with httpx.AsyncClient() as client:
            return await apassword_token(client, root, "u", "p", source="partner")

    try:
        out.append(asyncio.run(fetch()))
    except PullError as exc:
        out.append(exc)
    return out


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/none", "source partner: token route: no access_token in the answer"),
        ("/text", "source partner: token route: the answer is not JSON"),
        ("/refuse", "source partner: token refused (401)"),
    ],
)
def test_an_unusable_token_answer_is_a_pull_error_naming_the_source_sync_and_async(
    server: str, path: str, says: str
) -> None:
    sync, async_ = _both(server + path)
    assert isinstance(sync, PullError) and isinstance(async_, PullError)
    assert str(sync) == str(async_) and str(sync).startswith(says)
    assert sync.url == async_.url == f"{server}{path}/oauth2/token"


def test_a_token_is_the_same_sync_and_async(server: str) -> None:
    assert _both(server + "/ok") == ["tok", "tok"]


def test_the_probe_reports_a_token_answer_without_a_token_as_the_pull_would(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P_USER", "u")
    monkeypatch.setenv("P_PASSWORD", "p")
    trigger = SourceProbeTrigger(
        mission="S5P",
        source="partner",
        root=server + "/none",
        filter="ContentLength gt 0",
        since=None,
        until=datetime.now(UTC).isoformat(),
        poll_s=1.0,
        credentials={"username_env": "P_USER", "password_env": "P_PASSWORD"},
        catalog_url="sqlite:////tmp/not-opened.db",
    )

    async def first() -> dict[str, object]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(first())
    assert event["status"] == "unanswered"
    assert str(event["message"]).startswith("PullError: source partner: token route: no access_token")
