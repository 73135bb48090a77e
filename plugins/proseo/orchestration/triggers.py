"""The trigger that waits for a job step's inputs, and the poller all such triggers share.

Thousands of job steps may wait at once. One trigger per step polling the catalogue
on its own would cost thousands of queries per interval, so every
:class:`JobStepInputsTrigger` of one triggerer process registers with a
:class:`SharedPoller` per (catalogue URL, poll interval). Each interval the poller,
in a worker thread (``asyncio.to_thread``; the event loop never blocks on the
database), runs :func:`~proseo.planning.readiness.poll_readiness` ONCE for all
registered steps (one SQL statement in the steady state, two at most), then
:func:`~proseo.planning.readiness.refresh_many` only for the steps the poll flags
(new products of a class they wait for, all upstream steps COMPLETED, or just
registered), and resolves the future of each trigger whose step became ready or can
no longer become ready. The poller stops as soon as no trigger is registered;
cancelled triggers unregister (``finally`` in :meth:`run`, and :meth:`cleanup`).

A trigger yields exactly one event and never raises (cancellation aside)::

    {"status": "ready" | "timeout" | "error", "job_step_id": 12, "message": "...",
     "upstream_pending": [...], "waiting": [...]}

With ``end_from_trigger`` (what the sensor asks for) a ``ready`` outcome is yielded as
Airflow's ``TaskSuccessEvent`` instead, carrying the same XCom the sensor would
return: the task instance ends in the triggerer and no worker starts for it. Timeouts
and errors always go back to the sensor's ``execute_complete`` (retries, give-up).

Timeouts are the trigger's own (``timeout_s``). The sensor sets Airflow's trigger
timeout :data:`TIMEOUT_GRACE_S` later as a safety net; the triggerer hands that
instant to the trigger as ``timeout_after``, from which the trigger recovers the
original deadline after a triggerer restart instead of starting the clock again.

Engines are cached per URL for the life of the process (:func:`engine_for`). A
``catalog_url`` of ``None`` or ``""`` means ``PROSEO_CATALOG_URL`` of the triggerer,
so no password needs to be written into a DAG.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from proseo.catalog.db import Catalog, default_url, make_engine, normalize_url, redact, utcnow
from proseo.planning import readiness
from proseo.planning.readiness import COMMIT_LAG, DEAD_STATES, PollStatus, StepReadiness

log = logging.getLogger(__name__)

CLASSPATH = "proseo.orchestration.triggers.JobStepInputsTrigger"
ON_TIMEOUT = ("FAIL", "RUN_WITH_AVAILABLE")
#: Airflow's own trigger timeout is set this much after the trigger's, as a safety net.
TIMEOUT_GRACE_S = 60.0
#: Consecutive failed polls (database unreachable, ...) before every waiting trigger errs.
MAX_FAILED_POLLS = 3


# --- engines ---------------------------------------------------------------------------------

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def resolve_url(catalog_url: str | None) -> str:
    return normalize_url(catalog_url) if catalog_url else default_url()


def engine_for(url: str) -> Engine:
    """One engine (one connection pool) per catalogue URL for the whole process."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests; a triggerer never needs to)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


def _transient(exc: BaseException) -> bool:
    """Errors worth another poll: the database is away, not the request wrong."""
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _event(status: str, job_step_id: Any, message: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "job_step_id": job_step_id, "message": message, **extra}


def ready_result(event: dict[str, Any]) -> dict[str, Any]:
    """What a sensor's task returns (its XCom) once the inputs are complete."""
    return {
        "job_step_id": event.get("job_step_id"),
        "status": "ready",
        "message": str(event.get("message") or ""),
    }


def _ready_event(r: StepReadiness) -> dict[str, Any]:
    return _event(
        "ready",
        r.job_step_id,
        r.summary(),
        upstream_pending=list(r.upstream_pending),
        waiting=list(r.waiting),
        newly_satisfied=list(r.newly_satisfied),
    )


