"""One POST of a notification to a client's endpoint, the check of such an endpoint, and the back-off.

Both notification outboxes (PRIP subscriptions, ODIP orders) send through :func:`post_json`,
which never raises: a dispatcher that POSTs a batch must record every outcome, so a
malformed URL, a refused connection and an endpoint answering garbage are all just a
failed attempt of *that* notification. Redirects are never followed: the standard library
would repeat the Basic credentials to wherever a 302 points, and turn the POST into a GET.
What an error says never shows the URL's credentials or query string (it lands in logs and
in the notification rows a subscriber reads).

The HTTP client is the standard library's: the core installation has no other.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Backoff:
    """Retry n waits ``min(base * 2**(n-1), cap)``; after ``max_attempts`` a notification is failed."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8

    def delay(self, attempts: int) -> timedelta:
        # The exponent is bounded: a doubling past the cap changes nothing, and 2**n overflows timedelta.
        return min(self.base * (2 ** min(max(attempts - 1, 0), 30)), self.cap)


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be a notification endpoint (None: it can): http(s), a host, a numeric port."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "expected an http:// or https:// URL without spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "expected an http:// or https:// URL"
    if not parts.hostname:
        return "expected a URL with a host"
    return None


def redacted(url: str) -> str:
    """``url`` for a log line: scheme, host, port and path only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx stays the answer (an HTTPError), never a second request."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, body: Any, user: str | None, password: str | None, timeout: float) -> str | None:
    """POST ``body`` as JSON (Basic auth when ``user``): None when the endpoint took it, else why not."""
    try:
        headers = {"Content-Type": "application/json"}
        if user:
            basic = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        with _OPENER.open(request, timeout=timeout) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        status = int(exc.code)
    except Exception as exc:  # any failure is this attempt's outcome, never the batch's
        return _error(exc, url, user, password)
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"HTTP {status} (redirects are not followed)"
    return f"HTTP {status}"


def _error(exc: Exception, url: str, user: str | None, password: str | None) -> str:
    """A short line about ``exc`` without the URL's userinfo, query or the endpoint's credentials."""
    text = str(exc)
    secrets = [url, password]
    try:
        parts = urlsplit(url)
        secrets += [parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None, parts.query]
    except ValueError:
        pass
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}"[:300]
