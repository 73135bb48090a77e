"""The HTTP side shared by the clients of delivery points (PRIP/AUXIP pull, CADIP).

A bearer token (given, or fetched once from the point's OAuth2 route with the password
grant) on every call; JSON pages; ``$value`` streamed into a file while it is hashed and
counted, so nothing is ever held whole in memory. Every failure is a :class:`PullError`
naming the source and the URL; the callers add what they were fetching it for.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from proseo.errors import ProseoError

CHUNK = 1 << 20


class PullError(ProseoError):
    """The delivery point refused or answered something unusable; names the source and URL."""

    def __init__(
        self, message: str, *, source: str, url: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(f"source {source}: {message}")
        self.source, self.url, self.detail = source, url, message
        self.status = status  # the HTTP status answered, when there was an answer


def password_token(client: httpx.Client, root: str, user: str, password: str, *, source: str) -> str:
    """A bearer token from a delivery point's OAuth2 route (password grant)."""
    url, form = f"{root}/oauth2/token", _grant(user, password)
    try:
        answer = client.post(url, data=form)
    except httpx.HTTPError as exc:
        raise PullError(f"token route: {type(exc).__name__}: {exc}", source=source, url=url) from exc
    return token_of(answer, source=source, url=url)


async def apassword_token(
    client: httpx.AsyncClient, root: str, user: str, password: str, *, source: str
) -> str:
    """:func:`password_token` for asynchronous callers (the triggerer's probes)."""
    url, form = f"{root}/oauth2/token", _grant(user, password)
    try:
        answer = await client.post(url, data=form)
    except httpx.HTTPError as exc:
        raise PullError(f"token route: {type(exc).__name__}: {exc}", source=source, url=url) from exc
    return token_of(answer, source=source, url=url)


def _grant(user: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": user, "password": password}


def token_of(answer: httpx.Response, *, source: str, url: str) -> str:
    """The access token of the token route's answer; a refusal or an unusable answer is a PullError."""
    if answer.status_code != 200:
        raise PullError(
            f"token refused ({answer.status_code}): {answer.text[:300]}",
            source=source,
            url=url,
            status=answer.status_code,
        )
    try:
        body = answer.json()
    except ValueError as exc:
        raise PullError("token route: the answer is not JSON", source=source, url=url) from exc
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise PullError("token route: no access_token in the answer", source=source, url=url)
    return token


class ODataHttp:
    """One delivery point's HTTP client: authenticated GETs of JSON and of ``$value`` streams."""

    def __init__(
        self,
        name: str,
        root: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.name, self.root = name, root
        self.username, self.password, self.token = username, password, token
        self.client = httpx.Client(timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self.client.close()

    def bearer(self) -> str:
        if self.token:
            return self.token
        if not (self.username and self.password):
            raise PullError("no token and no user name and password to get one", source=self.name)
        self.token = password_token(self.client, self.root, self.username, self.password, source=self.name)
        return self.token

    def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET a JSON object; anything else (refusal, not JSON, not an object) is a PullError."""
        try:
            answer = self.client.get(url, params=params, headers={"Authorization": f"Bearer {self.bearer()}"})
        except httpx.HTTPError as exc:
            raise PullError(f"{type(exc).__name__}: {exc}", source=self.name, url=url) from exc
        if answer.status_code != 200:
            raise PullError(
                f"{answer.status_code}: {answer.text[:300]}",
                source=self.name,
                url=str(answer.url),
                status=answer.status_code,
            )
        try:
            body = answer.json()
        except ValueError as exc:
            raise PullError("the answer is not JSON", source=self.name, url=str(answer.url)) from exc
        if not isinstance(body, dict):
            raise PullError("the answer is not a JSON object", source=self.name, url=url)
        return body

    def stream_into(self, url: str, out: BinaryIO) -> tuple[str, str, int]:
        """Append the body at ``url`` to ``out``; its MD5, SHA-256 and size."""
        md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
        headers = {"Authorization": f"Bearer {self.bearer()}"}
        try:
            with self.client.stream("GET", url, headers=headers) as answer:
                if answer.status_code != 200:
                    raise PullError(f"download refused ({answer.status_code})", source=self.name, url=url)
                for chunk in answer.iter_bytes(CHUNK):
                    md5.update(chunk)
                    sha256.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except httpx.HTTPError as exc:  # cut off, refused, timed out: the next pull tries again
            raise PullError(
                f"download failed: {type(exc).__name__}: {exc}", source=self.name, url=url
            ) from exc
        return md5.hexdigest(), sha256.hexdigest(), size

    def download(self, url: str, target: Path) -> tuple[str, str, int]:
        """Stream the body at ``url`` into a new file ``target``; its MD5, SHA-256 and size."""
        with target.open("wb") as out:
            return self.stream_into(url, out)