# --- the shared poller -----------------------------------------------------------------------


@dataclass(eq=False)
class _Waiter:
    job_step_id: int
    future: asyncio.Future[dict[str, Any]]


@dataclass
class _Outcome:
    """What one poll found: events to deliver, and the latest readiness per step."""

    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    latest: dict[int, StepReadiness] = field(default_factory=dict)
    failed: BaseException | None = None  # the poll itself failed
    refreshed: int = 0


class SharedPoller:
    """Polls one catalogue for every registered job step, once per interval."""

    def __init__(self, url: str, interval: float, loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        self.interval = interval
        self.loop = loop
        self.waiters: dict[int, list[_Waiter]] = {}
        self.fresh: set[int] = set()  # registered since the last poll: refreshed whatever the poll says
        self.latest: dict[int, StepReadiness] = {}
        self.polls = 0  # poll_readiness calls (one per interval for all steps)
        self.refreshes = 0  # steps refreshed
        self.task: asyncio.Task[None] | None = None
        self._since: datetime | None = None
        # Carries the previous poll's spans, so a steady poll is one statement.
        self._cursor = readiness.PollCursor()
        self._failed_polls = 0
        self._step_failures: dict[int, int] = {}
        self._wake = asyncio.Event()

    @property
    def key(self) -> tuple[asyncio.AbstractEventLoop, str, float]:
        return (self.loop, self.url, self.interval)

    def register(self, job_step_id: int) -> _Waiter:
        waiter = _Waiter(job_step_id, self.loop.create_future())
        self.waiters.setdefault(job_step_id, []).append(waiter)
        self.fresh.add(job_step_id)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run(), name=f"proseo-input-poller {redact(self.url)}")
        return waiter

    def unregister(self, waiter: _Waiter) -> None:
        group = self.waiters.get(waiter.job_step_id)
        if group is not None and waiter in group:
            group.remove(waiter)
            if not group:
                del self.waiters[waiter.job_step_id]
                self.fresh.discard(waiter.job_step_id)
                self.latest.pop(waiter.job_step_id, None)
                self._step_failures.pop(waiter.job_step_id, None)
        if not waiter.future.done():
            waiter.future.cancel()
        if not self.waiters:
            self._wake.set()  # let the loop end now rather than after its sleep

    # -- the loop (event loop side) --------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self.waiters:
                started = utcnow()
                ids = sorted(self.waiters)
                fresh = self.fresh & set(ids)
                self.fresh -= fresh
                outcome = await asyncio.to_thread(self._check, ids, fresh, self._since)
                self.polls += 1
                self.refreshes += outcome.refreshed
                self._deliver(outcome, started)
                if not self.waiters:
                    break
                self._wake.clear()
                rest = self.interval - (utcnow() - started).total_seconds()
                if rest > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), rest)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not leave triggers waiting forever
            log.exception("input poller for %s failed", redact(self.url))
            message = f"input poller failed: {exc!r}"
            self._resolve_all(lambda sid: _event("error", sid, message))
        finally:
            if _POLLERS.get(self.key) is self:
                del _POLLERS[self.key]

    def _deliver(self, outcome: _Outcome, started: datetime) -> None:
        if outcome.failed is not None:
            self._failed_polls += 1
            exc = outcome.failed
            if not _transient(exc) or self._failed_polls >= MAX_FAILED_POLLS:
                where = redact(self.url)
                message = f"cannot poll the catalogue {where}: {type(exc).__name__}: {exc}"
                if _transient(exc):
                    message += f" ({self._failed_polls} polls in a row)"
                self._resolve_all(lambda sid: _event("error", sid, message[:2000]))
            return
        self._failed_polls = 0
        self._since = started - COMMIT_LAG
        self.latest.update(outcome.latest)
        for sid, event in outcome.events.items():
            self._resolve(sid, event)

    def _resolve(self, job_step_id: int, event: dict[str, Any]) -> None:
        for waiter in self.waiters.get(job_step_id, []):
            if not waiter.future.done():
                waiter.future.set_result(event)

    def _resolve_all(self, make: Any) -> None:
        for sid in list(self.waiters):
            self._resolve(sid, make(sid))

    # -- one poll (worker thread side) -----------------------------------------------------

    def _check(self, ids: list[int], fresh: set[int], since: datetime | None) -> _Outcome:
        outcome = _Outcome()
        try:
            catalog = Catalog(self.url, engine=engine_for(self.url))
            with catalog.session() as session:
                self._cursor.since = since
                polls = readiness.poll_readiness(session, ids, self._cursor)
        except Exception as exc:
            outcome.failed = exc
            return outcome
        todo = []
        for sid in ids:
            poll = polls[sid]
            if poll.status is PollStatus.BLOCKED:
                outcome.events[sid] = _event("error", sid, poll.message)
            elif sid in fresh or poll.status in (PollStatus.READY, PollStatus.CHANGED):
                todo.append(sid)
        for sid, result in self._refresh(catalog, todo).items():
            outcome.refreshed += 1
            if isinstance(result, BaseException):
                failures = self._step_failures[sid] = self._step_failures.get(sid, 0) + 1
                if not _transient(result) or failures >= MAX_FAILED_POLLS:
                    outcome.events[sid] = _event(
                        "error",
                        sid,
                        f"refreshing the inputs failed: {type(result).__name__}: {result}"[:2000],
                    )
                continue
            self._step_failures.pop(sid, None)
            outcome.latest[sid] = result
            if result.state in DEAD_STATES or result.upstream_failed:
                outcome.events[sid] = _event("error", sid, result.summary())
            elif result.ready:
                outcome.events[sid] = _ready_event(result)
        return outcome

    @staticmethod
    def _refresh(catalog: Catalog, ids: Sequence[int]) -> dict[int, StepReadiness | BaseException]:
        """All flagged steps in one transaction (one candidate fetch); on failure, one by one."""
        if not ids:
            return {}
        try:
            with catalog.session() as session:
                found: dict[int, StepReadiness | BaseException] = dict(readiness.refresh_many(session, ids))
        except Exception:
            found = {}
            for sid in ids:
                try:
                    with catalog.session() as session:
                        found.update(readiness.refresh_many(session, [sid]))
                except Exception as exc:
                    found[sid] = exc
        for sid in ids:
            found.setdefault(sid, LookupError(f"job step {sid} does not exist"))
        return found


