"""A small HTTP server standing in for Airflow's REST API v2, for steering tests.

It answers the calls :class:`proseo.api.airflow_runs.AirflowRuns` makes (a DAG, its
paused flag, its runs, their task instances, clearing) from an in-memory model, and
authorises them as Airflow's SimpleAuthManager does: the caller's JWT carries an
Airflow role, GET needs ``viewer``, every other method ``user`` or above (the token
is decoded, not verified: the real check is Airflow's, this only mimics its answer).
Every call is recorded, with what ``observe(method, path)`` returned at that moment (the tests
read the order's state from the catalogue there, to see which side moved first).

The real Airflow is exercised by tests/e2e; here the point is Airflow refusing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

ROLES = ["viewer", "user", "op", "admin"]


@dataclass
class Call:
    method: str
    path: str
    role: str | None
    body: Any
    observed: Any
    status: int = 0


@dataclass
class AirflowStandIn:
    """``with AirflowStandIn() as airflow:`` -- ``airflow.url``, ``airflow.calls``, the model."""

    observe: Callable[[str, str], Any] = lambda method, path: None
    dags: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    task_instances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def add_dag(
        self, dag_id: str, *, run_state: str = "running", tasks: dict[str, str] | None = None
    ) -> None:
        self.dags[dag_id] = {"dag_id": dag_id, "is_paused": False}
        self.runs[dag_id] = [{"dag_run_id": "run-1", "state": run_state}]
        self.task_instances[dag_id] = [
            {"task_id": t, "map_index": -1, "state": s} for t, s in (tasks or {}).items()
        ]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]

    # -- the server -------------------------------------------------------------------------

    def __enter__(self) -> AirflowStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                url = urlsplit(self.path)
                call = Call(
                    self.command, url.path, _role(self.headers), body, standin.observe(self.command, url.path)
                )
                standin.calls.append(call)
                call.status, answer = standin._answer(call, parse_qs(url.query))
                data = json.dumps(answer).encode()
                self.send_response(call.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, call: Call, query: dict[str, list[str]]) -> tuple[int, Any]:
        if call.role is None:
            return 401, {"detail": "Not authenticated"}
        needed = "viewer" if call.method == "GET" else "user"
        if ROLES.index(call.role) < ROLES.index(needed):
            return 403, {"detail": f"Forbidden: role {call.role} may not {call.method} {call.path}"}
        parts = call.path.removeprefix("/api/v2/dags/").split("/")
        dag = self.dags.get(parts[0])
        if not call.path.startswith("/api/v2/dags/") or dag is None:
            return 404, {"detail": f"The Dag with ID: `{parts[0]}` was not found"}
        dag_id, rest = parts[0], parts[1:]
        if not rest:
            if call.method == "PATCH":
                dag["is_paused"] = bool(call.body["is_paused"])
            return 200, dag
        if rest == ["dagRuns"]:
            return 200, {"dag_runs": self.runs[dag_id], "total_entries": len(self.runs[dag_id])}
        if len(rest) == 2 and rest[0] == "dagRuns" and call.method == "PATCH":
            run = next(r for r in self.runs[dag_id] if r["dag_run_id"] == rest[1])
            run["state"] = call.body["state"]
            return 200, run
        if len(rest) == 3 and rest[2] == "taskInstances":
            states = query.get("state") or []
            rows = [t for t in self.task_instances[dag_id] if not states or t["state"] in states]
            return 200, {"task_instances": rows, "total_entries": len(rows)}
        if rest == ["clearTaskInstances"]:
            wanted = call.body.get("task_ids")
            cleared = 0
            for ti in self.task_instances[dag_id]:
                running = call.body.get("only_running") and ti["state"] == "running"
                if running or (wanted is not None and ti["task_id"] in wanted):
                    ti["state"] = None
                    cleared += 1
            return 200, {"task_instances": [], "total_entries": cleared}
        return 404, {"detail": f"no route {call.method} {call.path}"}


def _role(headers: Any) -> str | None:
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    role = str(claims.get("role") or "").lower()
    return role if role in ROLES else None
