"""Notification endpoints for the subscription and ODIP tests: real HTTP servers in threads.

:class:`Receiver` is a well-behaved endpoint (or one that answers 503 for a while, or
redirects); :class:`Garbage` answers every connection with bytes that are not HTTP.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Records every POST ``(headers, body)``; answers 503 to the first ``fail_first``, then 200
    (or 302 to ``redirect_to`` when given). ``accepted`` holds the bodies it answered 200 to;
    ``on_first`` runs once while the first POST waits for its answer."""

    def __init__(
        self, fail_first: int = 0, redirect_to: str | None = None, on_first: Callable[[], None] | None = None
    ) -> None:
        self.fail_first = fail_first
        self.redirect_to = redirect_to
        self.on_first = on_first  # run once, while the first POST waits for its answer
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.accepted: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.posts.append((dict(self.headers), body))
                    ok = len(receiver.posts) > receiver.fail_first and receiver.redirect_to is None
                    if ok:
                        receiver.accepted.append(body)
                    hook, receiver.on_first = receiver.on_first, None
                if hook is not None:
                    hook()
                if receiver.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect_to)
                else:
                    self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # a POST turned into a GET by a redirect: recorded as such
                with receiver.lock:
                    receiver.posts.append((dict(self.headers), {"GET": self.path}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def authorizations(self) -> list[str | None]:
        """The Authorization header of every accepted POST."""
        return [h.get("Authorization") for h, b in self.posts if any(b is a for a in self.accepted)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Garbage:
    """An endpoint that reads a request and answers a line that is not an HTTP status line."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/notify"
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"NONSENSE\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
