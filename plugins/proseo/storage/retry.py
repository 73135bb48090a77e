"""Retrying whole transfers on transient errors, and only on those.

A dropped connection, a timeout or an S3 "slow down" is worth another try; a missing
file, a permission problem or a checksum mismatch is not, and retrying would only
delay the clear error. s3fs turns botocore errors into OSErrors, so the cause chain
is inspected as well as the exception itself.
"""

from __future__ import annotations

import errno
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from proseo.errors import StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT_CODES = {
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "503",
    "500",
    "502",
    "504",
}
_TRANSIENT_ERRNOS = {
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ETIMEDOUT,
    errno.EPIPE,
    errno.EAGAIN,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}
_TRANSIENT_NAMES = {
    # botocore
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ResponseStreamingError",
    "IncompleteReadError",
    # aiohttp
    "ClientConnectionError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ClientPayloadError",
    "ClientOSError",
    "ServerTimeoutError",
}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """True if trying the same transfer again may succeed."""
    for err in _chain(exc):
        if isinstance(err, StorageError | FileNotFoundError | PermissionError | IsADirectoryError):
            return False
        if isinstance(err, ConnectionError | TimeoutError):
            return True
        if type(err).__name__ in _TRANSIENT_NAMES:
            return True
        if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
            return True
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
            if code in _TRANSIENT_CODES or status >= 500:
                return True
    return False


def with_retries(action: Callable[[], T], *, what: str, attempts: int, backoff: float) -> T:
    """Run ``action``; on a transient error wait (exponential, with jitter) and run it again."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts:
                raise StorageError(
                    f"gave up after {attempts} attempts: {type(exc).__name__}: {exc}", url=what
                ) from exc
            delay = backoff * 2 ** (attempt - 1) * (0.5 + random.random())
            log.warning(
                "%s: transient %s (%s); retry %d/%d in %.2f s",
                what,
                type(exc).__name__,
                exc,
                attempt,
                attempts - 1,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")