_POLLERS: dict[tuple[asyncio.AbstractEventLoop, str, float], SharedPoller] = {}


def poller_for(url: str, interval: float) -> SharedPoller:
    """The poller of this event loop for (URL, interval), created on first use."""
    loop = asyncio.get_running_loop()
    key = (loop, url, interval)
    poller = _POLLERS.get(key)
    if poller is None:
        poller = _POLLERS[key] = SharedPoller(url, interval, loop)
    return poller


def active_pollers() -> list[SharedPoller]:
    """Pollers with a running loop (one per catalogue and interval in a triggerer)."""
    return [p for p in _POLLERS.values() if p.task is not None and not p.task.done()]


# --- the trigger -----------------------------------------------------------------------------


class JobStepInputsTrigger(BaseTrigger):
    """Fires once when a job step's inputs are complete (or on timeout, or on an error).

    ``end_from_trigger``: on ``ready``, end the task instance here (``TaskSuccessEvent``).
    Arguments are serialisable values only; ``job_step_id`` and ``catalog_url`` may
    arrive as rendered template strings (start_from_trigger renders them in the
    triggerer), so they are checked and converted in :meth:`run`, not here.
    """

    def __init__(
        self,
        catalog_url: str | None = None,
        job_step_id: int | str = 0,
        poll_interval: float = 30.0,
        timeout_s: float | None = None,
        on_timeout: str = "FAIL",
        end_from_trigger: bool = False,
    ) -> None:
        super().__init__()
        self.catalog_url = catalog_url
        self.job_step_id = job_step_id
        self.poll_interval = poll_interval
        self.timeout_s = timeout_s
        self.on_timeout = on_timeout
        self.end_from_trigger = end_from_trigger
        self._registration: tuple[SharedPoller, _Waiter] | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "catalog_url": self.catalog_url,
                "job_step_id": self.job_step_id,
                "poll_interval": self.poll_interval,
                "timeout_s": self.timeout_s,
                "on_timeout": self.on_timeout,
                "end_from_trigger": self.end_from_trigger,
            },
        )

    def __repr__(self) -> str:
        return f"<JobStepInputsTrigger job_step_id={self.job_step_id} every {self.poll_interval} s>"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self._wait()
        if self.end_from_trigger and event["status"] == "ready":
            # The task ends here, in the triggerer: no worker starts just to say "ready".
            # Its XCom is what execute_complete would have returned.
            yield TaskSuccessEvent(xcoms={"return_value": ready_result(event)})
        else:
            yield TriggerEvent(event)

    async def _wait(self) -> dict[str, Any]:
        raw = self.job_step_id
        try:
            step = int(raw)
            interval = float(self.poll_interval)
            if interval <= 0:
                raise ValueError(f"poll_interval must be positive, not {self.poll_interval!r}")
            if self.on_timeout not in ON_TIMEOUT:
                raise ValueError(
                    f"on_timeout must be one of {', '.join(ON_TIMEOUT)}, not {self.on_timeout!r}"
                )
            deadline = self._deadline()
            url = resolve_url(self.catalog_url)
        except Exception as exc:
            return _event("error", raw, f"invalid trigger arguments: {type(exc).__name__}: {exc}")
        try:
            poller = poller_for(url, interval)
            waiter = poller.register(step)
        except Exception as exc:
            return _event("error", step, f"cannot wait for job step {step}: {type(exc).__name__}: {exc}")
        self._registration = (poller, waiter)
        try:
            remaining = None if deadline is None else (deadline - utcnow()).total_seconds()
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            return await asyncio.wait_for(waiter.future, remaining)
        except TimeoutError:
            latest = poller.latest.get(step) or await self._last_look(url, step)
            what = latest.summary() if latest is not None else f"job step {step}: inputs not complete"
            return _event(
                "timeout",
                step,
                f"no complete inputs after {self.timeout_s} s: {what}",
                on_timeout=self.on_timeout,
                upstream_pending=list(latest.upstream_pending) if latest else [],
                waiting=list(latest.waiting) if latest else [],
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _event("error", step, f"waiting for inputs failed: {type(exc).__name__}: {exc}")
        finally:
            self._unregister()

    @staticmethod
    async def _last_look(url: str, step: int) -> StepReadiness | None:
        """Timed out before the first refresh ended (a slow catalogue): look once more, so
        the timeout event still names what is missing; bounded, and None if that fails too."""
        try:
            catalog = Catalog(url, engine=engine_for(url))
            found = await asyncio.wait_for(asyncio.to_thread(SharedPoller._refresh, catalog, [step]), 30)
        except Exception:
            return None
        result = found.get(step)
        return result if isinstance(result, StepReadiness) else None

    def _deadline(self) -> datetime | None:
        if self.timeout_s is None:
            return None
        deadline = utcnow() + timedelta(seconds=float(self.timeout_s))
        # Set by the triggerer: Airflow's deadline for this deferral (ours + the grace).
        after = getattr(self, "timeout_after", None)
        if isinstance(after, datetime):
            after = after if after.tzinfo else after.replace(tzinfo=UTC)
            deadline = min(deadline, after - timedelta(seconds=TIMEOUT_GRACE_S))
        return deadline

    def _unregister(self) -> None:
        registration, self._registration = self._registration, None
        if registration is not None:
            poller, waiter = registration
            poller.unregister(waiter)

    async def cleanup(self) -> None:
        self._unregister()
