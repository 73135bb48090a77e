"""Retry whole transfers on transient errors, and only on those.

A dropped connection, a timeout or an S3 "slow down" is worth another try; a missing
object, a refused permission or a checksum mismatch is not, and retrying it would only
delay a clear error. What reaches us depends on the layer:

* s3fs turns a botocore ``ClientError`` into an ``OSError`` (``FileNotFoundError`` for
  404, ``PermissionError`` for 403, ``TimeoutError`` for RequestTimeout, ``OSError(EBUSY)``
  for SlowDown/ServiceUnavailable, ``OSError(EREMOTEIO/EIO)`` for 500 and unknown codes)
  and sets the ``ClientError`` as ``__cause__``, so the S3 error code is in the chain;
* connection problems arrive as botocore ``EndpointConnectionError``,
  ``ConnectTimeoutError``, ``ReadTimeoutError``, ``ConnectionClosedError`` (aiobotocore
  maps aiohttp's errors onto those), or as raw aiohttp / ``http.client`` errors;
* local and fsspec filesystems raise plain ``ConnectionError`` / ``TimeoutError``.

s3fs and botocore already retry single requests a few times; this layer retries the
whole transfer, which also covers a stream that broke half-way.
"""

from __future__ import annotations

import errno
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from proseo.errors import ProseoError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: S3 error codes that mean "try again later".
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "ConditionalRequestConflict",  # 409: a concurrent conditional write; S3 says retry
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "500",
        "502",
        "503",
        "504",
    }
)
#: Exception classes (module, name) of botocore / aiohttp / http.client that are transient;
#: matched anywhere in the exception's MRO, so subclasses count too.
TRANSIENT_CLASSES = frozenset(
    {
        ("botocore.exceptions", "EndpointConnectionError"),
        ("botocore.exceptions", "ConnectTimeoutError"),
        ("botocore.exceptions", "HTTPClientError"),  # ReadTimeout, ConnectionClosed, ResponseStreaming
        ("botocore.exceptions", "IncompleteReadError"),
        ("botocore.exceptions", "ResponseParserError"),  # throttling replies with broken XML (s3fs #484)
        ("aiohttp.client_exceptions", "ClientConnectionError"),  # ServerDisconnected, ClientOSError
        ("aiohttp.client_exceptions", "ClientPayloadError"),
        ("http.client", "IncompleteRead"),
        ("http.client", "RemoteDisconnected"),
    }
)
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ETIMEDOUT,
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
    }
)
#: Definitive answers: retrying cannot change them (checked before anything else).
_PERMANENT = (
    ProseoError,  # ChecksumMismatch, StorageNotFound, bad keys
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (explicit cause, else implicit context)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return chain


def _transient_one(err: BaseException) -> bool:
    if isinstance(err, ConnectionError | TimeoutError):  # includes asyncio/socket timeouts
        return True
    if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
        return True
    if any((cls.__module__, cls.__name__) in TRANSIENT_CLASSES for cls in type(err).__mro__):
        return True
    response = getattr(err, "response", None)  # botocore ClientError
    if isinstance(response, dict):
        code = str((response.get("Error") or {}).get("Code", ""))
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    return False


def is_transient(exc: BaseException) -> bool:
    """True if the same transfer may succeed when simply tried again."""
    for err in _chain(exc):
        if isinstance(err, _PERMANENT):
            return False
        if _transient_one(err):
            return True
    return False


class GaveUp(Exception):
    """Raised by :func:`with_retries` when every attempt failed transiently."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempts: {type(last).__name__}: {last}")
        self.attempts = attempts
        self.last = last


def backoff_delay(attempt: int, base: float, cap: float = 30.0) -> float:
    """Exponential backoff with jitter: base * 2**(attempt-1), scaled by a random 0.5-1.5."""
    return min(cap, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    max_retries: int,
    backoff: float,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``action``; on a transient error wait and run it again, at most ``max_retries`` times.

    Permanent errors propagate unchanged at once; when the retries are used up,
    :class:`GaveUp` is raised from the last error (the caller turns it into a StorageError).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt > max_retries:
                raise GaveUp(attempt, exc) from exc
            delay = backoff_delay(attempt, backoff)
            log.warning(
                "%s: transient %s: %s; retry %d/%d in %.2f s",
                what,
                type(exc).__name__,
                exc,
                attempt,
                max_retries,
                delay,
            )
            (sleep or time.sleep)(delay)
