"""Bulk writes of a plan's rows: ids allocated up front, rows streamed in.

A year's plan is about half a million rows (steps, outputs, input queries and their
bindings). Multi-row ``INSERT ... RETURNING`` made the driver build and parse
statements of megabytes, and half of a year's planning went there. With the ids
known before the rows are written no statement needs to return anything: PostgreSQL
takes the rows through ``COPY ... FROM STDIN``, SQLite through one prepared
``executemany`` per table; values go through the columns' own bind processors, so
they are stored exactly as a statement would store them.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import JSON, func, insert, select, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Table

from proseo.planning.bulk_keys import KeyCheck

Row = dict[str, Any]


def allocate_ids(session: Session, model: type[Any], n: int) -> list[int]:
    """``n`` new primary keys of ``model``'s table, no row written yet.

    PostgreSQL draws them from the column's sequence (concurrent planners get disjoint
    ids). SQLite has one writer at a time and the planning transaction already holds the
    write lock (it cleared the old plan and changed the order's state), so the ids after
    the highest one stay free until it commits, which is what SQLite itself would assign.
    """
    if n <= 0:
        return []
    conn = session.connection()
    table: Table = model.__table__
    if conn.dialect.name == "postgresql":
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}
        ).scalar_one()
        return list(
            conn.execute(text("SELECT nextval(:s) FROM generate_series(1, :n)"), {"s": sequence, "n": n})
            .scalars()
            .all()
        )
    if not conn.in_transaction():
        raise RuntimeError("allocate_ids needs the planning transaction")
    top = conn.execute(select(func.max(table.c.id))).scalar() or 0
    return list(range(top + 1, top + n + 1))


def write_rows(session: Session, model: type[Any], rows: Sequence[Row]) -> None:
    """Insert ``rows`` (dicts with the same keys, ids included) into ``model``'s table."""
    if rows:
        _write(session.connection(), model.__table__, rows)


def _write(conn: Connection, table: Table, rows: Sequence[Row]) -> None:
    if conn.dialect.name == "postgresql":
        _copy(conn, table, list(rows[0]), rows)
    elif conn.dialect.name == "sqlite":
        _executemany(conn, table, list(rows[0]), rows)
    else:
        conn.execute(insert(table), list(rows))


class RowWriter:
    """Writes tables in order, on PostgreSQL from a thread of its own.

    On PostgreSQL the COPYs run in a thread of their own, overlapping with the caller
    building the next table's rows, and the foreign keys are checked per set when the
    writer closes rather than per row (:mod:`proseo.planning.bulk_keys`) where the role
    may; otherwise PostgreSQL checks each COPY's keys when it ends. The caller must not
    use the session until the writer is closed; the first error is raised by the next
    write or by :meth:`close`, and nothing more is written after it. SQLite writes at
    once (its connections stay in the thread that made them).
    """

    def __init__(self, session: Session, *, keys_per_set: bool = True) -> None:
        self._conn = session.connection()
        self._error: BaseException | None = None
        self._queue: queue.SimpleQueue[tuple[Table, Sequence[Row]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._keys = KeyCheck.relax(self._conn) if keys_per_set else None
        if self._conn.dialect.name == "postgresql":
            self._thread = threading.Thread(target=self._run, name="proseo-plan-writer", daemon=True)
            self._thread.start()

    def write(self, model: type[Any], rows: Sequence[Row]) -> None:
        if self._error is not None:
            raise self._error
        if not rows:
            return
        if self._thread is None:
            _write(self._conn, model.__table__, rows)
        else:
            self._queue.put((model.__table__, rows))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    table, rows = item
                    if self._keys is not None:
                        self._keys.note(table, list(rows[0]), rows)
                    _write(self._conn, table, rows)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        if self._keys is not None:
            keys, self._keys = self._keys, None
            keys.finish()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_rest: object) -> None:
        if kind is None:
            self.close()
            return
        # Already failing: stop the thread before the caller rolls back, keep that error.
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._keys is not None:
            keys, self._keys = self._keys, None
            with contextlib.suppress(DBAPIError):  # an aborted transaction reverts it anyway
                keys.restore()


def _processors(table: Table, columns: list[str], dialect: Dialect) -> list[Callable[[Any], Any] | None]:
    """Each column's bind processor (naive UTC datetimes, JSON text, ...), as a statement would use.

    Most JSON values of a plan are empty (an input's filters, an output's parameters): their
    text is made once.
    """
    out: list[Callable[[Any], Any] | None] = []
    for name in columns:
        column_type = table.c[name].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and isinstance(column_type, JSON):
            out.append(_empty_once(process))
        else:
            out.append(process)
    return out


def _empty_once(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    empty = process({})

    def convert(value: Any) -> Any:
        return empty if type(value) is dict and not value else process(value)

    return convert


def _values(table: Table, columns: list[str], dialect: Dialect, rows: Sequence[Row]) -> Iterator[list[Any]]:
    """Each row's values as the database takes them."""
    processors = _processors(table, columns, dialect)
    for row in rows:
        yield [
            value if value is None or process is None else process(value)
            for value, process in zip(map(row.__getitem__, columns), processors, strict=True)
        ]


def _executemany(conn: Connection, table: Table, columns: list[str], rows: Sequence[Row]) -> None:
    """One prepared INSERT run over every row by the driver (no per-row statement building)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    cursor = raw.cursor()
    try:
        cursor.executemany(
            f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',
            _values(table, columns, conn.dialect, rows),
        )
    finally:
        cursor.close()


def _copy(conn: Connection, table: Table, columns: list[str], rows: Sequence[Row]) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for values in _values(table, columns, conn.dialect, rows):
            copy.write_row(values)
