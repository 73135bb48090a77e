"""Many transfers at once: a thread pool, and progress callbacks safe to share across it.

Object storage is latency-bound per request, so parallel transfers are what make
ingesting thousands of files fast; the transfers themselves run in threads because
fsspec's sync API (s3fs runs its own event loop thread) is what every caller uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from proseo.storage.hashing import FileInfo, Progress

T = TypeVar("T")
#: What get_many expects of an object: (size, md5, sha256) or (size, md5, sha256, xxh128) with
#: None for "don't check", a FileInfo (its "" digests are not checked), or None.
Facts = tuple[int | None, str | None, str | None, str | None]
Expected = tuple[int | None, str | None, str | None] | Facts | FileInfo | None


def serialised(progress: Progress | None) -> Progress | None:
    """A progress callback safe to call from many transfer threads (calls never overlap)."""
    if progress is None:
        return None
    lock = threading.Lock()

    def report(n: int) -> None:
        with lock:
            progress(n)

    return report


def in_parallel(tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Run the tasks on ``workers`` threads; results in task order.

    On the first failure the tasks not yet started are cancelled, the running ones are
    waited for, and that failure is raised (so no transfer is left running behind us).
    """
    if not tasks:
        return []
    pool = ThreadPoolExecutor(max(1, min(workers, len(tasks))), thread_name_prefix="storage")
    try:
        futures: list[Future[T]] = [pool.submit(task) for task in tasks]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            error = future.exception() if future in done else None
            if error is not None:
                raise error
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def expected_facts(expected: Expected) -> Facts:
    """(size, md5, sha256, xxh128) of an Expected, None meaning 'not checked'."""
    if expected is None:
        return None, None, None, None
    if isinstance(expected, FileInfo):
        return expected.size, expected.md5 or None, expected.sha256 or None, expected.xxh128 or None
    if len(expected) == 3:
        return (*expected, None)
    return expected
