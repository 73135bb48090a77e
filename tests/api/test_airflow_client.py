"""AirflowClient against a small HTTP server that answers like Airflow's API v2 does.

The real Airflow is exercised by tests/e2e; these cases pin what is awkward to provoke
there: a token that expires (401, fetched again once), paging with a state filter,
404 meaning "not known (yet)", errors naming the call and status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from proseo.api.airflow_client import AirflowApiError, AirflowClient

TASKS = [
    {"task_id": f"t{i}", "map_index": i % 3 - 1, "state": "failed" if i % 2 else "success"}
    for i in range(250)
]


class FakeAirflow(BaseHTTPRequestHandler):
    tokens_issued: ClassVar[list[str]] = []
    valid: ClassVar[set[str]] = set()
    seen: ClassVar[list[tuple[str, str, dict[str, list[str]]]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/auth/token":
            if body != {"username": "admin", "password": "pw"}:
                return self._answer(401, {"detail": "Invalid credentials"})
            token = f"token-{len(self.tokens_issued)}"
            self.tokens_issued.append(token)
            self.valid.add(token)
            return self._answer(201, {"access_token": token})
        return self._answer(404, {"detail": "no such route"})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.seen.append(("GET", url.path, query))
        if self.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return self._answer(401, {"detail": "Not authenticated"})
        if url.path == "/api/v2/dags/known":
            return self._answer(200, {"dag_id": "known", "is_paused": False})
        if url.path == "/api/v2/dags/known/dagRuns/r1/taskInstances":
            rows = [t for t in TASKS if not query.get("state") or t["state"] in query["state"]]
            offset, limit = int(query["offset"][0]), int(query["limit"][0])
            return self._answer(
                200, {"task_instances": rows[offset : offset + limit], "total_entries": len(rows)}
            )
        return self._answer(404, {"detail": f"The Dag with ID: `{url.path}` was not found"})


@pytest.fixture
def airflow() -> Iterator[str]:
    FakeAirflow.tokens_issued, FakeAirflow.valid, FakeAirflow.seen = [], set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_expired_token_is_fetched_again_once(airflow: str) -> None:
    client = AirflowClient(airflow, username="admin", password="pw")
    assert client.dag("known") == {"dag_id": "known", "is_paused": False}
    FakeAirflow.valid.clear()  # every token issued so far expires
    assert client.dag("known") is not None
    assert FakeAirflow.tokens_issued == ["token-0", "token-1"]


def test_a_given_token_that_is_refused_is_an_error_naming_the_call(airflow: str) -> None:
    client = AirflowClient(airflow, token="stale")
    with pytest.raises(
        AirflowApiError, match=r"GET http://127.0.0.1:\d+/api/v2/dags/known: HTTP 401"
    ) as info:
        client.dag("known")
    assert info.value.status == 401
    with pytest.raises(AirflowApiError, match="no Airflow credentials"):
        AirflowClient(airflow).dag("known")


def test_unknown_dags_are_none_and_have_no_runs(airflow: str) -> None:
    client = AirflowClient(airflow, username="admin", password="pw")
    assert client.dag("later") is None
    assert client.runs("later") == []
    with pytest.raises(AirflowApiError, match="DAG later is not in Airflow after 0 s"):
        client.wait_for_dag("later", timeout=0.0)


def test_task_instances_are_paged_and_filtered_by_state(airflow: str) -> None:
    client = AirflowClient(airflow, username="admin", password="pw")
    failed = client.task_instances("known", "r1", ["failed", "skipped"])
    assert [t["task_id"] for t in failed] == [t["task_id"] for t in TASKS if t["state"] == "failed"]
    everything = client.task_instances("known", "r1")
    assert len(everything) == 250
    pages = [q for _, path, q in FakeAirflow.seen if path.endswith("/taskInstances")]
    assert [q["offset"] for q in pages] == [["0"], ["100"], ["0"], ["100"], ["200"]]
    assert pages[0]["state"] == ["failed", "skipped"] and "state" not in pages[2]
